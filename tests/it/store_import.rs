//! `subscribers import`: every bad-input case, idempotence, and nothing partial written.

use crate::common::store::*;
use lscp_mail::store::import::{
    BULK_MIN_ROWS, ImportError, ImportFile, KEPT_LISTED, KeptReason, RowProblem, Silent,
};
use lscp_mail::store::{ConsentAction, ConsentSource, Store, SubscriberFilter, SubscriberStatus};
use sqlx::PgPool;

const HEADER: &str = "email,name,organisation,topics\n";

#[sqlx::test]
async fn importing_the_example_file_adds_every_practitioner_with_their_topics(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let (file, report) = import(&store, &example_csv()).await;

    assert!(file.problems.is_empty(), "{:?}", file.problems);
    assert_eq!(report.added.len(), 36);
    let amara = store
        .subscriber(&email("amara.okafor@example.org"))
        .await
        .expect("there");
    assert_eq!(amara.topics, ["training", "protocols"]);
    assert_eq!(amara.name.as_deref(), Some("Amara Okafor"));
    assert_eq!(
        amara.organisation.as_deref(),
        Some("Northfield Primary School")
    );
    assert_eq!(amara.status, SubscriberStatus::Active);
    let kate = store
        .subscriber(&email("kate.summers@example.org"))
        .await
        .expect("there");
    assert_eq!(
        kate.organisation.as_deref(),
        Some("Summers, Hill & Co Solicitors")
    );
    let ella = store
        .subscriber(&email("ella.whitaker@example.org"))
        .await
        .expect("there");
    assert_eq!(ella.organisation, None, "an empty cell is no organisation");
}

#[sqlx::test]
async fn an_address_is_kept_as_given_and_found_in_any_case(pool: PgPool) {
    let store = Store::from_pool(pool);
    import(&store, &example_csv()).await;
    let usman = store
        .subscriber(&email("usman.ali@example.org"))
        .await
        .expect("there");
    assert_eq!(usman.email.as_str(), "Usman.Ali@Example.org");
}

#[sqlx::test]
async fn a_row_with_an_empty_topics_cell_gets_the_default_topics(pool: PgPool) {
    let store = Store::from_pool(pool);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(&dir, "t.csv", format!("{HEADER}ann@example.org,Ann,,\n"));
    let catalog = store.topic_catalog().await.expect("topics");
    let file =
        ImportFile::read(&path, &catalog, &topics(&catalog, "events"), &Silent).expect("readable");
    store
        .import(&file, SubscriberStatus::Active, &Silent)
        .await
        .expect("imported");
    let ann = store
        .subscriber(&email("ann@example.org"))
        .await
        .expect("there");
    assert_eq!(ann.topics, ["events"]);

    let (_, _) = import(
        &store,
        &csv(&dir, "u.csv", format!("{HEADER}bob@example.org,,,\n")),
    )
    .await;
    let bob = store
        .subscriber(&email("bob@example.org"))
        .await
        .expect("there");
    assert_eq!(bob.topics, ["training", "protocols", "reviews", "events"]);
}

#[sqlx::test]
async fn reimporting_the_same_file_changes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    import(&store, &example_csv()).await;
    let before = counts(&pool).await;
    let listed = store
        .subscribers(&SubscriberFilter::default())
        .await
        .expect("list");

    let (_, report) = import(&store, &example_csv()).await;

    assert_eq!(counts(&pool).await, before);
    assert_eq!(
        store
            .subscribers(&SubscriberFilter::default())
            .await
            .expect("list"),
        listed,
        "not even a timestamp changed"
    );
    assert!(report.added.is_empty());
    assert_eq!(
        report.count(|r| matches!(r, KeptReason::AlreadySubscribed(_))),
        36
    );
}

#[sqlx::test]
async fn each_added_row_is_logged_with_its_file_and_line(pool: PgPool) {
    let store = Store::from_pool(pool);
    import(&store, &example_csv()).await;
    let ben = store
        .subscriber(&email("ben.hartley@example.org"))
        .await
        .expect("there");
    let history = store.history(&ben).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, ConsentAction::Subscribed);
    assert_eq!(history[0].source, ConsentSource::import(&example_csv()));
    assert_eq!(history[0].detail["line"], 3);
    assert_eq!(history[0].detail["topics"], serde_json::json!(["reviews"]));
    assert_eq!(history[0].detail["status"], "active");
}

