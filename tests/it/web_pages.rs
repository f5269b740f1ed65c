//! Every endpoint of `lscp-mail serve` over HTTP, against a real PostgreSQL (a fresh database
//! per test) and, for sign-up, a real SMTP server (smtp-sink).

use crate::common;

use std::path::Path;
use std::time::Duration;

use crate::common::smtp_sink::SmtpSink;
use crate::common::web::Site;
use lscp_mail::config::{Dkim, DkimAlgorithm};
use lscp_mail::store::{ConsentSource, SubscriberStatus};
use reqwest::StatusCode;
use sqlx::PgPool;

const MAIL_WAIT: Duration = Duration::from_secs(20);

/// A token of the right shape that belongs to no one.
const FORGED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[sqlx::test]
async fn an_unknown_page_and_every_bad_link_get_the_very_same_404(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training").await;
    // The same id with another secret: a forged link to a real reader.
    let wrong_secret = format!("{}{}", &token[..22], &FORGED[22..]);
    let mut visitor = site.visitor();
    let unknown = visitor.get("/no-such-page").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    for path in [
        format!("/p/{FORGED}"),
        format!("/p/{wrong_secret}"),
        "/p/short".to_string(),
        "/p/not%20a%20token!".to_string(),
        format!("/u/{FORGED}"),
        format!("/u/{wrong_secret}"),
        format!("/confirm/{FORGED}"),
        "/confirm/x".to_string(),
        "/issues/2026-02".to_string(),
        "/issues/february".to_string(),
        "/issues/2026-02/events/dates-for-your-diary-1.ics".to_string(),
    ] {
        let page = visitor.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page.body, unknown.body, "{path}: the body differs");
        assert_eq!(page.header("set-cookie"), None, "{path}");
    }
    let posted = visitor
        .post_raw(
            &format!("/u/{wrong_secret}"),
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click".into(),
        )
        .await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
    assert_eq!(posted.body, unknown.body);
    assert_eq!(site.now(&ann).await.status, SubscriberStatus::Active);
}

#[sqlx::test]
async fn every_page_is_sent_with_the_security_headers(pool: PgPool) {
    let site = Site::start(pool).await;
    let (_, token) = site.reader("ann@example.org", "training").await;
    let mut visitor = site.visitor();
    for path in [
        format!("/p/{token}"),
        format!("/u/{token}"),
        "/subscribe".into(),
        "/issues".into(),
        "/nowhere".into(),
    ] {
        let page = visitor.get(&path).await;
        let csp = page.header("content-security-policy").unwrap_or("");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP {csp:?} lacks {directive}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(
            page.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(
            !page.body.contains("<script>") && !page.body.contains("style="),
            "{path}: inline script or style"
        );
    }
    let with_token = visitor.get(&format!("/p/{token}")).await;
    assert_eq!(with_token.header("cache-control"), Some("no-store"));
}

#[sqlx::test]
async fn the_preferences_page_shows_every_topic_and_only_part_of_the_address(pool: PgPool) {
    let site = Site::start(pool).await;
    let (_, token) = site
        .reader("ann.smith@example.org", "training,events")
        .await;
    let page = site.visitor().get(&format!("/p/{token}")).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("ann.smith@"), "the address is masked");
    assert!(page.body.contains("a•••@example.org"));
    for topic in site.catalog().info() {
        assert!(page.body.contains(&topic.description), "{}", topic.slug);
        let checked = format!("value=\"{}\" checked", topic.slug);
        let should = topic.slug == "training" || topic.slug == "events";
        assert_eq!(page.body.contains(&checked), should, "{}", topic.slug);
    }
    assert!(page.body.contains(">Save</button>"));
    assert!(page.body.contains("Unsubscribe from everything"));
    assert!(page.body.contains("class=\"quick-leave\""));
    assert!(
        page.header("set-cookie")
            .is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict"))
    );
}

