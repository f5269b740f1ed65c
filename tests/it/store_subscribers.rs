//! Subscribers one at a time: adding, changing, unsubscribing, forgetting, links and topics.

use crate::common::store::*;
use base64::Engine;
use lscp_mail::content::TopicInfo;
use lscp_mail::store::{
    ConsentAction, ConsentSource, DisplayName, LinkToken, NewSubscriber, Store, StoreError,
    SubscriberFilter, SubscriberStatus, export,
};
use sqlx::PgPool;

async fn new_subscriber(store: &Store, address: &str, list: &str) -> NewSubscriber {
    let catalog = store.topic_catalog().await.expect("topics");
    NewSubscriber {
        email: email(address),
        name: DisplayName::parse("Ann Smith").expect("valid"),
        organisation: DisplayName::parse("Northfield Primary School").expect("valid"),
        topics: topics(&catalog, list),
    }
}

#[sqlx::test]
async fn adding_a_practitioner_records_their_subscription(pool: PgPool) {
    let store = Store::from_pool(pool);
    let new = new_subscriber(&store, "Ann.Smith@example.org", "training,reviews").await;

    let ann = store
        .add_subscriber(&new, SubscriberStatus::Active, &ConsentSource::Cli, false)
        .await
        .expect("added");

    assert_eq!(ann.email.as_str(), "Ann.Smith@example.org");
    assert_eq!(ann.topics, ["training", "reviews"]);
    let history = store.history(&ann).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, ConsentAction::Subscribed);
    assert_eq!(history[0].source, ConsentSource::Cli);
    assert_eq!(
        history[0].detail,
        serde_json::json!({"status": "active", "topics": ["reviews", "training"]})
    );
}

#[sqlx::test]
async fn an_address_differing_only_in_case_is_the_same_subscriber(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    let before = counts(&pool).await;
    let again = new_subscriber(&store, "ANN@EXAMPLE.ORG", "events").await;

    let err = store
        .add_subscriber(&again, SubscriberStatus::Active, &ConsentSource::Cli, false)
        .await
        .expect_err("already there");

    assert!(matches!(err, StoreError::AlreadySubscribed { .. }), "{err}");
    assert!(err.is_input_problem());
    assert_eq!(counts(&pool).await, before);
    let found = store
        .subscriber(&email("Ann@Example.Org"))
        .await
        .expect("found");
    assert_eq!(found.topics, ["training"]);
}

#[sqlx::test]
async fn an_unsubscribed_practitioner_comes_back_only_when_they_ask(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    let ann = email("ann@example.org");
    store
        .unsubscribe(&ann, &ConsentSource::OneClick)
        .await
        .expect("unsubscribed");
    let new = new_subscriber(&store, "ann@example.org", "events").await;

    let refused = store
        .add_subscriber(&new, SubscriberStatus::Active, &ConsentSource::Cli, false)
        .await
        .expect_err("not without asking");
    assert!(matches!(refused, StoreError::HasLeft { .. }), "{refused}");

    let back = store
        .add_subscriber(&new, SubscriberStatus::Active, &ConsentSource::Cli, true)
        .await
        .expect("resubscribed");
    assert_eq!(back.status, SubscriberStatus::Active);
    assert_eq!(back.topics, ["events"]);
    let actions: Vec<_> = store
        .history(&back)
        .await
        .expect("history")
        .into_iter()
        .map(|e| (e.action, e.source))
        .collect();
    assert_eq!(
        actions,
        [
            (ConsentAction::Subscribed, ConsentSource::Cli),
            (ConsentAction::Unsubscribed, ConsentSource::OneClick),
            (ConsentAction::Subscribed, ConsentSource::Cli),
        ]
    );
}

#[sqlx::test]
async fn setting_topics_replaces_them_and_logs_the_change(pool: PgPool) {
    let store = Store::from_pool(pool);
    add(&store, "ann@example.org", "training").await;
    let catalog = store.topic_catalog().await.expect("topics");
    let ann = email("ann@example.org");

    let change = store
        .set_topics(
            &ann,
            &topics(&catalog, "events,protocols"),
            &ConsentSource::Web,
        )
        .await
        .expect("changed");

    assert!(change.changed());
    assert_eq!(change.before, ["training"]);
    assert_eq!(change.after, ["protocols", "events"], "in sign-up order");
    let ann = store.subscriber(&ann).await.expect("there");
    assert_eq!(ann.topics, ["protocols", "events"]);
    let last = store
        .history(&ann)
        .await
        .expect("history")
        .pop()
        .expect("an entry");
    assert_eq!(last.action, ConsentAction::TopicsChanged);
    assert_eq!(
        last.detail,
        serde_json::json!({"from": ["training"], "to": ["protocols", "events"]})
    );
}