#[sqlx::test]
async fn an_unsubscribed_practitioner_is_not_resubscribed_by_import(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    import(&store, &example_csv()).await;
    let ben = email("ben.hartley@example.org");
    store
        .unsubscribe(&ben, &ConsentSource::Cli)
        .await
        .expect("unsubscribed");
    let before = counts(&pool).await;

    let (_, report) = import(&store, &example_csv()).await;

    assert_eq!(counts(&pool).await, before);
    let kept: Vec<_> = report
        .kept
        .iter()
        .filter(|k| matches!(k.reason, KeptReason::HasLeft(_)))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].line, kept[0].email.as_str()),
        (3, "ben.hartley@example.org")
    );
    assert_eq!(
        kept[0].reason.to_string(),
        "unsubscribed, so not resubscribed"
    );
    let ben = store.subscriber(&ben).await.expect("there");
    assert_eq!(ben.status, SubscriberStatus::Unsubscribed);
}

#[sqlx::test]
async fn a_re_import_keeping_more_rows_than_a_report_lists_counts_them_all_and_lists_the_first(
    pool: PgPool,
) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let total = KEPT_LISTED + 250;
    let mut text = String::from(HEADER);
    for i in 0..total {
        text.push_str(&format!("person{i}@example.org,Person {i},,training\n"));
    }
    let path = csv(&dir, "many.csv", text);
    import(&store, &path).await;
    // The last ten rows' people unsubscribe: their lines come after every listed one.
    for i in total - 10..total {
        store
            .unsubscribe(
                &email(&format!("person{i}@example.org")),
                &ConsentSource::Cli,
            )
            .await
            .expect("unsubscribed");
    }
    let line_of = |i: usize| i as u64 + 2;

    let (_, report) = import(&store, &path).await;

    let already = |r: &KeptReason| matches!(r, KeptReason::AlreadySubscribed(_));
    assert_eq!(report.count(already), total - 10);
    assert_eq!(
        report.count_unlisted(already),
        (total - 10 - KEPT_LISTED) as u64
    );
    let listed: Vec<_> = report
        .kept
        .iter()
        .filter(|k| already(&k.reason))
        .map(|k| k.line)
        .collect();
    assert_eq!(listed, (0..KEPT_LISTED).map(line_of).collect::<Vec<_>>());
    let left: Vec<_> = report
        .kept
        .iter()
        .filter(|k| matches!(k.reason, KeptReason::HasLeft(_)))
        .map(|k| (k.line, k.email.as_str()))
        .collect();
    assert_eq!(left.len(), 10);
    let first_left = format!("person{}@example.org", total - 10);
    assert_eq!(left[0], (line_of(total - 10), first_left.as_str()));
    assert_eq!(
        report.count(|r| *r == KeptReason::HasLeft(SubscriberStatus::Unsubscribed)),
        10
    );
    assert!(report.kept.is_sorted_by_key(|k| k.line));
    assert!(report.added.is_empty());
}

#[sqlx::test]
async fn bounced_and_blocked_practitioners_are_not_resubscribed_by_import(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    import(&store, &example_csv()).await;
    sqlx::query!(
        "UPDATE subscribers SET status = 'bounced' WHERE email_normalised = 'ben.hartley@example.org'"
    )
    .execute(&pool)
    .await
    .expect("bounced");
    sqlx::query!(
        "UPDATE subscribers SET status = 'blocked' WHERE email_normalised = 'grace.liu@example.org'"
    )
    .execute(&pool)
    .await
    .expect("blocked");

    let (_, report) = import(&store, &example_csv()).await;

    assert_eq!(
        report.count(|r| *r == KeptReason::HasLeft(SubscriberStatus::Bounced)),
        1
    );
    assert_eq!(
        report.count(|r| *r == KeptReason::HasLeft(SubscriberStatus::Blocked)),
        1
    );
    assert!(report.added.is_empty());
}

