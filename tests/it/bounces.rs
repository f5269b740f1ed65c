//! `lscp-mail bounces` against a real PostgreSQL: after a real `send` (to smtp-sink), the
//! reports that come back, written from the RFCs and providers' formats
//! (tests/fixtures/bounces/), each change exactly their reader, once; nothing unreadable or
//! unrecognised is moved or lost.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::dovecot::{self, Dovecot};
use crate::common::postfix::Postfix;
use crate::common::sending::{fast_options, send_with_config, shipped_issue};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::{add, database, email, where_found};
use crate::common::{Run, lscp_mail};
use lscp_mail::bounces::source::Item;
use lscp_mail::bounces::{self, Outcome};
use lscp_mail::config::{Config, TaggedAddress};
use lscp_mail::store::{ConsentSource, Store, SubscriberStatus};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const BOUNCES: &str = "bounces@news.leedsscp.org.uk";
const UNSUBSCRIBE: &str = "unsubscribe@news.leedsscp.org.uk";

/// What a reader's delivery went out with.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: String,
    pub message_id: String,
    pub tag: String,
    pub token: String,
}

pub fn config() -> Config {
    let mut config = Config::default();
    config.mail.bounce_address = Some(TaggedAddress::parse(BOUNCES).expect("address"));
    config.mail.unsubscribe_mailto = Some(TaggedAddress::parse(UNSUBSCRIBE).expect("address"));
    config
}

/// Adds `readers` (local parts at example.org), sends them February's issue through smtp-sink
/// and returns what each delivery went out with.
pub async fn sent_to(pool: &PgPool, readers: &[&str]) -> BTreeMap<String, Sent> {
    let store = Store::from_pool(pool.clone());
    for r in readers {
        add(&store, &format!("{r}@example.org"), "training").await;
    }
    let sink = SmtpSink::start(&[]);
    send_with_config(
        &store,
        &shipped_issue("2026-02"),
        sink.port,
        &fast_options(),
        &config(),
    )
    .await;
    let mut out = BTreeMap::new();
    for r in readers {
        let to = format!("{r}@example.org");
        let message_id: String = sqlx::query_scalar(
            "SELECT d.message_id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE s.email = $1",
        )
        .bind(&to)
        .fetch_one(pool)
        .await
        .expect("delivered");
        let tag = message_id
            .trim_start_matches('<')
            .split('@')
            .next()
            .expect("tag")
            .to_string();
        let subscriber = store.subscriber(&email(&to)).await.expect("subscriber");
        let token = store.link_token(&subscriber).await.expect("token").expose();
        out.insert(
            r.to_string(),
            Sent {
                to,
                message_id,
                tag,
                token,
            },
        );
    }
    out
}

/// Sends another shipped issue to readers added by [`sent_to`], and gives that delivery.
async fn sent_again(pool: &PgPool, reader: &str, issue: &str) -> Sent {
    let store = Store::from_pool(pool.clone());
    let sink = SmtpSink::start(&[]);
    send_with_config(
        &store,
        &shipped_issue(issue),
        sink.port,
        &fast_options(),
        &config(),
    )
    .await;
    let to = format!("{reader}@example.org");
    let message_id: String = sqlx::query_scalar(
        "SELECT d.message_id FROM deliveries d
         JOIN subscribers s ON s.id = d.subscriber_id
         JOIN campaigns c ON c.id = d.campaign_id
         WHERE s.email = $1 AND c.issue_id = $2",
    )
    .bind(&to)
    .bind(issue)
    .fetch_one(pool)
    .await
    .expect("delivered");
    let tag = message_id
        .trim_start_matches('<')
        .split('@')
        .next()
        .expect("tag")
        .to_string();
    let subscriber = store.subscriber(&email(&to)).await.expect("subscriber");
    let token = store.link_token(&subscriber).await.expect("token").expose();
    Sent {
        to,
        message_id,
        tag,
        token,
    }
}

pub fn fixture(name: &str, sent: &Sent, n: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name);
    std::fs::read_to_string(&path)
        .expect("fixture")
        .replace("{{TAG}}", &sent.tag)
        .replace("{{MESSAGE_ID}}", &sent.message_id)
        .replace("{{TO}}", &sent.to)
        .replace("{{TOKEN}}", &sent.token)
        .replace("{{N}}", &n.to_string())
        .replace("{{DATE}}", &chrono::Utc::now().to_rfc2822())
        .into_bytes()
}