#[sqlx::test]
async fn setting_the_same_topics_again_logs_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training,events").await;
    let catalog = store.topic_catalog().await.expect("topics");
    let before = counts(&pool).await;

    let change = store
        .set_topics(
            &email("ann@example.org"),
            &topics(&catalog, "events,training"),
            &ConsentSource::Cli,
        )
        .await
        .expect("no change");

    assert!(!change.changed());
    assert_eq!(counts(&pool).await, before);
}

#[sqlx::test]
async fn a_practitioner_can_choose_no_topics_and_stay_subscribed(pool: PgPool) {
    let store = Store::from_pool(pool);
    add(&store, "ann@example.org", "training").await;
    let catalog = store.topic_catalog().await.expect("topics");
    let ann = email("ann@example.org");
    store
        .set_topics(&ann, &topics(&catalog, ""), &ConsentSource::Cli)
        .await
        .expect("changed");
    let ann = store.subscriber(&ann).await.expect("there");
    assert!(ann.topics.is_empty());
    assert_eq!(ann.status, SubscriberStatus::Active);
}

#[sqlx::test]
async fn unsubscribing_twice_records_it_once(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    let ann = email("ann@example.org");

    let first = store
        .unsubscribe(&ann, &ConsentSource::Cli)
        .await
        .expect("done");
    let after_first = counts(&pool).await;
    let second = store
        .unsubscribe(&ann, &ConsentSource::Cli)
        .await
        .expect("done");

    assert_eq!(
        (first.before, first.after),
        (SubscriberStatus::Active, SubscriberStatus::Unsubscribed)
    );
    assert!(!second.changed());
    assert_eq!(counts(&pool).await, after_first);
}

#[sqlx::test]
async fn changing_an_unknown_address_says_so_and_writes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let nobody = email("nobody@example.org");
    assert!(matches!(
        store.unsubscribe(&nobody, &ConsentSource::Cli).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_topics(&nobody, &catalog.all(), &ConsentSource::Cli)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.forget(&nobody, &ConsentSource::Cli).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn confirming_someone_who_is_not_pending_is_refused(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    let ann = email("ann@example.org");
    store
        .unsubscribe(&ann, &ConsentSource::Cli)
        .await
        .expect("done");
    let before = counts(&pool).await;
    let err = store
        .confirm(&ann, &ConsentSource::Web)
        .await
        .expect_err("not pending");
    assert!(matches!(err, StoreError::NotPending { .. }), "{err}");
    assert_eq!(counts(&pool).await, before);
}

#[sqlx::test]
async fn forgetting_removes_the_personal_data_and_keeps_a_tombstone(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "Ann.Smith@example.org", "training").await;
    add(&store, "bob@example.org", "events").await;
    let ann = email("ann.smith@example.org");
    store
        .set_topics(
            &ann,
            &store.topic_catalog().await.expect("t").all(),
            &ConsentSource::Cli,
        )
        .await
        .expect("changed");

    store
        .forget(&ann, &ConsentSource::Cli)
        .await
        .expect("forgotten");

    let c = counts(&pool).await;
    assert_eq!((c.subscribers, c.erasures), (1, 1));
    assert_eq!(c.topics, 1, "only Bob's topic is left");
    // Nothing anywhere mentions her: not the address, not her name.
    let dump: String = sqlx::query_scalar!(
        r#"SELECT concat_ws('|',
              (SELECT string_agg(s::text, '|') FROM subscribers s),
              (SELECT string_agg(l::text, '|') FROM consent_log l),
              (SELECT string_agg(e::text, '|') FROM erasures e)) AS "dump!""#
    )
    .fetch_one(&pool)
    .await
    .expect("dump");
    assert!(!dump.to_lowercase().contains("ann"), "{dump}");
    assert!(!dump.contains("Ann Smith"));

    let erasure = store
        .erasure(&ann)
        .await
        .expect("query")
        .expect("a tombstone");
    let actions: Vec<_> = erasure.history.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            ConsentAction::Subscribed,
            ConsentAction::TopicsChanged,
            ConsentAction::Erased
        ]
    );
    assert!(
        store
            .erasure(&email("bob@example.org"))
            .await
            .expect("q")
            .is_none()
    );
}

