//! The subscriber commands as a user runs them: output and exit codes, against a real database.

use crate::common::run_lscp_mail;
use crate::common::store::*;
use lscp_mail::store::import::KEPT_LISTED;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The test's database as a pool (for counting) and as a URL (for the binary).
fn example() -> String {
    example_csv().display().to_string()
}

#[sqlx::test(migrations = false)]
async fn db_migrate_creates_the_schema_and_then_has_nothing_to_do(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;

    let first = run_lscp_mail(Some(&url), &["db", "migrate"]);
    let second = run_lscp_mail(Some(&url), &["db", "migrate"]);

    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("applied migration"),
        "{}",
        first.stdout
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("up to date"), "{}", second.stdout);
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test(migrations = false)]
async fn a_command_that_needs_the_schema_migrates_first(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let run = run_lscp_mail(Some(&url), &["subscribers", "import", &example()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&pool).await.subscribers, 36);
}

#[test]
fn a_connection_failure_names_the_configured_host_and_database_without_the_password() {
    // Nothing listens on port 1.
    let run = run_lscp_mail(
        Some("postgres://app:s3cret@127.0.0.1:1/news"),
        &["subscribers", "list"],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("postgres://app:***@127.0.0.1:1/news"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("database `news` on 127.0.0.1:1"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"));
    // The test command's database is another one: pointing there would mislead.
    assert!(!run.stderr.contains("scripts/test"), "{}", run.stderr);
    assert!(run.stderr.contains("DATABASE_URL"));
}

#[test]
fn without_a_database_configured_the_error_says_how_to_configure_one() {
    let run = run_lscp_mail(None, &["subscribers", "list"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("no database is configured"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("DATABASE_URL"));
}

#[test]
fn a_database_that_does_not_exist_says_to_run_db_migrate() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let mut url = url::Url::parse(&base).expect("a URL");
    url.set_path("lscp_mail_no_such_database");
    let run = run_lscp_mail(Some(url.as_str()), &["subscribers", "list"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(run.stderr.contains("lscp-mail db migrate"));
}

#[sqlx::test]
async fn the_walkthrough_imports_lists_changes_and_exports(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let run = |args: &[&str]| run_lscp_mail(Some(&url), args);

    let imported = run(&["subscribers", "import", &example()]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported.stdout.contains("36 rows: 36 added (active)"),
        "{}",
        imported.stdout
    );
    assert!(
        imported.stderr.is_empty(),
        "no progress bar without a terminal: {}",
        imported.stderr
    );

    let listed = run(&["subscribers", "list", "--topic", "events"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("callum.reid@example.org"));
    assert!(!listed.stdout.contains("ben.hartley@example.org"));
    assert!(
        listed.stdout.trim_end().ends_with("14 subscribers"),
        "{}",
        listed.stdout
    );

    let changed = run(&[
        "subscribers",
        "set-topics",
        "ben.hartley@example.org",
        "training",
        "reviews",
    ]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert!(
        changed
            .stdout
            .contains("topics changed from reviews to training, reviews"),
        "{}",
        changed.stdout
    );

    let unsubscribed = run(&["subscribers", "unsubscribe", "Ben.Hartley@example.org"]);
    assert_eq!(unsubscribed.code, 0, "{}", unsubscribed.stderr);
    assert!(unsubscribed.stdout.contains("unsubscribed (was active)"));

    let shown = run(&["subscribers", "show", "ben.hartley@example.org"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    for expected in [
        "status:        unsubscribed",
        "topics:        training, reviews",
        "subscribed",
        "import:",
        "topics_changed",
        "unsubscribed",
        "from=active to=unsubscribed",
    ] {
        assert!(
            shown.stdout.contains(expected),
            "{expected}: {}",
            shown.stdout
        );
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("export.csv");
    let exported = run(&["subscribers", "export", &out.display().to_string()]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(text.starts_with("email,name,organisation,topics,status"));
    assert!(text.contains(
        "ben.hartley@example.org,Ben Hartley,Riverside Health Centre,training;reviews,unsubscribed"
    ));
    assert_eq!(text.lines().count(), 37);

    let to_stdout = run(&["subscribers", "export", "--status", "unsubscribed"]);
    assert_eq!(to_stdout.code, 0, "{}", to_stdout.stderr);
    assert_eq!(to_stdout.stdout.lines().count(), 2, "{}", to_stdout.stdout);

    let reimported = run(&["subscribers", "import", &example()]);
    assert_eq!(reimported.code, 0);
    assert!(
        reimported
            .stdout
            .contains(":3: ben.hartley@example.org: unsubscribed, so not resubscribed"),
        "{}",
        reimported.stdout
    );
    assert_eq!(counts(&pool).await.subscribers, 36);
}

#[sqlx::test]
async fn a_re_import_lists_the_first_rows_of_people_who_left_and_counts_the_rest(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let total = KEPT_LISTED + 3;
    let mut text = String::from("email,name,organisation,topics\n");
    for i in 0..total {
        text.push_str(&format!("person{i}@example.org,Person {i},,training\n"));
    }
    let path = csv(&dir, "many.csv", text).display().to_string();
    let first = run_lscp_mail(Some(&url), &["subscribers", "import", &path]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    sqlx::query("UPDATE subscribers SET status = 'unsubscribed'")
        .execute(&pool)
        .await
        .expect("everyone unsubscribed");

    let again = run_lscp_mail(Some(&url), &["subscribers", "import", &path]);

    let out = &again.stdout;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let last_listed = format!(
        ":{}: person{}@example.org: unsubscribed, so not resubscribed\n",
        KEPT_LISTED + 1,
        KEPT_LISTED - 1
    );
    assert!(
        out.contains(":2: person0@example.org: unsubscribed, so not resubscribed\n"),
        "{out}"
    );
    assert!(out.contains(&last_listed), "{out}");
    assert!(!out.contains(&format!("person{KEPT_LISTED}@")), "{out}");
    assert!(
        out.contains(&format!(
            "many.csv: 3 more rows not resubscribed (unsubscribed, bounced or blocked), counted \
             below but not listed past the first {KEPT_LISTED}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("0 already subscribed, {total} not resubscribed")),
        "{out}"
    );
}

#[sqlx::test]
async fn an_import_with_bad_rows_reports_their_lines_imports_the_rest_and_exits_1(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "bad.csv",
        "email,name,organisation,topics\nann@example.org,Ann,,training\nnot-an-address,X,,\nbob@example.org,Bob,,cooking\nANN@example.org,Ann,,\n",
    );
    let run = run_lscp_mail(
        Some(&url),
        &["subscribers", "import", &path.display().to_string()],
    );

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("bad.csv:3: `not-an-address` is not an email address (skipped)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("bad.csv:4: unknown topic `cooking`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("bad.csv:5: the same address as line 2 (skipped)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 added"), "{}", run.stdout);
    assert!(
        run.stdout.contains("3 skipped with problems"),
        "{}",
        run.stdout
    );
    assert_eq!(counts(&pool).await.subscribers, 1);
}

#[sqlx::test]
async fn a_file_that_cannot_be_imported_exits_1_and_writes_nothing(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "cols.csv",
            b"e-mail,name\nann@example.org,Ann\n",
            "unknown column `e-mail`",
        ),
        (
            "latin1.csv",
            b"email,name\nann@example.org,Ann\nx@example.org,Jos\xe9\n",
            "not UTF-8",
        ),
        ("empty.csv", b"", "is empty"),
    ];
    for (name, content, expected) in cases {
        let path = csv(&dir, name, content);
        let run = run_lscp_mail(
            Some(&url),
            &["subscribers", "import", &path.display().to_string()],
        );
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing was imported"),
            "{name}: {}",
            run.stderr
        );
    }
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn a_missing_file_is_a_failure_not_an_input_problem(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (_, url) = database(pool_options, options).await;
    let run = run_lscp_mail(Some(&url), &["subscribers", "import", "/no/such/file.csv"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("cannot read /no/such/file.csv"),
        "{}",
        run.stderr
    );
}

#[sqlx::test]
async fn add_then_forget_leaves_only_a_tombstone_that_import_respects(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let run = |args: &[&str]| run_lscp_mail(Some(&url), args);

    let added = run(&[
        "subscribers",
        "add",
        "Usman.Ali@Example.org",
        "--name",
        "Usman Ali",
        "--topics",
        "events,training",
    ]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added.stdout.contains("topics: training, events"),
        "{}",
        added.stdout
    );

    let again = run(&["subscribers", "add", "usman.ali@example.org"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already subscribed"),
        "{}",
        again.stderr
    );

    let forgotten = run(&["subscribers", "forget", "usman.ali@example.org"]);
    assert_eq!(forgotten.code, 0, "{}", forgotten.stderr);
    assert!(forgotten.stdout.contains("erased on"));

    let shown = run(&["subscribers", "show", "usman.ali@example.org"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("was erased on"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("Usman Ali"));

    let imported = run(&["subscribers", "import", &example()]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported
            .stdout
            .contains(":22: Usman.Ali@Example.org: previously erased"),
        "{}",
        imported.stdout
    );
    assert!(imported.stdout.contains("35 added"), "{}", imported.stdout);
    let refused = run(&["subscribers", "add", "usman.ali@example.org"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--resubscribe"),
        "{}",
        refused.stderr
    );
    assert_eq!(counts(&pool).await.subscribers, 35);
}

#[sqlx::test]
async fn an_unknown_address_or_topic_exits_1_and_a_malformed_address_exits_2(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let run = |args: &[&str]| run_lscp_mail(Some(&url), args);

    for args in [
        &["subscribers", "show", "nobody@example.org"][..],
        &["subscribers", "unsubscribe", "nobody@example.org"],
        &["subscribers", "forget", "nobody@example.org"],
        &[
            "subscribers",
            "set-topics",
            "nobody@example.org",
            "training",
        ],
    ] {
        let r = run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("no subscriber has the address nobody@example.org"),
            "{}",
            r.stderr
        );
    }
    let r = run(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--topics",
        "cooking",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown topic `cooking`"), "{}", r.stderr);
    let r = run(&["subscribers", "list", "--topic", "cooking"]);
    assert_eq!(r.code, 1);
    let r = run(&["subscribers", "add", "not-an-address"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&["subscribers", "list", "--status", "gone"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(counts(&pool).await, NOTHING);
}

#[sqlx::test]
async fn topics_can_be_listed_and_added(pool_options: PgPoolOptions, options: PgConnectOptions) {
    let (_, url) = database(pool_options, options).await;
    let run = |args: &[&str]| run_lscp_mail(Some(&url), args);

    let listed = run(&["topics", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    for slug in ["training", "protocols", "reviews", "events"] {
        assert!(listed.stdout.contains(slug));
    }
    assert!(!listed.stdout.contains("note:"), "{}", listed.stdout);

    let added = run(&["topics", "add", "neglect", "--name", "Neglect strategy"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let listed = run(&["topics", "list"]);
    assert!(listed.stdout.contains("neglect"), "{}", listed.stdout);
    assert!(
        listed
            .stdout
            .contains("note: `neglect` is not among the topics in lscp-mail.toml"),
        "{}",
        listed.stdout
    );

    let bad = run(&["topics", "add", "Bad Slug", "--name", "X"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let twice = run(&["topics", "add", "neglect", "--name", "X"]);
    assert_eq!(twice.code, 1, "{}", twice.stderr);
    assert!(
        twice.stderr.contains("the topic `neglect` exists already"),
        "{}",
        twice.stderr
    );
}

#[sqlx::test(migrations = false)]
async fn an_unknown_topic_is_the_user_s_mistake_and_exits_1(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (_pool, url) = database(pool_options, options).await;
    let import = run_lscp_mail(Some(&url), &["subscribers", "import", &example()]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let email = std::fs::read_to_string(example_csv())
        .expect("example CSV")
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next().map(str::to_string))
        .expect("a first row");

    let set = run_lscp_mail(
        Some(&url),
        &["subscribers", "set-topics", &email, "cooking"],
    );
    let list = run_lscp_mail(Some(&url), &["subscribers", "list", "--topic", "cooking"]);

    assert_eq!(set.code, 1, "{}", set.stderr);
    assert!(set.stderr.contains("cooking"), "{}", set.stderr);
    assert_eq!(list.code, 1, "{}", list.stderr);
}

/// An address someone typed into the web sign-up form and never confirmed.
async fn unconfirmed_sign_up(pool: &sqlx::PgPool, address: &str) {
    let store = lscp_mail::store::Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let new = lscp_mail::store::NewSubscriber {
        email: email(address),
        name: None,
        organisation: None,
        topics: topics(&catalog, "events"),
    };
    store
        .add_subscriber(
            &new,
            lscp_mail::store::SubscriberStatus::Pending,
            &lscp_mail::store::ConsentSource::Web,
            false,
        )
        .await
        .expect("signed up");
}

/// (status, name, topics) of a subscriber, and (action, source) of their latest log entry.
async fn record_of(pool: &sqlx::PgPool, address: &str) -> (String, Option<String>, String, String) {
    let r = sqlx::query!(
        r#"SELECT s.status, s.name,
                  (SELECT string_agg(topic, ',' ORDER BY topic) FROM subscriber_topics
                   WHERE subscriber_id = s.id) AS "topics!",
                  (SELECT action || ' ' || source FROM consent_log WHERE subscriber_id = s.id
                   ORDER BY id DESC LIMIT 1) AS "last!"
           FROM subscribers s WHERE s.email_normalised = $1"#,
        address
    )
    .fetch_one(pool)
    .await
    .expect("on record");
    (r.status, r.name, r.topics, r.last)
}

#[sqlx::test(migrations = false)]
async fn adding_an_address_parked_by_an_unconfirmed_sign_up_makes_it_active_and_says_so(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    assert_eq!(run_lscp_mail(Some(&url), &["db", "migrate"]).code, 0);
    unconfirmed_sign_up(&pool, "colleague@example.org").await;

    let run = run_lscp_mail(
        Some(&url),
        &[
            "subscribers",
            "add",
            "colleague@example.org",
            "--name",
            "Cara Lee",
            "--topics",
            "training,reviews",
        ],
    );

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "colleague@example.org: had signed up without confirming; now active on your record"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        record_of(&pool, "colleague@example.org").await,
        (
            "active".to_string(),
            Some("Cara Lee".to_string()),
            "reviews,training".to_string(),
            "subscribed cli".to_string()
        )
    );
}

#[sqlx::test(migrations = false)]
async fn importing_an_address_parked_by_an_unconfirmed_sign_up_makes_it_active_and_says_so(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    assert_eq!(run_lscp_mail(Some(&url), &["db", "migrate"]).code, 0);
    unconfirmed_sign_up(&pool, "colleague@example.org").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "team.csv",
        "email,name,topics\nnew@example.org,Nia New,training\nColleague@example.org,Cara Lee,reviews\n",
    );

    let run = run_lscp_mail(
        Some(&url),
        &["subscribers", "import", &path.display().to_string()],
    );

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "team.csv:3: Colleague@example.org: had signed up without confirming; now active"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "2 rows: 1 added (active), 1 made active (had not confirmed a sign-up), \
             0 already subscribed"
        ),
        "{}",
        run.stdout
    );
    let (status, name, topics, last) = record_of(&pool, "colleague@example.org").await;
    assert_eq!(
        (status.as_str(), name.as_deref(), topics.as_str()),
        ("active", Some("Cara Lee"), "reviews")
    );
    assert!(last.starts_with("subscribed import:"), "{last}");
    let again = run_lscp_mail(
        Some(&url),
        &["subscribers", "import", &path.display().to_string()],
    );
    assert!(
        again
            .stdout
            .contains("0 made active (had not confirmed a sign-up), 2 already subscribed"),
        "importing again changes nothing: {}",
        again.stdout
    );
}

#[sqlx::test(migrations = false)]
async fn a_name_that_is_not_one_printable_line_is_refused_by_add_and_import(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    assert_eq!(run_lscp_mail(Some(&url), &["db", "migrate"]).code, 0);
    for (option, value) in [
        ("--name", "Ann\nClick https://evil.example"),
        ("--name", "Ann\u{1b}[2J"),
        ("--organisation", "\u{202e}lcc"),
    ] {
        let run = run_lscp_mail(
            Some(&url),
            &["subscribers", "add", "ann@example.org", option, value],
        );
        assert_eq!(
            run.code, 2,
            "{option} {value:?}: {}{}",
            run.stdout, run.stderr
        );
        assert!(run.stderr.contains(option), "{}", run.stderr);
    }
    let long = "x".repeat(201);
    let run = run_lscp_mail(
        Some(&url),
        &["subscribers", "add", "ann@example.org", "--name", &long],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(counts(&pool).await.subscribers, 0);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = csv(
        &dir,
        "names.csv",
        "email,name,organisation\nann@example.org,Ann,\"Leeds\nCity Council\"\nbob@example.org,Bob\u{1b}[31m,\ncat@example.org,Cat,LCC\n",
    );
    let run = run_lscp_mail(
        Some(&url),
        &["subscribers", "import", &path.display().to_string()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("names.csv:2: the organisation has more than one line (skipped)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "names.csv:4: the name has an invisible control character (U+001B) (skipped)"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(counts(&pool).await.subscribers, 1);
}