#[sqlx::test]
async fn saving_preferences_adds_and_removes_topics_and_logs_it_as_web(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training,events").await;
    let mut visitor = site.visitor();
    let form = visitor.get(&format!("/p/{token}")).await;
    let csrf = form.form_token(&format!("/p/{token}"));

    let saved = visitor
        .post(
            &format!("/p/{token}"),
            &[("csrf", &csrf), ("topic", "training"), ("topic", "reviews")],
        )
        .await;

    assert_eq!(saved.status, StatusCode::OK);
    assert!(saved.body.contains("Your choices are saved"));
    assert!(
        saved.body.contains("Learning from reviews"),
        "says what was added"
    );
    assert!(
        saved.body.contains("Events and campaigns"),
        "says what was removed"
    );
    assert_eq!(site.now(&ann).await.topics, ["training", "reviews"]);
    assert_eq!(
        site.last_log().await,
        ("topics_changed".to_string(), "web".to_string())
    );

    let again = visitor
        .post(
            &format!("/p/{token}"),
            &[("csrf", &csrf), ("topic", "training"), ("topic", "reviews")],
        )
        .await;
    assert!(again.body.contains("Nothing changed"));
}

#[sqlx::test]
async fn a_form_post_without_its_own_token_and_cookie_is_refused_and_changes_nothing(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training").await;
    let prefs = format!("/p/{token}");
    let mut visitor = site.visitor();
    let page = visitor.get(&prefs).await;
    let csrf = page.form_token(&prefs);
    let unsubscribe_csrf = page.form_token(&format!("/u/{token}"));
    let before = site.log_entries().await;

    // No token; another form's token; a token with another browser's cookie; no cookie.
    let no_token = visitor.post(&prefs, &[("topic", "events")]).await;
    let other_form = visitor
        .post(&prefs, &[("csrf", &unsubscribe_csrf), ("topic", "events")])
        .await;
    let mut stranger = site.visitor();
    stranger.get("/subscribe").await;
    let other_cookie = stranger
        .post(&prefs, &[("csrf", &csrf), ("topic", "events")])
        .await;
    let mut cookieless = site.visitor();
    let no_cookie = cookieless
        .post(&prefs, &[("csrf", &csrf), ("topic", "events")])
        .await;
    let unsubscribe = site
        .visitor()
        .post(&format!("/u/{token}"), &[("csrf", &unsubscribe_csrf)])
        .await;
    let signup = site
        .visitor()
        .post(
            "/subscribe",
            &[("email", "bob@example.org"), ("topic", "training")],
        )
        .await;

    for (what, page) in [
        ("no token", no_token),
        ("another form's token", other_form),
        ("another browser's cookie", other_cookie),
        ("no cookie", no_cookie),
        ("unsubscribe without a cookie", unsubscribe),
        ("sign-up without a token", signup),
    ] {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}");
        assert!(page.body.contains("Please try again"), "{what}");
    }
    assert_eq!(site.log_entries().await, before);
    let now = site.now(&ann).await;
    assert_eq!(
        (now.status, now.topics),
        (SubscriberStatus::Active, vec!["training".into()])
    );
}