#[sqlx::test]
async fn a_forgotten_practitioner_is_not_added_back_by_import(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    import(&store, &example_csv()).await;
    let usman = email("usman.ali@example.org");
    store
        .forget(&usman, &ConsentSource::Cli)
        .await
        .expect("forgotten");
    let before = counts(&pool).await;

    let (_, report) = import(&store, &example_csv()).await;

    assert_eq!(counts(&pool).await, before);
    let erased: Vec<_> = report
        .kept
        .iter()
        .filter(|k| matches!(k.reason, KeptReason::Erased(_)))
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].line, 22);
    assert!(
        erased[0]
            .reason
            .to_string()
            .starts_with("previously erased")
    );
    assert!(store.subscriber(&usman).await.is_err());
}

#[sqlx::test]
async fn a_bad_email_is_reported_with_its_line_and_skipped(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "bad.csv",
        format!("{HEADER}good@example.org,Good,,\nnot-an-address,Bad,,\nbad@localhost,Bad,,\n"),
    );
    let (file, report) = import(&store, &path).await;

    let lines: Vec<_> = file.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4]);
    assert!(matches!(file.problems[0].problem, RowProblem::BadEmail(_)));
    assert_eq!(report.added, [2]);
    assert_eq!(counts(&pool).await.subscribers, 1, "only the good row");
}

#[sqlx::test]
async fn an_unknown_topic_is_reported_with_its_line_and_skipped(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "t.csv",
        format!("{HEADER}a@example.org,A,,training;cooking\nb@example.org,B,,reviews\n"),
    );
    let (file, report) = import(&store, &path).await;

    assert_eq!(file.problems.len(), 1);
    assert_eq!(file.problems[0].line, 2);
    assert!(
        file.problems[0]
            .problem
            .to_string()
            .contains("unknown topic `cooking`")
    );
    assert_eq!(report.added, [3]);
    let c = counts(&pool).await;
    assert_eq!((c.subscribers, c.topics, c.log), (1, 1, 1));
}

#[sqlx::test]
async fn a_duplicate_within_one_file_keeps_the_first_row(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "d.csv",
        format!(
            "{HEADER}ann@example.org,Ann,,training\nc@example.org,C,,\nANN@Example.org,Ann again,,events\n"
        ),
    );
    let (file, _) = import(&store, &path).await;

    assert_eq!(file.problems.len(), 1);
    assert_eq!(file.problems[0].line, 4);
    assert_eq!(
        file.problems[0].problem,
        RowProblem::Duplicate { first_line: 2 }
    );
    let ann = store
        .subscriber(&email("ann@example.org"))
        .await
        .expect("there");
    assert_eq!(
        (ann.name.as_deref(), ann.topics.as_slice()),
        (Some("Ann"), &["training".to_string()][..])
    );
    assert_eq!(counts(&pool).await.subscribers, 2);
}

#[sqlx::test]
async fn a_duplicate_across_files_is_left_as_the_first_file_made_it(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let first = csv(
        &dir,
        "1.csv",
        format!("{HEADER}ann@example.org,Ann,,training\n"),
    );
    let second = csv(
        &dir,
        "2.csv",
        format!("{HEADER}Ann@Example.org,Ann Other,Elsewhere,events\nbob@example.org,Bob,,\n"),
    );
    import(&store, &first).await;
    let (_, report) = import(&store, &second).await;

    assert_eq!(report.added, [3]);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].line, 2);
    assert_eq!(
        report.kept[0].reason,
        KeptReason::AlreadySubscribed(SubscriberStatus::Active)
    );
    let ann = store
        .subscriber(&email("ann@example.org"))
        .await
        .expect("there");
    assert_eq!(ann.email.as_str(), "ann@example.org");
    assert_eq!(ann.topics, ["training"]);
    assert_eq!(ann.organisation, None);
    assert_eq!(counts(&pool).await.log, 2, "one entry each for Ann and Bob");
}

