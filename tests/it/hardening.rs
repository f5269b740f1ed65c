//! What an attack run and careless input found (issue 10): erasure that leaves nothing
//! behind, secrets kept out of errors, hostile text shown escaped, a closed pipe, and an
//! export that imports back unchanged.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::free_port;
use crate::common::sending::{fast_options, send_with, shipped_issue};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::*;
use crate::common::{lscp_mail, run_lscp_mail};
use lscp_mail::store::import::{ImportFile, Silent};
use lscp_mail::store::{
    ConsentSource, DisplayName, NewSubscriber, Store, SubscriberFilter, SubscriberStatus, export,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Sends issue 2026-02 to a server that refuses every recipient with `reply`.
async fn send_refused_with(store: &Store, reply: &str) {
    let sink = SmtpSink::start(&["-f", "RCPT", "-B", reply]);
    send_with(store, &shipped_issue("2026-02"), sink.port, &fast_options()).await;
}

#[sqlx::test]
async fn a_forgotten_address_is_nowhere_in_the_database(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "Gone.Person@example.org", "training").await;
    add(&store, "stays@example.org", "training").await;
    send_refused_with(
        &store,
        "550 5.1.1 <Gone.Person@example.org>: Recipient address rejected",
    )
    .await;
    // A reply stored before replies were redacted, as an older version kept it.
    sqlx::query(
        "UPDATE deliveries SET last_reply = 'legacy 550 gone.person@example.org unknown'
         WHERE subscriber_id = (SELECT id FROM subscribers WHERE email_normalised = $1)",
    )
    .bind("gone.person@example.org")
    .execute(&pool)
    .await
    .expect("legacy reply");
    assert!(
        !where_found(&pool, "gone.person@example.org")
            .await
            .is_empty()
    );

    store
        .forget(&email("gone.person@example.org"), &ConsentSource::Cli)
        .await
        .expect("forgotten");

    assert_eq!(
        where_found(&pool, "gone.person@example.org").await,
        Vec::<String>::new()
    );
    assert!(!where_found(&pool, "stays@example.org").await.is_empty());
}

#[sqlx::test]
async fn a_server_reply_is_stored_without_the_address_it_quotes(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "rejected@example.org", "training").await;
    send_refused_with(
        &store,
        "550 5.1.1 <rejected@example.org>: Recipient address rejected",
    )
    .await;
    let reply: String = sqlx::query_scalar("SELECT last_reply FROM deliveries")
        .fetch_one(&pool)
        .await
        .expect("the delivery");
    assert!(reply.contains("5.1.1"), "{reply}");
    assert!(!reply.contains("rejected@example.org"), "{reply}");
}