pub fn maildir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir(dir.path().join(sub)).expect("maildir");
    }
    dir
}

/// Every file under `dir` with its contents: equal before and after shows nothing moved.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["new", "cur", "tmp"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.insert(e.path(), std::fs::read(e.path()).expect("file"));
        }
    }
    out
}

/// Runs `lscp-mail bounces ARGS` with the test's addresses, `stdin` on standard input.
pub fn run_bounces(database_url: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = lscp_mail(&["bounces"])
        .args(args)
        .current_dir(dir.path())
        .env("DATABASE_URL", database_url)
        .env("LSCP_MAIL_MAIL__BOUNCE_ADDRESS", BOUNCES)
        .env("LSCP_MAIL_MAIL__UNSUBSCRIBE_MAILTO", UNSUBSCRIBE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lscp-mail runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or_default()).expect("write");
    drop(input);
    child.wait_with_output().expect("finishes").into()
}

/// Each reader has the status given.
pub async fn assert_statuses(pool: &PgPool, expected: &[(&str, SubscriberStatus)]) {
    for (address, wanted) in expected {
        assert_eq!(status(pool, address).await, *wanted, "{address}");
    }
}

pub async fn status(pool: &PgPool, address: &str) -> SubscriberStatus {
    Store::from_pool(pool.clone())
        .subscriber(&email(address))
        .await
        .expect("subscriber")
        .status
}

/// The reader's latest consent-log entry: action, source, detail.
pub async fn last_log(pool: &PgPool, address: &str) -> (String, String, serde_json::Value) {
    sqlx::query_as(
        "SELECT c.action, c.source, c.detail FROM consent_log c
         JOIN subscribers s ON s.id = c.subscriber_id WHERE s.email = $1 ORDER BY c.id DESC LIMIT 1",
    )
    .bind(address)
    .fetch_one(pool)
    .await
    .expect("a log entry")
}

async fn table_counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM consent_log), (SELECT count(*) FROM bounce_reports),
                (SELECT count(*) FROM subscribers WHERE status = 'active')",
    )
    .fetch_one(pool)
    .await
    .expect("counts")
}

/// Which fixture goes to which reader, and what becomes of the reader.
const TABLE: &[(&str, &str, SubscriberStatus, Option<&str>)] = &[
    (
        "ann",
        "exchange-ndr.eml",
        SubscriberStatus::Bounced,
        Some("bounce"),
    ),
    (
        "ben",
        "gmail-dsn.eml",
        SubscriberStatus::Bounced,
        Some("bounce"),
    ),
    (
        "cat",
        "exim-text.eml",
        SubscriberStatus::Bounced,
        Some("bounce"),
    ),
    (
        "dan",
        "old-mta-text.eml",
        SubscriberStatus::Bounced,
        Some("bounce"),
    ),
    ("eve", "delayed-dsn.eml", SubscriberStatus::Active, None),
    (
        "fay",
        "arf-abuse.eml",
        SubscriberStatus::Unsubscribed,
        Some("complaint"),
    ),
    ("gus", "out-of-office.eml", SubscriberStatus::Active, None),
    (
        "hal",
        "unsubscribe.eml",
        SubscriberStatus::Unsubscribed,
        Some("email"),
    ),
    ("ivy", "forged-dsn.eml", SubscriberStatus::Active, None),
    ("jon", "spam.eml", SubscriberStatus::Active, None),
];

async fn table_maildir(pool: &PgPool) -> (tempfile::TempDir, BTreeMap<String, Sent>) {
    let readers: Vec<&str> = TABLE.iter().map(|t| t.0).collect();
    let sent = sent_to(pool, &readers).await;
    let dir = maildir();
    for (n, (reader, file, _, _)) in TABLE.iter().enumerate() {
        std::fs::write(
            dir.path()
                .join("new")
                .join(format!("17707{n:05}.M1P1.mx,S=1:{file}")),
            fixture(file, &sent[*reader], n),
        )
        .expect("write");
    }
    (dir, sent)
}