#[sqlx::test]
async fn an_empty_file_imports_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(&dir, "empty.csv", "");
    let err = ImportFile::read(&path, &catalog, &catalog.all(), &Silent).expect_err("empty");
    assert!(matches!(err, ImportError::Empty { .. }));
    assert!(err.to_string().contains("nothing was imported"));

    let (file, report) = import(&store, &csv(&dir, "header.csv", HEADER)).await;
    assert!(file.rows.is_empty() && report.added.is_empty());
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn a_file_with_wrong_columns_imports_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let dir = tempfile::tempdir().expect("temp dir");
    for header in [
        "e-mail,name\n",
        "name,organisation\n",
        "email,name,phone\n",
        "email,email\n",
    ] {
        let path = csv(&dir, "cols.csv", format!("{header}ann@example.org,Ann\n"));
        let err =
            ImportFile::read(&path, &catalog, &catalog.all(), &Silent).expect_err("wrong columns");
        assert!(
            matches!(err, ImportError::Columns { .. }),
            "{header}: {err}"
        );
        assert!(err.to_string().contains("cols.csv:1:"), "{err}");
    }
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn a_file_with_bytes_that_are_not_utf8_imports_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bytes = format!("{HEADER}ann@example.org,Ann,,\n").into_bytes();
    bytes.extend_from_slice(b"jose@example.org,Jos\xe9,,\n");
    let path = csv(&dir, "latin1.csv", bytes);

    let err = ImportFile::read(&path, &catalog, &catalog.all(), &Silent).expect_err("not UTF-8");

    assert!(matches!(err, ImportError::NotUtf8 { line: 3, .. }), "{err}");
    assert_eq!(
        counts(&pool).await,
        NOTHING,
        "not even the good row before it"
    );
}

#[sqlx::test]
async fn a_byte_order_mark_from_a_spreadsheet_is_ignored(pool: PgPool) {
    let store = Store::from_pool(pool);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "bom.csv",
        format!("\u{feff}{HEADER}ann@example.org,Ann,,\n"),
    );
    let (file, report) = import(&store, &path).await;
    assert!(file.problems.is_empty());
    assert_eq!(report.added, [2]);
}

#[sqlx::test]
async fn a_ten_megabyte_line_is_skipped_without_flooding_the_report(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let huge = "x".repeat(10 * 1024 * 1024);
    let path = csv(
        &dir,
        "huge.csv",
        format!("{HEADER}ann@example.org,{huge},,\nbob@example.org,Bob,,\n{huge}@example.org,,,\n"),
    );
    let (file, report) = import(&store, &path).await;

    let lines: Vec<_> = file.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4]);
    for p in &file.problems {
        assert!(matches!(p.problem, RowProblem::RowTooLong { .. }));
        assert!(p.problem.to_string().len() < 100);
    }
    assert_eq!(report.added, [3]);
    assert_eq!(counts(&pool).await.subscribers, 1);
}

#[sqlx::test]
async fn a_row_with_the_wrong_number_of_fields_is_skipped(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "f.csv",
        format!("{HEADER}ann@example.org,Ann\nbob@example.org,Bob,,,extra\nc@example.org,C,,\n"),
    );
    let (file, report) = import(&store, &path).await;
    assert_eq!(
        file.problems.iter().map(|p| p.line).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(report.added, [4]);
}

#[sqlx::test]
async fn an_import_that_fails_part_way_writes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let file =
        ImportFile::read(&example_csv(), &catalog, &catalog.all(), &Silent).expect("readable");
    // The topic goes after the file was checked, so the topics statement fails after the
    // subscribers statement has run.
    sqlx::query!("DELETE FROM topics WHERE slug = 'events'")
        .execute(&pool)
        .await
        .expect("deleted");

    let result = store.import(&file, SubscriberStatus::Active, &Silent).await;

    assert!(result.is_err());
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn pending_practitioners_become_active_when_they_confirm(pool: PgPool) {
    let store = Store::from_pool(pool);
    let catalog = store.topic_catalog().await.expect("topics");
    let file =
        ImportFile::read(&example_csv(), &catalog, &catalog.all(), &Silent).expect("readable");
    store
        .import(&file, SubscriberStatus::Pending, &Silent)
        .await
        .expect("imported");
    let amara = email("amara.okafor@example.org");
    let pending = store.subscriber(&amara).await.expect("there");
    assert_eq!(
        (pending.status, pending.confirmed_at),
        (SubscriberStatus::Pending, None)
    );

    store
        .confirm(&amara, &ConsentSource::Web)
        .await
        .expect("confirmed");

    let active = store.subscriber(&amara).await.expect("there");
    assert_eq!(active.status, SubscriberStatus::Active);
    assert!(active.confirmed_at.is_some());
    let history = store.history(&active).await.expect("history");
    assert_eq!(history[1].action, ConsentAction::Confirmed);
    assert_eq!(history[1].source, ConsentSource::Web);
}