#[sqlx::test]
async fn a_forgotten_practitioner_can_come_back_when_they_ask(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    let ann = email("ann@example.org");
    store
        .forget(&ann, &ConsentSource::Cli)
        .await
        .expect("forgotten");
    let new = new_subscriber(&store, "ann@example.org", "events").await;

    let refused = store
        .add_subscriber(&new, SubscriberStatus::Pending, &ConsentSource::Web, false)
        .await
        .expect_err("erased");
    assert!(matches!(refused, StoreError::Erased { .. }), "{refused}");

    let back = store
        .add_subscriber(&new, SubscriberStatus::Pending, &ConsentSource::Web, true)
        .await
        .expect("back");
    let history = store.history(&back).await.expect("history");
    assert_eq!(history.len(), 1, "the old history stays with the tombstone");
    assert_eq!(history[0].detail["after_erasure"], true);

    store
        .forget(&ann, &ConsentSource::Cli)
        .await
        .expect("forgotten again");
    assert_eq!(counts(&pool).await.erasures, 1, "one tombstone per address");
}

#[sqlx::test]
async fn the_consent_log_cannot_be_rewritten_or_deleted(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;

    let rewrite = sqlx::query!("UPDATE consent_log SET action = 'unsubscribed'")
        .execute(&pool)
        .await;
    let delete = sqlx::query!("DELETE FROM consent_log").execute(&pool).await;
    let drop_person = sqlx::query!("DELETE FROM subscribers").execute(&pool).await;

    assert!(rewrite.is_err() && delete.is_err());
    assert!(
        drop_person.is_err(),
        "only an erasure may remove a subscriber"
    );
    assert_eq!(counts(&pool).await.log, 1);
}

#[sqlx::test]
async fn a_link_finds_its_subscriber_until_it_is_rotated(pool: PgPool) {
    let store = Store::from_pool(pool);
    add(&store, "ann@example.org", "training").await;
    add(&store, "bob@example.org", "training").await;
    let ann = store
        .subscriber(&email("ann@example.org"))
        .await
        .expect("there");
    let bob = store
        .subscriber(&email("bob@example.org"))
        .await
        .expect("there");

    let token = store.link_token(&ann).await.expect("token");
    let parsed = LinkToken::parse(&token.expose()).expect("well formed");
    assert_eq!(store.find_by_link(&parsed).await.expect("found").id, ann.id);
    assert_ne!(store.link_token(&bob).await.expect("token"), token);
    assert!(!token.expose().contains("ann"));

    let rotated = store
        .rotate_link(&ann, &ConsentSource::Cli)
        .await
        .expect("rotated");

    assert_ne!(rotated, token);
    assert!(matches!(
        store.find_by_link(&token).await,
        Err(StoreError::BadLink(_))
    ));
    assert_eq!(
        store.find_by_link(&rotated).await.expect("found").id,
        ann.id
    );
    let last = store
        .history(&ann)
        .await
        .expect("history")
        .pop()
        .expect("entry");
    assert_eq!(last.action, ConsentAction::LinkRotated);
}

#[sqlx::test]
async fn a_link_with_another_subscribers_secret_is_refused(pool: PgPool) {
    let store = Store::from_pool(pool);
    add(&store, "ann@example.org", "training").await;
    add(&store, "bob@example.org", "training").await;
    let ann = store
        .subscriber(&email("ann@example.org"))
        .await
        .expect("there");
    let bob = store
        .subscriber(&email("bob@example.org"))
        .await
        .expect("there");
    let decode = |t: LinkToken| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.expose())
            .expect("base64")
    };
    let a = decode(store.link_token(&ann).await.expect("token"));
    let b = decode(store.link_token(&bob).await.expect("token"));
    // Ann's public id (the first 16 bytes) with Bob's secret.
    let spliced = [&a[..16], &b[16..]].concat();
    let forged =
        LinkToken::parse(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(spliced))
            .expect("well formed");

    assert!(matches!(
        store.find_by_link(&forged).await,
        Err(StoreError::BadLink(_))
    ));
}