#[sqlx::test]
async fn each_kind_of_report_changes_exactly_its_reader(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let (dir, _) = table_maildir(&pool).await;
    let before = snapshot(dir.path());

    let run = run_bounces(&url, &[dir.path().to_str().expect("path")], None);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for (reader, file, expected, source) in TABLE {
        let address = format!("{reader}@example.org");
        assert_eq!(status(&pool, &address).await, *expected, "{reader}: {file}");
        let (action, logged_source, detail) = last_log(&pool, &address).await;
        match source {
            Some(s) => {
                assert_eq!(&logged_source, s, "{reader}: {file}");
                assert_eq!(action, expected.as_str(), "{reader}: {file}");
                assert!(
                    !detail.to_string().contains('@'),
                    "no address in the log: {detail}"
                );
            }
            None => assert_eq!(action, "subscribed", "{reader}: {file} changed nothing"),
        }
    }
    let (_, _, ann) = last_log(&pool, "ann@example.org").await;
    assert_eq!(ann["smtp_status"], "5.1.10");
    let (bounce, status, diagnostic): (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as(
            "SELECT d.bounce, d.bounce_status, d.bounce_diagnostic FROM deliveries d
             JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = 'ann@example.org'",
        )
        .fetch_one(&pool)
        .await
        .expect("delivery");
    assert_eq!(bounce.as_deref(), Some("hard"));
    assert_eq!(status.as_deref(), Some("5.1.10"));
    assert!(diagnostic.unwrap_or_default().contains("RecipientNotFound"));
    assert!(
        run.stdout
            .contains("spam.eml: not recognised; left in place"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("forged-dsn.eml: not identified"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 auto-reply"), "{}", run.stdout);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing moved, changed or deleted"
    );
}

#[sqlx::test]
async fn the_same_maildir_read_twice_changes_nothing_the_second_time(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let (dir, _) = table_maildir(&pool).await;
    let path = dir.path().to_str().expect("path");
    let first = run_bounces(&url, &[path], None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let after_first = table_counts(&pool).await;

    let second = run_bounces(&url, &[path], None);

    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(table_counts(&pool).await, after_first);
    assert!(
        second.stdout.contains("7 already read"),
        "{}",
        second.stdout
    );
}

#[sqlx::test]
async fn an_unreadable_message_is_listed_and_left_where_it_was(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let sent = sent_to(&pool, &["ann"]).await;
    let dir = maildir();
    std::fs::write(dir.path().join("new/1.empty"), b"").expect("write");
    std::fs::write(
        dir.path().join("cur/2.junk:2,S"),
        [0u8, 159, 146, 150, 0, 1],
    )
    .expect("write");
    std::fs::write(
        dir.path().join("new/3.ndr"),
        fixture("exchange-ndr.eml", &sent["ann"], 0),
    )
    .expect("write");
    let before = snapshot(dir.path());

    let run = run_bounces(&url, &[dir.path().to_str().expect("path")], None);

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("new/1.empty: cannot be read"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("cur/2.junk:2,S: cannot be read"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 unreadable"), "{}", run.stdout);
    assert_eq!(
        status(&pool, "ann@example.org").await,
        SubscriberStatus::Bounced
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[sqlx::test]
async fn an_mbox_and_standard_input_are_read_like_a_maildir(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let sent = sent_to(&pool, &["ann", "fay", "hal"]).await;
    let mut mbox = Vec::new();
    for (reader, file) in [("ann", "exchange-ndr.eml"), ("fay", "arf-abuse.eml")] {
        mbox.extend_from_slice(b"From MAILER-DAEMON Tue Feb 10 09:14:07 2026\n");
        mbox.extend_from_slice(&fixture(file, &sent[reader], 0));
        mbox.extend_from_slice(b"\n");
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("saved.mbox");
    std::fs::write(&path, &mbox).expect("write");

    let run = run_bounces(&url, &[path.to_str().expect("path")], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("saved.mbox message 2: complaint"),
        "{}",
        run.stdout
    );
    assert_statuses(
        &pool,
        &[
            ("ann@example.org", SubscriberStatus::Bounced),
            ("fay@example.org", SubscriberStatus::Unsubscribed),
        ],
    )
    .await;

    // As an MTA's pipe gives it: one message on standard input, with its From_ line.
    let mut piped = b"From hal@example.org Tue Feb 10 10:02:11 2026\n".to_vec();
    piped.extend_from_slice(&fixture("unsubscribe.eml", &sent["hal"], 0));
    let run = run_bounces(&url, &["-"], Some(&piped));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        status(&pool, "hal@example.org").await,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(last_log(&pool, "hal@example.org").await.1, "email");
}

#[test]
fn standard_input_asks_the_mail_server_to_retry_when_the_database_is_down() {
    let run = run_bounces(
        "postgres://postgres@127.0.0.1:9/lscp_mail_nowhere",
        &["-"],
        Some(b"From: a@example.org\n\nhello\n"),
    );
    assert_eq!(run.code, 75, "{}", run.stderr);
    let run = run_bounces(
        "postgres://postgres@127.0.0.1:9/lscp_mail_nowhere",
        &["/nonexistent"],
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
}

async fn process(pool: &PgPool, bytes: Vec<u8>) -> Outcome {
    let item = Item {
        origin: "test".into(),
        bytes: Ok(bytes),
    };
    bounces::process(&Store::from_pool(pool.clone()), &config(), &item)
        .await
        .expect("processed")
}

#[sqlx::test]
async fn a_forgotten_readers_bounce_reports_keep_no_address(pool: PgPool) {
    let sent = sent_to(&pool, &["ann"]).await;
    // Gmail's diagnostic, quoting the address as many servers do.
    let quoting = String::from_utf8(fixture("gmail-dsn.eml", &sent["ann"], 0))
        .expect("text")
        .replace(
            "Diagnostic-Code: smtp; 550-5.1.1",
            "Diagnostic-Code: smtp; 550-5.1.1 <ann@example.org>",
        );
    let o = process(&pool, quoting.into_bytes()).await;
    assert!(matches!(o, Outcome::HardBounce { .. }), "{o:?}");

    Store::from_pool(pool.clone())
        .forget(&email("ann@example.org"), &ConsentSource::Cli)
        .await
        .expect("forgotten");

    assert_eq!(
        where_found(&pool, "ann@example.org").await,
        Vec::<String>::new()
    );
    // A report read after the erasure writes no address back either.
    let late = String::from_utf8(fixture("gmail-dsn.eml", &sent["ann"], 1))
        .expect("text")
        .replace(
            "Diagnostic-Code: smtp; 550-5.1.1",
            "Diagnostic-Code: smtp; 550-5.1.1 <ann@example.org>",
        );
    process(&pool, late.into_bytes()).await;
    assert_eq!(
        where_found(&pool, "ann@example.org").await,
        Vec::<String>::new()
    );
}

#[sqlx::test]
async fn only_a_readers_own_complaint_unsubscribes_them(pool: PgPool) {
    let sent = sent_to(&pool, &["fay", "gus"]).await;
    for (reader, kind) in [("fay", "not-spam"), ("gus", "auth-failure")] {
        let report = String::from_utf8(fixture("arf-abuse.eml", &sent[reader], 0))
            .expect("text")
            .replace("Feedback-Type: abuse", &format!("Feedback-Type: {kind}"));
        assert!(report.contains(kind), "the fixture names its feedback type");
        let o = process(&pool, report.into_bytes()).await;
        assert_eq!(o, Outcome::NothingToDo, "{kind}");
        assert_eq!(
            status(&pool, &format!("{reader}@example.org")).await,
            SubscriberStatus::Active,
            "{kind}"
        );
    }
}

#[sqlx::test]
async fn a_refusal_for_policy_fails_the_delivery_but_not_the_reader(pool: PgPool) {
    let sent = sent_to(&pool, &["ben"]).await;
    // Relayed, then refused by the reader's provider for our authentication (DMARC).
    let report = String::from_utf8(fixture("gmail-dsn.eml", &sent["ben"], 0))
        .expect("text")
        .replace("Status: 5.1.1", "Status: 5.7.26");
    assert!(
        report.contains("Status: 5.7.26"),
        "the fixture has a status"
    );
    let o = process(&pool, report.into_bytes()).await;
    assert_eq!(
        o,
        Outcome::HardBounce {
            status: "5.7.26".into(),
            bounced: false
        }
    );
    assert_eq!(
        status(&pool, "ben@example.org").await,
        SubscriberStatus::Active
    );
}

#[sqlx::test]
async fn soft_bounces_bounce_a_reader_only_at_the_limit(pool: PgPool) {
    let sent = sent_to(&pool, &["eve"]).await;
    // A server warns of the same stuck message again and again: one delivery, counted once.
    for n in 1..=3 {
        let o = process(&pool, fixture("delayed-dsn.eml", &sent["eve"], n)).await;
        assert_eq!(
            o,
            Outcome::SoftBounce {
                status: "4.4.1".into(),
                bounced: false
            }
        );
    }
    // The same report again is not another.
    let again = process(&pool, fixture("delayed-dsn.eml", &sent["eve"], 2)).await;
    assert_eq!(again, Outcome::AlreadyRead);
    assert_eq!(
        status(&pool, "eve@example.org").await,
        SubscriberStatus::Active
    );

    let second = sent_again(&pool, "eve", "2025-11").await;
    let o = process(&pool, fixture("delayed-dsn.eml", &second, 4)).await;
    assert_eq!(
        o,
        Outcome::SoftBounce {
            status: "4.4.1".into(),
            bounced: false
        }
    );
    assert_eq!(
        status(&pool, "eve@example.org").await,
        SubscriberStatus::Active
    );

    let third = sent_again(&pool, "eve", "2025-03").await;
    let o = process(&pool, fixture("delayed-dsn.eml", &third, 5)).await;

    assert_eq!(
        o,
        Outcome::SoftBounce {
            status: "4.4.1".into(),
            bounced: true
        }
    );
    let (action, source, detail) = last_log(&pool, "eve@example.org").await;
    assert_eq!((action.as_str(), source.as_str()), ("bounced", "bounce"));
    assert_eq!(detail["soft_bounces"], 3);
}

#[sqlx::test]
async fn a_bounced_reader_can_be_reactivated_and_status_counts_the_reports(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let sent = sent_to(&pool, &["ann", "fay", "eve"]).await;
    process(&pool, fixture("exchange-ndr.eml", &sent["ann"], 0)).await;
    process(&pool, fixture("arf-abuse.eml", &sent["fay"], 0)).await;
    process(&pool, fixture("delayed-dsn.eml", &sent["eve"], 0)).await;

    let status_run = crate::common::run_lscp_mail(Some(&url), &["status", "2026-02"]);
    assert_eq!(status_run.code, 0, "{}", status_run.stderr);
    assert!(
        status_run
            .stdout
            .contains("1 hard bounces, 1 soft bounces, 1 complaints"),
        "{}",
        status_run.stdout
    );
    let listed =
        crate::common::run_lscp_mail(Some(&url), &["subscribers", "list", "--status", "bounced"]);
    assert!(
        listed.stdout.contains("ann@example.org"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains("eve@example.org"),
        "{}",
        listed.stdout
    );

    let back = crate::common::run_lscp_mail(
        Some(&url),
        &["subscribers", "reactivate", "ann@example.org"],
    );
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(
        status(&pool, "ann@example.org").await,
        SubscriberStatus::Active
    );
    let (action, source, _) = last_log(&pool, "ann@example.org").await;
    assert_eq!((action.as_str(), source.as_str()), ("reactivated", "cli"));
    let refused = crate::common::run_lscp_mail(
        Some(&url),
        &["subscribers", "reactivate", "fay@example.org"],
    );
    assert_eq!(
        refused.code, 1,
        "a complaint is not undone by an administrator"
    );
    assert_eq!(
        status(&pool, "fay@example.org").await,
        SubscriberStatus::Unsubscribed
    );
}

#[sqlx::test]
async fn a_real_postfix_bounce_marks_exactly_that_reader_bounced_from_stdin_and_from_its_maildir(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let store = Store::from_pool(pool.clone());
    for address in ["ann@gone.example.org", "ben@example.org", "cat@example.org"] {
        add(&store, address, "training").await;
    }
    let postfix = Postfix::start();
    let report = send_with_config(
        &store,
        &shipped_issue("2026-02"),
        postfix.port,
        &fast_options(),
        &config(),
    )
    .await;
    assert_eq!(report.counts.sent, 3, "Postfix accepted all three");

    let arrived = postfix.wait_for_mail(1);
    assert_eq!(arrived.len(), 1, "one bounce: {}", postfix.log());
    let dsn = std::fs::read(&arrived[0]).expect("the DSN");

    // As Postfix's pipe alias would give it.
    let piped = run_bounces(&url, &["-"], Some(&dsn));
    assert_eq!(piped.code, 0, "{}\n{}", piped.stdout, piped.stderr);
    assert!(
        piped.stdout.contains("hard bounce 5.1.1"),
        "{}",
        piped.stdout
    );
    assert_eq!(
        status(&pool, "ann@gone.example.org").await,
        SubscriberStatus::Bounced
    );
    for other in ["ben@example.org", "cat@example.org"] {
        assert_eq!(
            status(&pool, other).await,
            SubscriberStatus::Active,
            "{other}"
        );
    }
    let (_, source, detail) = last_log(&pool, "ann@gone.example.org").await;
    assert_eq!(source, "bounce");
    assert_eq!(detail["smtp_status"], "5.1.1");
    let log_after_stdin = table_counts(&pool).await;

    // The same DSN from the Maildir: already read, nothing changes, nothing moves.
    let maildir = postfix.maildir();
    let before = snapshot(&maildir);
    let read = run_bounces(&url, &[maildir.to_str().expect("path")], None);
    assert_eq!(read.code, 0, "{}\n{}", read.stdout, read.stderr);
    assert!(read.stdout.contains("1 already read"), "{}", read.stdout);
    assert_eq!(table_counts(&pool).await, log_after_stdin);
    assert_eq!(snapshot(&maildir), before);
}

/// Issue 12's whole path, once for each way in: three messages `send` sent to dead mailboxes,
/// bounced by a real Postfix; one DSN read from standard input, one from a Maildir of its own,
/// one from Dovecot over IMAP; each bounces exactly its reader.
#[sqlx::test]
async fn a_real_postfix_bounce_read_from_stdin_a_maildir_or_imap_bounces_exactly_its_reader(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let store = Store::from_pool(pool.clone());
    let gone = [
        "ann@gone.example.org",
        "dan@gone.example.org",
        "eve@gone.example.org",
    ];
    for address in gone.iter().chain(&["ben@example.org", "cat@example.org"]) {
        add(&store, address, "training").await;
    }
    let postfix = Postfix::start();
    let report = send_with_config(
        &store,
        &shipped_issue("2026-02"),
        postfix.port,
        &fast_options(),
        &config(),
    )
    .await;
    assert_eq!(report.counts.sent, 5, "Postfix accepted all five");
    let arrived = postfix.wait_for_mail(3);
    assert_eq!(arrived.len(), 3, "three bounces: {}", postfix.log());
    let dsn_for = |address: &str| -> Vec<u8> {
        let found: Vec<Vec<u8>> = arrived
            .iter()
            .map(|p| std::fs::read(p).expect("a DSN"))
            .filter(|b| String::from_utf8_lossy(b).contains(&format!("rfc822; {address}")))
            .collect();
        assert_eq!(found.len(), 1, "one DSN names {address}");
        found.into_iter().next().unwrap_or_default()
    };
    let bounced_now = async |expected: &[&str]| {
        for address in gone.iter().chain(&["ben@example.org", "cat@example.org"]) {
            let want = if expected.contains(address) {
                SubscriberStatus::Bounced
            } else {
                SubscriberStatus::Active
            };
            assert_eq!(status(&pool, address).await, want, "{address}");
        }
    };

    // Standard input, as Postfix's pipe alias gives it.
    let piped = run_bounces(&url, &["-"], Some(&dsn_for(gone[0])));
    assert_eq!(piped.code, 0, "{}\n{}", piped.stdout, piped.stderr);
    bounced_now(&gone[..1]).await;

    // A Maildir holding only the second DSN: it takes effect and the file stays where it was.
    let own = maildir();
    std::fs::write(own.path().join("new/1.dsn"), dsn_for(gone[1])).expect("write");
    let before = snapshot(own.path());
    let read = run_bounces(&url, &[own.path().to_str().expect("path")], None);
    assert_eq!(read.code, 0, "{}\n{}", read.stdout, read.stderr);
    assert!(read.stdout.contains("hard bounce 5.1.1"), "{}", read.stdout);
    assert_eq!(snapshot(own.path()), before);
    bounced_now(&gone[..2]).await;

    // The third from a real IMAP server: it takes effect and moves to Processed.
    let (dir, inbox) = Dovecot::prepare();
    std::fs::write(inbox.join("new/1770700001.M1P1.mx"), dsn_for(gone[2])).expect("write");
    let dovecot = Dovecot::start(dir);
    let imap = run_bounces(&url, &[&dovecot.url("INBOX")], None);
    assert_eq!(
        imap.code,
        0,
        "{}\n{}\n{}",
        imap.stdout,
        imap.stderr,
        dovecot.log()
    );
    bounced_now(&gone).await;
    assert!(
        names_in(&inbox).is_empty(),
        "the report left INBOX: {:?}",
        names_in(&inbox)
    );
}

/// The files of a Maildir folder (`new/` and `cur/`) by name.
fn names_in(maildir: &Path) -> Vec<String> {
    let mut v: Vec<String> = ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(maildir.join(sub))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[sqlx::test]
async fn from_a_real_imap_server_processed_reports_move_and_spam_stays_untouched(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    let sent = sent_to(&pool, &["ann", "fay", "hal", "jon"]).await;
    let (dir, inbox) = Dovecot::prepare();
    for (n, (reader, file)) in [
        ("ann", "exchange-ndr.eml"),
        ("fay", "arf-abuse.eml"),
        ("hal", "unsubscribe.eml"),
        ("jon", "spam.eml"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(
            inbox.join("new").join(format!("17707{n:05}.M{n}P1.mx")),
            fixture(file, &sent[reader], n),
        )
        .expect("write");
    }
    let dovecot = Dovecot::start(dir);

    let run = run_bounces(&url, &[&dovecot.url("INBOX")], None);

    assert_eq!(
        run.code,
        0,
        "{}\n{}\n{}",
        run.stdout,
        run.stderr,
        dovecot.log()
    );
    assert!(!run.stdout.contains(dovecot::PASSWORD), "{}", run.stdout);
    assert!(
        run.stdout.contains("UID 4: not recognised; left in place"),
        "{}",
        run.stdout
    );
    assert_statuses(
        &pool,
        &[
            ("ann@example.org", SubscriberStatus::Bounced),
            ("fay@example.org", SubscriberStatus::Unsubscribed),
            ("hal@example.org", SubscriberStatus::Unsubscribed),
            ("jon@example.org", SubscriberStatus::Active),
        ],
    )
    .await;
    let maildir = dovecot.maildir();
    assert_eq!(
        names_in(&maildir.join(".Processed")).len(),
        3,
        "{}",
        dovecot.log()
    );
    let left = names_in(&maildir);
    assert_eq!(left.len(), 1, "only the spam stays in INBOX: {left:?}");
    let flags = left[0].split_once(":2,").map_or("", |(_, f)| f);
    assert!(
        !flags.contains('S'),
        "the spam was not even marked read: {}",
        left[0]
    );

    // Read again: nothing left to process, nothing changes.
    let again = run_bounces(&url, &[&dovecot.url("INBOX")], None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(names_in(&maildir).len(), 1);
}

#[sqlx::test]
async fn a_run_killed_half_way_then_repeated_counts_every_report_once(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    use std::io::{BufRead, BufReader};

    let (pool, url) = database(pool_options, options).await;
    let readers = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "eve"];
    let sent = sent_to(&pool, &readers).await;
    let dir = maildir();
    for (n, r) in readers[..8].iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("new/1.{n:04}.hard")),
            fixture("exchange-ndr.eml", &sent[*r], n),
        )
        .expect("write");
    }
    const SOFT: usize = 300;
    for n in 0..SOFT {
        std::fs::write(
            dir.path().join(format!("new/2.{n:04}.soft")),
            fixture("delayed-dsn.eml", &sent["eve"], n),
        )
        .expect("write");
    }
    let path = dir.path().to_str().expect("path").to_string();

    // Killed (SIGKILL, as a crash) once it has taken a few reports.
    let mut child = lscp_mail(&["bounces", &path])
        .env("DATABASE_URL", &url)
        .env("LSCP_MAIL_MAIL__BOUNCE_ADDRESS", BOUNCES)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..12 {
        lines.next().expect("a line").expect("text");
    }
    child.kill().expect("killed");
    child.wait().expect("ended");
    let (_, taken, _) = table_counts(&pool).await;
    assert!(
        (12..(8 + SOFT) as i64).contains(&taken),
        "killed half-way: {taken} reports taken"
    );

    let again = run_bounces(&url, &[&path], None);

    assert_eq!(again.code, 0, "{}", again.stderr);
    let (_, taken, active) = table_counts(&pool).await;
    assert_eq!(taken, (8 + SOFT) as i64, "every report once");
    assert_eq!(
        active, 1,
        "the eight hard bounces bounced their readers; eve's delays were all about one message"
    );
    let bounced_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM consent_log WHERE action = 'bounced'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(
        bounced_entries, 8,
        "one entry per reader, however often it was read"
    );
}