#[sqlx::test]
async fn a_long_file_streams_in_with_each_problem_on_its_own_line_whatever_the_endings(
    pool: PgPool,
) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let dir = tempfile::tempdir().expect("temp dir");
    // Far longer than csv's read buffer, so line numbers are counted across many reads.
    let mut text = String::from("email,name,organisation,topics\r\n");
    for line in 2..=30_000 {
        match line {
            20_001 => text.push_str("not-an-address,Bad,,\r\n"),
            29_999 => text.push_str("PERSON5@example.org,Again,,\r\n"),
            _ => text.push_str(&format!(
                "person{line}@example.org,Person {line},,training\r\n"
            )),
        }
    }
    let path = csv(&dir, "long.csv", text);

    let report = store
        .import_csv(
            &path,
            &catalog,
            &catalog.all(),
            SubscriberStatus::Active,
            &Silent,
        )
        .await
        .expect("imported");

    assert_eq!(report.rows, 29_999);
    let problems: Vec<_> = report.problems.iter().map(|p| p.line).collect();
    assert_eq!(problems, [20_001, 29_999]);
    assert!(matches!(
        report.problems[0].problem,
        RowProblem::BadEmail(_)
    ));
    assert_eq!(
        report.problems[1].problem,
        RowProblem::Duplicate { first_line: 5 }
    );
    assert_eq!(report.added.len(), 29_997);
    assert_eq!(report.added.first(), Some(&2));
    assert_eq!(report.added.last(), Some(&30_000));
    assert_eq!(counts(&pool).await.subscribers, 29_997);
}

#[sqlx::test]
async fn a_streamed_import_that_meets_text_that_is_not_utf8_writes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bytes = HEADER.as_bytes().to_vec();
    for i in 0..20_000 {
        bytes.extend_from_slice(format!("p{i}@example.org,P,,\n").as_bytes());
    }
    bytes.extend_from_slice(b"late@example.org,Caf\xe9,,\n");
    let path = csv(&dir, "late.csv", bytes);
    let before = counts(&pool).await;

    let err = store
        .import_csv(
            &path,
            &catalog,
            &catalog.all(),
            SubscriberStatus::Active,
            &Silent,
        )
        .await
        .expect_err("not UTF-8");

    assert!(
        matches!(
            err,
            lscp_mail::store::ImportFailure::File(ImportError::NotUtf8 { line: 20_002, .. })
        ),
        "{err:?}"
    );
    assert_eq!(counts(&pool).await, before, "nothing written");
}

/// The foreign keys and plain indexes of the tables an import adds to: (oid, definition).
async fn keys_and_indexes(pool: &PgPool) -> Vec<(u32, String)> {
    sqlx::query_as::<_, (sqlx::postgres::types::Oid, String)>(
        "SELECT oid, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE contype = 'f' AND conrelid IN ('subscriber_topics'::regclass, 'consent_log'::regclass)
         UNION ALL
         SELECT indexrelid, pg_get_indexdef(indexrelid) FROM pg_index
         WHERE indrelid IN ('subscriber_topics'::regclass, 'consent_log'::regclass)
           AND NOT indisunique
         ORDER BY 2",
    )
    .fetch_all(pool)
    .await
    .expect("catalog")
    .into_iter()
    .map(|(oid, def)| (oid.0, def))
    .collect()
}

fn definitions(of: &[(u32, String)]) -> Vec<&str> {
    of.iter().map(|(_, def)| def.as_str()).collect()
}

/// `n` new practitioners, each with the topic `events` (and `training` for every other one).
fn practitioners(dir: &tempfile::TempDir, n: u64) -> std::path::PathBuf {
    let mut text = String::from(HEADER);
    for i in 0..n {
        let topics = if i % 2 == 0 {
            "events"
        } else {
            "training;events"
        };
        text.push_str(&format!("person{i}@example.org,Person {i},,{topics}\n"));
    }
    csv(dir, "many.csv", text)
}