#[sqlx::test]
async fn opening_the_unsubscribe_link_changes_nothing(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training").await;
    let before = site.log_entries().await;
    let mut scanner = site.visitor();

    for _ in 0..3 {
        let page = scanner.get(&format!("/u/{token}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(">Unsubscribe</button>"));
    }
    scanner.get(&format!("/p/{token}")).await;

    assert_eq!(site.now(&ann).await, ann);
    assert_eq!(site.log_entries().await, before);
}

#[sqlx::test]
async fn a_one_click_post_unsubscribes_at_once_with_200_and_no_redirect(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training").await;
    let mut mail_provider = site.visitor();

    let page = mail_provider
        .post_raw(
            &format!("/u/{token}"),
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click".into(),
        )
        .await;

    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("location"), None);
    assert!(page.body.contains("You are unsubscribed"));
    assert_eq!(site.now(&ann).await.status, SubscriberStatus::Unsubscribed);
    assert_eq!(
        site.last_log().await,
        ("unsubscribed".to_string(), "one-click".to_string())
    );

    // A second press is fine and changes nothing more.
    let before = site.log_entries().await;
    let again = mail_provider
        .post_raw(
            &format!("/u/{token}"),
            "multipart/form-data; boundary=b",
            "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n".into(),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(site.log_entries().await, before);
}

#[sqlx::test]
async fn the_unsubscribe_button_logs_web_and_the_page_offers_to_resubscribe(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, token) = site.reader("ann@example.org", "training,reviews").await;
    let mut visitor = site.visitor();
    let path = format!("/u/{token}");
    let csrf = visitor.get(&path).await.form_token(&path);

    let page = visitor.post(&path, &[("csrf", &csrf)]).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are unsubscribed"));
    assert_eq!(site.now(&ann).await.status, SubscriberStatus::Unsubscribed);
    assert_eq!(
        site.last_log().await,
        ("unsubscribed".to_string(), "web".to_string())
    );

    let resubscribe = format!("/p/{token}/resubscribe");
    let back = visitor
        .post(&resubscribe, &[("csrf", &page.form_token(&resubscribe))])
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert!(back.body.contains("Welcome back"));
    let now = site.now(&ann).await;
    assert_eq!(now.status, SubscriberStatus::Active);
    assert_eq!(
        now.topics,
        ["training", "reviews"],
        "with the topics they had"
    );
    assert_eq!(
        site.last_log().await,
        ("subscribed".to_string(), "web".to_string())
    );
}

#[sqlx::test]
async fn a_replaced_link_stops_working(pool: PgPool) {
    let site = Site::start(pool).await;
    let (ann, old) = site.reader("ann@example.org", "training").await;
    let new = site
        .store
        .rotate_link(&ann, &ConsentSource::Cli)
        .await
        .expect("rotated")
        .expose();
    let mut visitor = site.visitor();
    assert_eq!(
        visitor.get(&format!("/p/{old}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visitor.get(&format!("/p/{new}")).await.status,
        StatusCode::OK
    );
}

/// Signs up through the form; the page it answers with.
async fn sign_up(site: &Site, email: &str, topics: &[&str]) -> common::web::Page {
    let mut visitor = site.visitor();
    let csrf = visitor.get("/subscribe").await.form_token("/subscribe");
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("email", email),
        ("name", "Bob Jones"),
    ];
    fields.extend(topics.iter().map(|t| ("topic", *t)));
    visitor.post("/subscribe", &fields).await
}

/// The confirmation link's path in a message.
fn confirm_path(site: &Site, text: &str) -> String {
    let start = text
        .find(&site.url("/confirm/"))
        .unwrap_or_else(|| panic!("no confirmation link in:\n{text}"));
    text[start + site.base.len()..]
        .split_whitespace()
        .next()
        .expect("the link")
        .to_string()
}

#[sqlx::test]
async fn signing_up_sends_a_link_that_confirms_once_with_the_topics_chosen(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;

    let page = sign_up(&site, "Bob@Example.org", &["training", "events"]).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Check your inbox"));
    let bob = site
        .store
        .subscriber(&"bob@example.org".parse().expect("address"))
        .await
        .expect("added");
    assert_eq!(bob.status, SubscriberStatus::Pending);
    assert_eq!(
        site.last_log().await,
        ("subscribed".to_string(), "web".to_string())
    );
    let mail = sink.wait_for(1, MAIL_WAIT).await;
    assert_eq!(mail[0].recipients(), ["Bob@Example.org"]);
    let path = confirm_path(&site, &mail[0].text());

    let mut visitor = site.visitor();
    let confirm_page = visitor.get(&path).await;
    assert_eq!(confirm_page.status, StatusCode::OK);
    assert_eq!(
        site.now(&bob).await.status,
        SubscriberStatus::Pending,
        "GET changes nothing"
    );
    let csrf = confirm_page.form_token(&path);
    let confirmed = visitor.post(&path, &[("csrf", &csrf)]).await;

    assert_eq!(confirmed.status, StatusCode::OK);
    assert!(confirmed.body.contains("You are subscribed"));
    let now = site.now(&bob).await;
    assert_eq!(now.status, SubscriberStatus::Active);
    assert_eq!(now.topics, ["training", "events"]);
    assert!(now.confirmed_at.is_some());
    assert_eq!(
        site.last_log().await,
        ("confirmed".to_string(), "web".to_string())
    );

    let reused = visitor.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(reused.status, StatusCode::GONE);
    assert!(reused.body.contains("This link has been used"));
    assert_eq!(visitor.get(&path).await.status, StatusCode::GONE);
}

/// What a stranger would type to make our server mail a colleague their words.
const STRANGER_NAME: &str = "Your account is locked: https://evil.example/unlock";
const STRANGER_ORGANISATION: &str = "Call 0800 000 0000";

/// Signs `email` up through the form as a stranger could, with a name and organisation.
async fn sign_up_as_stranger(site: &Site, email: &str) {
    let mut visitor = site.visitor();
    let csrf = visitor.get("/subscribe").await.form_token("/subscribe");
    let page = visitor
        .post(
            "/subscribe",
            &[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("name", STRANGER_NAME),
                ("organisation", STRANGER_ORGANISATION),
                ("topic", "training"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
}

#[sqlx::test]
async fn a_confirmation_mail_carries_nothing_a_visitor_typed(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;

    sign_up_as_stranger(&site, "colleague@example.org").await;

    let mail = sink.wait_for(1, MAIL_WAIT).await;
    let raw = String::from_utf8_lossy(&mail[0].raw).into_owned();
    for typed in ["evil.example", "locked", "0800"] {
        assert!(
            !raw.contains(typed),
            "{typed:?} reached the mailbox:\n{raw}"
        );
    }
    let colleague = site
        .store
        .subscriber(&"colleague@example.org".parse().expect("address"))
        .await
        .expect("pending");
    assert_eq!(
        (colleague.name, colleague.organisation),
        (None, None),
        "nothing typed is kept against an address that has not confirmed"
    );
}

/// Confirms through the link in `text` with this name and organisation; the answer.
async fn confirm_as(site: &Site, text: &str, name: &str, organisation: &str) -> common::web::Page {
    let path = confirm_path(site, text);
    let mut visitor = site.visitor();
    let page = visitor.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.form_token(&path);
    visitor
        .post(
            &path,
            &[
                ("csrf", csrf.as_str()),
                ("name", name),
                ("organisation", organisation),
            ],
        )
        .await
}

#[sqlx::test]
async fn the_name_kept_is_the_one_given_with_the_confirmation(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;
    sign_up_as_stranger(&site, "owner@example.org").await;
    sink.wait_for(1, MAIL_WAIT).await;
    // The owner signs up too, and confirms from their own mail.
    sign_up(&site, "owner@example.org", &["events"]).await;
    let mail = sink.wait_for(2, MAIL_WAIT).await;

    let confirmed = confirm_as(&site, &mail[1].text(), "Olu Owner", "Leeds City Council").await;

    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let owner = site
        .store
        .subscriber(&"owner@example.org".parse().expect("address"))
        .await
        .expect("there");
    assert_eq!(owner.status, SubscriberStatus::Active);
    assert_eq!(
        (owner.name.as_deref(), owner.organisation.as_deref()),
        (Some("Olu Owner"), Some("Leeds City Council"))
    );
    assert_eq!(owner.topics, ["events"]);
}

#[sqlx::test]
async fn a_name_not_one_short_line_is_refused_when_confirming_and_the_link_still_works(
    pool: PgPool,
) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;
    sign_up(&site, "bob@example.org", &["training"]).await;
    let text = sink.wait_for(1, MAIL_WAIT).await[0].text();

    let refused = confirm_as(&site, &text, "Bob\r\nBcc: everyone@example.org", "").await;

    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .body
            .contains("Your name must be one line of ordinary text"),
        "{}",
        refused.body
    );
    let bob = site
        .store
        .subscriber(&"bob@example.org".parse().expect("address"))
        .await
        .expect("there");
    assert_eq!(bob.status, SubscriberStatus::Pending);
    let too_long = confirm_as(&site, &text, "Bob Jones", &"N".repeat(201)).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert!(
        too_long
            .body
            .contains("Your organisation must be 200 characters or fewer"),
        "{}",
        too_long.body
    );
    assert!(
        too_long.body.contains("value=\"Bob Jones\""),
        "what was typed stays"
    );
    assert!(too_long.body.contains("aria-invalid=\"true\""));
    let confirmed = confirm_as(&site, &text, "Bob Jones", "").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(site.now(&bob).await.name.as_deref(), Some("Bob Jones"));
}

#[sqlx::test]
async fn the_sign_up_mails_are_dkim_signed_like_the_newsletter(pool: PgPool) {
    // OpenSSL 3's default form, PKCS#8: the one lettre alone does not read.
    let key = common::dkim::rsa_key("");
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |c| {
        c.dkim = Some(Dkim {
            domain: "leedsscp.org.uk".into(),
            selector: "lscp2026".into(),
            key_file: key.path.clone(),
            algorithm: DkimAlgorithm::RsaSha256,
        });
    })
    .await;
    site.reader("ann@example.org", "training").await;

    sign_up(&site, "bob@example.org", &["training"]).await;
    sink.wait_for(1, MAIL_WAIT).await;
    sign_up(&site, "ann@example.org", &["events"]).await;
    let mail = sink.wait_for(2, MAIL_WAIT).await;

    assert!(mail[0].text().contains("/confirm/"), "a confirmation");
    assert!(
        mail[1].text().contains("/p/"),
        "an \"already subscribed\" note"
    );
    for m in &mail {
        let message = common::dkim::as_sent(&m.raw);
        let sig = common::dkim::signature(&message);
        assert!(sig.contains("d=leedsscp.org.uk"), "{sig}");
        assert!(
            common::dkim::verifies(message.as_bytes(), &key.record),
            "the signature verifies:\n{message}"
        );
    }
}

#[sqlx::test]
async fn an_expired_confirmation_link_confirms_nothing(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;
    sign_up(&site, "bob@example.org", &["training"]).await;
    let path = confirm_path(&site, &sink.wait_for(1, MAIL_WAIT).await[0].text());
    let mut visitor = site.visitor();
    let csrf = visitor.get(&path).await.form_token(&path);
    sqlx::query!(
        "UPDATE signup_confirmations SET created_at = now() - interval '49 hours',
                expires_at = now() - interval '1 hour'"
    )
    .execute(&site.pool)
    .await
    .expect("aged");

    let page = visitor.get(&path).await;
    let posted = visitor.post(&path, &[("csrf", &csrf)]).await;

    for page in [page, posted] {
        assert_eq!(page.status, StatusCode::GONE);
        assert!(page.body.contains("This link has expired"));
    }
    let bob = site
        .store
        .subscriber(&"bob@example.org".parse().expect("address"))
        .await
        .expect("there");
    assert_eq!(bob.status, SubscriberStatus::Pending);
}

#[sqlx::test]
async fn signing_up_again_or_when_already_subscribed_reveals_nothing(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;
    site.reader("ann@example.org", "training").await;
    let same = |page: &common::web::Page, email: &str| page.body.replace(email, "EMAIL");

    let timed = async |email: &str, topics: &[&str]| {
        let started = std::time::Instant::now();
        let page = sign_up(&site, email, topics).await;
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "answered after a floor, whatever the database did"
        );
        page
    };
    let new = timed("bob@example.org", &["training"]).await;
    sink.wait_for(1, MAIL_WAIT).await;
    let pending = timed("bob@example.org", &["events"]).await;
    sink.wait_for(2, MAIL_WAIT).await;
    let active = timed("ann@example.org", &["events"]).await;
    let mail = sink.wait_for(3, MAIL_WAIT).await;

    for page in [&new, &pending, &active] {
        assert_eq!(page.status, StatusCode::OK);
    }
    assert_eq!(
        same(&pending, "bob@example.org"),
        same(&new, "bob@example.org")
    );
    assert_eq!(
        same(&active, "ann@example.org"),
        same(&new, "bob@example.org")
    );
    let subscribers = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM subscribers"#)
        .fetch_one(&site.pool)
        .await
        .expect("count");
    assert_eq!(subscribers, 2, "no one was added twice");
    // The pending address got a fresh link; the active one a note with its preferences link.
    let to_ann = mail
        .iter()
        .find(|m| m.recipients() == ["ann@example.org"])
        .expect("a note to Ann");
    assert!(
        to_ann.text().contains(&site.url("/p/")),
        "{}",
        to_ann.text()
    );
    assert!(!to_ann.text().contains("/confirm/"));
    let to_bob: Vec<String> = mail
        .iter()
        .filter(|m| m.recipients() == ["bob@example.org"])
        .map(|m| confirm_path(&site, &m.text()))
        .collect();
    assert_eq!(to_bob.len(), 2);
    assert_ne!(to_bob[0], to_bob[1], "a fresh link each time");
    assert_eq!(
        site.store
            .subscriber(&"ann@example.org".parse().expect("address"))
            .await
            .expect("Ann")
            .topics,
        ["training"],
        "an active reader's topics are not changed by a sign-up"
    );
}

#[sqlx::test]
async fn a_sign_up_with_mistakes_is_shown_again_with_what_is_wrong(pool: PgPool) {
    let site = Site::start(pool).await;
    let mut visitor = site.visitor();
    let csrf = visitor.get("/subscribe").await.form_token("/subscribe");

    let page = visitor
        .post(
            "/subscribe",
            &[("csrf", &csrf), ("email", "bob at example")],
        )
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    for message in [
        "Enter an email address like name@example.org",
        "Choose at least one topic",
    ] {
        assert!(page.body.contains(message), "{message}");
    }
    assert!(
        page.body.contains("value=\"bob at example\""),
        "what was typed stays"
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert_eq!(site.log_entries().await, 0);
}

#[sqlx::test]
async fn too_many_requests_from_one_client_are_held_back(pool: PgPool) {
    let site = Site::start_with(pool, "smtp://127.0.0.1:9", |c| {
        c.serve.signup_per_hour = 2;
        c.serve.link_requests_per_minute = 3;
    })
    .await;
    let (_, token) = site.reader("ann@example.org", "training").await;
    let mut visitor = site.visitor();
    let csrf = visitor.get("/subscribe").await.form_token("/subscribe");
    let mut statuses = Vec::new();
    for i in 0..3 {
        let email = format!("person{i}@example.org");
        let page = visitor
            .post(
                "/subscribe",
                &[("csrf", &csrf), ("email", &email), ("topic", "training")],
            )
            .await;
        statuses.push(page.status);
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(page.header("retry-after").is_some());
            assert!(page.body.contains("Too many requests"));
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );

    let mut links = Vec::new();
    for _ in 0..4 {
        links.push(visitor.get(&format!("/p/{token}")).await.status);
    }
    assert_eq!(links[3], StatusCode::TOO_MANY_REQUESTS);
    // Mail providers' one-click posts are never held back.
    let one_click = visitor
        .post_raw(
            &format!("/u/{token}"),
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click".into(),
        )
        .await;
    assert_eq!(one_click.status, StatusCode::OK);
}

#[sqlx::test]
async fn only_sent_issues_are_in_the_archive(pool: PgPool) {
    let site = Site::start(pool).await;
    let mut visitor = site.visitor();
    let empty = visitor.get("/issues").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No issue has been sent yet"));

    site.mark_sent("2026-02").await;
    let list = visitor.get("/issues").await;
    let issue = visitor.get("/issues/2026-02").await;

    assert!(list.body.contains("href=\"/issues/2026-02\""));
    assert!(list.body.contains("February 2026 newsletter"));
    assert!(!list.body.contains("2025-11"), "not sent");
    assert_eq!(issue.status, StatusCode::OK);
    let loaded = lscp_mail::content::load_issue(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("issues/2026-02"),
        &site.catalog(),
    )
    .issue
    .expect("loads");
    for section in &loaded.sections {
        assert!(
            issue.body.contains(&format!("id=\"{}\"", section.anchor)),
            "section {} is on the page",
            section.anchor
        );
    }
    assert!(issue.body.contains("Add to calendar"));
    assert!(
        !issue.body.contains("style="),
        "no inline styles for the CSP to block"
    );
    assert_eq!(
        visitor.get("/issues/2025-11").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(visitor.get("/").await.header("location"), Some("/issues"));
}

#[sqlx::test]
async fn a_cancelled_issue_stays_in_the_archive_only_if_some_readers_were_sent_it(pool: PgPool) {
    let site = Site::start(pool).await;
    site.reader("ann@example.org", "training,events").await;
    let campaign = site.mark_sent("2026-02").await;
    let mut visitor = site.visitor();
    let cancel = async || {
        sqlx::query!(
            "UPDATE campaigns SET status = 'cancelled' WHERE id = $1",
            campaign.get()
        )
        .execute(&site.pool)
        .await
        .expect("cancelled");
    };

    cancel().await;
    assert_eq!(
        visitor.get("/issues/2026-02").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !visitor
            .get("/issues")
            .await
            .body
            .contains("/issues/2026-02")
    );

    sqlx::query!(
        "UPDATE deliveries SET status = 'sent', sent_at = now() WHERE campaign_id = $1",
        campaign.get()
    )
    .execute(&site.pool)
    .await
    .expect("sent to Ann");
    assert_eq!(visitor.get("/issues/2026-02").await.status, StatusCode::OK);
    assert!(
        visitor
            .get("/issues")
            .await
            .body
            .contains("/issues/2026-02")
    );
}

#[sqlx::test]
async fn every_calendar_link_on_an_issue_gives_an_rfc_5545_event(pool: PgPool) {
    let site = Site::start(pool).await;
    site.mark_sent("2026-02").await;
    let mut visitor = site.visitor();
    let issue = visitor.get("/issues/2026-02").await;
    let links: Vec<String> = issue
        .body
        .split("class=\"calendar\" href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|url| url.trim_start_matches(&site.base).to_string())
        .collect();
    assert!(links.len() >= 10, "{links:?}");

    for link in &links {
        let ics = visitor.get(link).await;
        assert_eq!(ics.status, StatusCode::OK, "{link}");
        assert_eq!(
            ics.header("content-type"),
            Some("text/calendar; charset=utf-8")
        );
        let body = &ics.body;
        assert!(
            body.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
            "{link}"
        );
        assert!(body.ends_with("END:VCALENDAR\r\n"), "{link}");
        assert!(!body.replace("\r\n", "").contains('\n'), "{link}: bare LF");
        for line in body.split("\r\n") {
            assert!(line.len() <= 75, "{link}: {} octets: {line}", line.len());
        }
        let unfolded = body.replace("\r\n ", "");
        assert!(unfolded.contains("\r\nUID:2026-02-"), "{link}");
        assert!(
            unfolded.contains("\r\nDTSTAMP:20260202T000000Z\r\n"),
            "{link}"
        );
        if link.contains("-session-") {
            assert!(
                unfolded.contains("DTSTART;TZID=Europe/London:2026"),
                "{link}"
            );
            assert!(
                unfolded.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/London"),
                "{link}"
            );
        } else {
            assert!(unfolded.contains("DTSTART;VALUE=DATE:2026"), "{link}");
        }
    }
    let safer_sleep = visitor
        .get("/issues/2026-02/events/dates-for-your-diary-1.ics")
        .await
        .body
        .replace("\r\n ", "");
    assert!(safer_sleep.contains("DTSTART;VALUE=DATE:20260309\r\n"));
    assert!(
        safer_sleep.contains("DTEND;VALUE=DATE:20260316\r\n"),
        "the end is exclusive"
    );
    assert!(safer_sleep.contains("SUMMARY:Safer Sleep Week\r\n"));
    let session = visitor
        .get("/issues/2026-02/events/lscp-training-new-dates-for-2026-1-session-1.ics")
        .await
        .body
        .replace("\r\n ", "");
    assert!(session.contains("DTSTART;TZID=Europe/London:20260414T090000\r\n"));
    assert!(session.contains("DTEND;TZID=Europe/London:20260414T151500\r\n"));
    assert_eq!(
        visitor
            .get("/issues/2026-02/events/nothing-1.ics")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn health_the_stylesheet_and_the_script_are_served(pool: PgPool) {
    let site = Site::start(pool).await;
    let mut visitor = site.visitor();
    let health = visitor.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let css = visitor.get("/static/site.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.body.contains("#4b2e83"), "in the brand's colours");
    let js = visitor.get("/static/quick-leave.js").await;
    assert!(js.body.contains("location.replace"));
}

#[sqlx::test]
async fn hostile_text_cannot_add_a_line_to_a_served_calendar_file(pool: PgPool) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile-calendar");
    let site = Site::start_with(pool, common::web::NOWHERE, |config| {
        config.serve.issues_dir = fixture.clone();
    })
    .await;
    site.mark_sent_from(&fixture.join("2026-02")).await;
    let mut visitor = site.visitor();
    for event in ["training-1-session-1", "diary-1"] {
        let ics = visitor
            .get(&format!("/issues/2026-02/events/{event}.ics"))
            .await;
        assert_eq!(ics.status, StatusCode::OK, "{event}");
        let unfolded = ics.body.replace("\r\n ", "");
        assert!(
            !unfolded.replace("\r\n", "").contains(['\r', '\n']),
            "{event}: a bare CR or LF: {unfolded:?}"
        );
        let names: Vec<&str> = unfolded
            .split("\r\n")
            .map(|line| line.split([':', ';']).next().unwrap_or(""))
            .collect();
        for injected in ["ATTENDEE", "TRIGGER"] {
            assert!(!names.contains(&injected), "{event}: {unfolded}");
        }
        let alarms = unfolded.matches("\r\nBEGIN:VALARM\r\n").count();
        assert_eq!(alarms, 0, "{event}: {unfolded}");
        assert!(
            unfolded.contains("\\nATTENDEE"),
            "the text is kept, escaped: {unfolded}"
        );
    }
}