#[sqlx::test]
async fn listing_filters_by_topic_and_status(pool: PgPool) {
    let store = Store::from_pool(pool);
    import(&store, &example_csv()).await;
    store
        .unsubscribe(&email("ella.whitaker@example.org"), &ConsentSource::Cli)
        .await
        .expect("done");
    let list = |status, topic: Option<&str>| {
        let store = store.clone();
        let filter = SubscriberFilter {
            status,
            topic: topic.map(str::to_string),
        };
        async move { store.subscribers(&filter).await.expect("list") }
    };

    assert_eq!(list(None, None).await.len(), 36);
    let training = list(None, Some("training")).await;
    assert_eq!(training.len(), 18);
    assert!(
        training
            .iter()
            .all(|s| s.topics.contains(&"training".into()))
    );
    let active_training = list(Some(SubscriberStatus::Active), Some("training")).await;
    assert_eq!(active_training.len(), 17);
    let gone = list(Some(SubscriberStatus::Unsubscribed), None).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].email.as_str(), "ella.whitaker@example.org");
    let emails: Vec<_> = training.iter().map(|s| s.email.normalised()).collect();
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(emails, sorted, "in address order");
}

#[sqlx::test]
async fn exporting_writes_every_subscriber_with_their_topics(pool: PgPool) {
    let store = Store::from_pool(pool);
    import(&store, &example_csv()).await;
    let all = store
        .subscribers(&SubscriberFilter::default())
        .await
        .expect("list");
    let mut out = Vec::new();
    export::write_csv(&all, &mut out, export::Form::Data).expect("written");

    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        export::COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 36);
    let kate = rows
        .iter()
        .find(|r| &r[0] == "kate.summers@example.org")
        .expect("Kate");
    assert_eq!(&kate[2], "Summers, Hill & Co Solicitors");
    assert_eq!(&kate[3], "reviews");
    assert_eq!(&kate[4], "active");
    let hannah = rows
        .iter()
        .find(|r| &r[0] == "hannah.baker@example.org")
        .expect("Hannah");
    assert_eq!(&hannah[3], "training;protocols;reviews;events");
}

#[sqlx::test]
async fn adding_a_topic_lets_subscribers_choose_it(pool: PgPool) {
    let store = Store::from_pool(pool);
    let topic = TopicInfo {
        slug: "neglect".into(),
        name: "Neglect strategy".into(),
        description: "Updates on the neglect strategy".into(),
    };
    store.add_topic(&topic, None).await.expect("added");

    let stored = store.topics().await.expect("topics");
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[4].info, topic);
    assert_eq!(stored[4].sort_order, 50);
    add(&store, "ann@example.org", "neglect").await;
    let topics = store.topics().await.expect("topics");
    assert_eq!(topics[4].active_subscribers, 1);
}

#[sqlx::test]
async fn a_topic_with_a_bad_or_existing_slug_is_refused(pool: PgPool) {
    let store = Store::from_pool(pool);
    for slug in ["Neglect", "no spaces", ""] {
        let topic = TopicInfo {
            slug: slug.into(),
            name: "X".into(),
            description: String::new(),
        };
        let err = store.add_topic(&topic, None).await.expect_err("refused");
        assert!(matches!(err, StoreError::Topic(_)), "{slug:?}: {err}");
    }
    let training = TopicInfo {
        slug: "training".into(),
        name: "X".into(),
        description: String::new(),
    };
    let err = store.add_topic(&training, None).await.expect_err("exists");
    assert!(matches!(err, StoreError::TopicExists(_)), "{err}");
    assert_eq!(store.topics().await.expect("topics").len(), 4);
}

#[sqlx::test]
async fn the_four_topics_of_the_sign_up_box_are_there_from_the_start(pool: PgPool) {
    let store = Store::from_pool(pool);
    let stored: Vec<_> = store
        .topics()
        .await
        .expect("topics")
        .into_iter()
        .map(|t| t.info)
        .collect();
    assert_eq!(
        stored,
        lscp_mail::content::TopicCatalog::builtin().info().to_vec()
    );
}

#[sqlx::test]
async fn every_status_and_action_the_code_knows_the_schema_accepts(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ann@example.org", "training").await;
    for status in SubscriberStatus::ALL {
        sqlx::query!("UPDATE subscribers SET status = $1", status.as_str())
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
    }
    for action in ConsentAction::ALL {
        sqlx::query!(
            "INSERT INTO consent_log (subscriber_id, action, source)
             SELECT id, $1, 'cli' FROM subscribers",
            action.as_str()
        )
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    }
}