#[sqlx::test]
async fn a_large_import_into_a_short_list_puts_back_every_foreign_key_and_index(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let before = keys_and_indexes(&pool).await;
    let n = BULK_MIN_ROWS;

    let (_, report) = import(&store, &practitioners(&dir, n)).await;

    assert_eq!(report.added.len() as u64, n);
    let after = keys_and_indexes(&pool).await;
    assert_eq!(definitions(&after), definitions(&before));
    assert!(
        after.iter().all(|a| !before.contains(a)),
        "each was set aside and made again: {before:?} → {after:?}"
    );
    let c = counts(&pool).await;
    assert_eq!(
        (c.subscribers, c.topics, c.log),
        (n as i64, (n + n / 2) as i64, n as i64)
    );
    let last = store
        .subscriber(&email(&format!("person{}@example.org", n - 1)))
        .await
        .expect("there");
    assert_eq!(last.topics, ["training", "events"]);
    let history = store.history(&last).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, ConsentAction::Subscribed);
    assert!(matches!(history[0].source, ConsentSource::Import(_)));
}

#[sqlx::test]
async fn a_large_import_whose_rows_break_a_foreign_key_writes_nothing_and_keeps_the_key(
    pool: PgPool,
) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = store.topic_catalog().await.expect("topics");
    let file = ImportFile::read(
        &practitioners(&dir, BULK_MIN_ROWS),
        &catalog,
        &catalog.all(),
        &Silent,
    )
    .expect("readable");
    let before = keys_and_indexes(&pool).await;
    // The topic goes after the file was checked: every row's topics go in unchecked, and
    // the foreign key, put back over the whole table, finds them.
    sqlx::query("DELETE FROM topics WHERE slug = 'events'")
        .execute(&pool)
        .await
        .expect("deleted");

    let result = store.import(&file, SubscriberStatus::Active, &Silent).await;

    let error = format!("{:?}", result.expect_err("a broken key fails the import"));
    assert!(error.contains("subscriber_topics_topic_fkey"), "{error}");
    assert_eq!(counts(&pool).await, NOTHING);
    assert_eq!(
        keys_and_indexes(&pool).await,
        before,
        "the same keys, never dropped"
    );
}

#[sqlx::test]
async fn a_large_import_into_a_longer_list_goes_in_row_by_row(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from(HEADER);
    for i in 0..=BULK_MIN_ROWS {
        text.push_str(&format!("earlier{i}@example.org,Earlier {i},,training\n"));
    }
    import(&store, &csv(&dir, "earlier.csv", text)).await;
    let before = keys_and_indexes(&pool).await;

    let (_, report) = import(&store, &practitioners(&dir, BULK_MIN_ROWS)).await;

    assert_eq!(report.added.len() as u64, BULK_MIN_ROWS);
    assert_eq!(keys_and_indexes(&pool).await, before, "nothing set aside");
}

#[sqlx::test]
async fn a_large_import_by_a_user_who_does_not_own_the_tables_goes_in_row_by_row(pool: PgPool) {
    // A role that may read and write every table but owns none, as a deployment may give
    // the tool when another role runs the migrations.
    let role = format!("lscp_importer_{}", std::process::id());
    for statement in [
        format!("CREATE ROLE {role} LOGIN PASSWORD 'importer'"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .expect("role set up");
    }
    let options = (*pool.connect_options())
        .clone()
        .username(&role)
        .password("importer");
    let theirs = PgPool::connect_with(options)
        .await
        .expect("connected as the role");
    let dir = tempfile::tempdir().expect("temp dir");
    let before = keys_and_indexes(&pool).await;

    let (_, report) = import(
        &Store::from_pool(theirs.clone()),
        &practitioners(&dir, BULK_MIN_ROWS),
    )
    .await;

    theirs.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP OWNED BY {role}; DROP ROLE {role}"
    )))
    .execute(&pool)
    .await
    .expect("role dropped");
    assert_eq!(report.added.len() as u64, BULK_MIN_ROWS);
    assert_eq!(keys_and_indexes(&pool).await, before, "nothing set aside");
}