#[test]
fn a_password_given_as_a_url_parameter_is_never_printed() {
    let url = format!(
        "postgres://app@127.0.0.1:{}/news?password=SEKRIT-ONE&sslpassword=SEKRIT-TWO",
        free_port()
    );
    let run = run_lscp_mail(Some(&url), &["subscribers", "list"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("password=***"), "{}", run.stderr);
    assert!(!run.stderr.contains("SEKRIT"), "{}", run.stderr);
    assert!(!run.stdout.contains("SEKRIT"), "{}", run.stdout);
}

#[sqlx::test]
async fn a_closed_stdout_ends_a_long_listing_quietly(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from("email,name,organisation\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "reader{i:04}@example.org,Reader {i},Northfield Primary School\n"
        ));
    }
    import(&Store::from_pool(pool), &csv(&dir, "many.csv", text)).await;

    // `lscp-mail subscribers list | head -1`: far more than a pipe holds, then the reader goes.
    let mut child = lscp_mail(&["subscribers", "list"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lscp-mail runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    let out = child.wait_with_output().expect("it ends");

    assert!(!first.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[sqlx::test]
async fn a_name_with_an_escape_sequence_is_shown_escaped_by_every_printer(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let store = Store::from_pool(pool.clone());
    let catalog = store.topic_catalog().await.expect("topics");
    let new = NewSubscriber {
        email: email("esc@example.org"),
        name: None,
        organisation: None,
        topics: topics(&catalog, "training"),
    };
    store
        .add_subscriber(&new, SubscriberStatus::Active, &ConsentSource::Cli, false)
        .await
        .expect("added");
    // As an older version could store it: every edge refuses such a name now.
    sqlx::query("UPDATE subscribers SET name = $1, organisation = $2 WHERE email = $3")
        .bind("Ann\u{1b}]0;pwned\u{7}\u{1b}[2J")
        .bind("Leeds\u{1b}[31m")
        .bind("esc@example.org")
        .execute(&pool)
        .await
        .expect("a name stored as an older version could");

    for args in [
        &["subscribers", "show", "esc@example.org"][..],
        &["subscribers", "list"][..],
    ] {
        let run = run_lscp_mail(Some(&url), args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(!run.stdout.contains('\u{1b}'), "{args:?} printed it raw");
        assert!(
            run.stdout.contains("Ann\\u{1b}]0;pwned"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[sqlx::test]
async fn the_import_report_refuses_and_escapes_control_characters(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (_pool, url) = database(pool_options, options).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = csv(
        &dir,
        "hostile.csv",
        "email,name\r\nann@example.org,Ann\r\nbad\u{1b}[2J@example.org,Bad\r\nbob@example.org,\"Bob\u{1b}[2J\"\r\n",
    );
    let run = run_lscp_mail(
        Some(&url),
        &["subscribers", "import", &file.display().to_string()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
    // CRLF endings: the lines are those an editor shows.
    assert!(run.stdout.contains("hostile.csv:3: "), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("hostile.csv:4: the name has an invisible control character (U+001B)"),
        "{}",
        run.stdout
    );
}

#[sqlx::test]
async fn export_then_import_gives_back_every_field(pool: PgPool) {
    let store = Store::from_pool(pool);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = csv(
        &dir,
        "formulas.csv",
        "email,name,organisation,topics\n\
         =cmd@example.org,=HYPERLINK(\"x\"),+44 Leeds,training\n\
         -minus@example.org,@Ann,\"-Smith, Jones\",reviews;events\n\
         plain@example.org,Ann Smith,,\n",
    );
    import(&store, &file).await;
    let stored = store
        .subscribers(&SubscriberFilter::default())
        .await
        .expect("list");
    let mut exported = Vec::new();
    export::write_csv(&stored, &mut exported, export::Form::Data).expect("exported");

    let catalog = store.topic_catalog().await.expect("topics");
    let back = ImportFile::parse(
        std::path::Path::new("export.csv"),
        &exported,
        &catalog,
        &catalog.all(),
        &Silent,
    )
    .expect("the export is an import file");
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    let fields = |e: &str, n: Option<&str>, o: Option<&str>, mut t: Vec<String>| {
        t.sort();
        (
            e.to_string(),
            n.map(str::to_string),
            o.map(str::to_string),
            t,
        )
    };
    let mut before: Vec<_> = stored
        .iter()
        .map(|s| {
            fields(
                s.email.as_str(),
                s.name.as_deref(),
                s.organisation.as_deref(),
                s.topics.clone(),
            )
        })
        .collect();
    let mut after: Vec<_> = back
        .rows
        .iter()
        .map(|r| {
            fields(
                r.email.as_str(),
                r.name.as_ref().map(DisplayName::as_str),
                r.organisation.as_ref().map(DisplayName::as_str),
                r.topics.iter().map(|t| t.as_str().to_string()).collect(),
            )
        })
        .collect();
    before.sort();
    after.sort();
    assert_eq!(after, before);
    assert!(before.iter().any(|f| f.0 == "=cmd@example.org"));
}

#[sqlx::test]
async fn an_address_outside_ascii_is_refused_and_an_international_domain_kept_in_ascii(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;

    let refused = run_lscp_mail(Some(&url), &["subscribers", "add", "élise@exemple.fr"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("outside ASCII"),
        "{}",
        refused.stderr
    );

    let added = run_lscp_mail(Some(&url), &["subscribers", "add", "elise@exemple-été.fr"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM subscribers")
        .fetch_all(&pool)
        .await
        .expect("subscribers");
    assert_eq!(stored, ["elise@xn--exemple-t-i4ab.fr"]);
}

#[sqlx::test]
async fn a_dry_run_writes_one_file_per_message_even_when_addresses_look_alike(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let store = Store::from_pool(pool);
    for address in ["a/b@example.org", "a_b@example.org", "A_B+x@example.org"] {
        add(&store, address, "training").await;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let issue = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("issues/2026-02");
    let run = run_lscp_mail(
        Some(&url),
        &[
            "send",
            &issue.display().to_string(),
            "--dry-run",
            "--out",
            &out.path().display().to_string(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("wrote 3 message(s)"), "{}", run.stdout);
    let files = std::fs::read_dir(out.path()).expect("list").count();
    assert_eq!(files, 3, "one file per message written");
}

#[sqlx::test]
async fn a_sign_up_with_letters_outside_ascii_before_the_at_says_why_it_is_refused(pool: PgPool) {
    let site = crate::common::web::Site::start(pool).await;
    let mut visitor = site.visitor();
    let csrf = visitor.get("/subscribe").await.form_token("/subscribe");
    let page = visitor
        .post(
            "/subscribe",
            &[
                ("csrf", &csrf),
                ("email", "élise@exemple.fr"),
                ("topics", "training"),
            ],
        )
        .await;
    assert_eq!(page.status, reqwest::StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("most mail servers cannot deliver"),
        "{}",
        page.body
    );
    assert_eq!(site.log_entries().await, 0);
}
