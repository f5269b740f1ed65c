//! `send` against a real PostgreSQL (a fresh database per test) and a real SMTP server
//! (postfix's smtp-sink on 127.0.0.1): who gets what, the headers, temporary and permanent
//! failures, and that running again resumes without sending anyone anything twice.

use crate::common::store;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::dkim::{self, TestKey};
use crate::common::sending::{fast_options, send_with, send_with_config, shipped_issue};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::add;
use lscp_mail::config::{Config, Dkim, DkimAlgorithm};
use lscp_mail::content::{Issue, IssueId, TopicCatalog, load_issue};
use lscp_mail::send::campaign::{self, Outcome, RunReport, SendOptions};
use lscp_mail::store::{Store, SubscriberStatus};
use mail_parser::{MessageParser, MimeHeaders};
use sqlx::PgPool;

fn issue(id: &str) -> Issue {
    shipped_issue(id)
}

async fn send(pool: &PgPool, issue: &Issue, sink: &SmtpSink, options: &SendOptions) -> RunReport {
    send_to_port(pool, issue, sink.port, options).await
}

async fn send_to_port(pool: &PgPool, issue: &Issue, port: u16, options: &SendOptions) -> RunReport {
    send_with(&Store::from_pool(pool.clone()), issue, port, options).await
}

/// The plain-text part of the message sent to `address`.
fn text_for(sink: &SmtpSink, address: &str) -> Vec<String> {
    sink.messages()
        .iter()
        .filter_map(|raw| {
            let m = MessageParser::default().parse(raw)?;
            let to = m.to()?.first()?.address()?.to_string();
            (to == address).then(|| m.body_text(0).map(|t| t.into_owned()).unwrap_or_default())
        })
        .collect()
}

#[sqlx::test]
async fn every_reader_gets_exactly_the_sections_of_their_topics(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "trainer@example.org", "training").await;
    add(&store, "campaigner@example.org", "events,protocols").await;
    add(&store, "reviewer@example.org", "reviews").await;
    add(
        &store,
        "everything@example.org",
        "training,protocols,reviews,events",
    )
    .await;
    let sink = SmtpSink::start(&[]);
    let feb = issue("2026-02");

    let report = send(&pool, &feb, &sink, &fast_options()).await;

    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!((report.counts.sent, report.counts.skipped), (3, 1));
    for (address, topics) in [
        ("trainer@example.org", vec!["training"]),
        ("campaigner@example.org", vec!["events", "protocols"]),
        (
            "everything@example.org",
            vec!["training", "protocols", "events"],
        ),
    ] {
        let texts = text_for(&sink, address);
        assert_eq!(texts.len(), 1, "{address} gets one message");
        for section in &feb.sections {
            let topic = section.topic.as_ref().map(|t| t.as_str()).unwrap_or("");
            let wanted = section.topic.is_none() || topics.contains(&topic);
            assert_eq!(
                texts[0].contains(&format!("\n{}\n=", section.heading)),
                wanted,
                "{address}: \"{}\" ({topic})",
                section.heading
            );
        }
    }
    assert!(
        text_for(&sink, "reviewer@example.org").is_empty(),
        "no topic of theirs is in this issue: skipped"
    );
}

#[sqlx::test]
async fn every_message_carries_one_click_unsubscribe_and_the_readers_own_links(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ben.hartley@example.org", "training,events").await;
    let sink = SmtpSink::start(&[]);
    send(&pool, &issue("2026-02"), &sink, &fast_options()).await;

    let raw = sink.messages().pop().expect("one message");
    let m = MessageParser::default().parse(&raw).expect("parses");
    let subscriber = store
        .subscriber(&store::email("ben.hartley@example.org"))
        .await
        .expect("subscriber");
    let token = store.link_token(&subscriber).await.expect("token").expose();
    let header = |name: &str| m.header_raw(name).map(str::trim).map(str::to_string);
    assert_eq!(
        header("List-Unsubscribe"),
        Some(format!("<https://news.leedsscp.org.uk/u/{token}>"))
    );
    assert_eq!(
        header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        header("List-Id").as_deref(),
        Some("LSCP <practitioners.news.leedsscp.org.uk>")
    );
    let id = m.message_id().expect("Message-ID");
    assert!(id.ends_with("@news.leedsscp.org.uk"), "{id}");
    let ct = m.root_part().content_type().expect("content type");
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let html = m.body_html(0).expect("html");
    assert!(html.contains(&format!("https://news.leedsscp.org.uk/p/{token}")));
    let text = m.body_text(0).expect("text");
    assert!(text.contains(&format!("https://news.leedsscp.org.uk/u/{token}")));
    assert!(!html.contains("LSCPREADERTOKEN"), "no placeholder left");

    // The ledger keeps the Message-ID it was sent with.
    let kept: Option<String> = sqlx::query_scalar("SELECT message_id FROM deliveries")
        .fetch_one(&pool)
        .await
        .expect("delivery");
    assert_eq!(kept.as_deref(), Some(format!("<{id}>").as_str()));
}

#[sqlx::test]
async fn without_a_bounce_address_the_envelope_sender_is_the_from_address(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ben.hartley@example.org", "training").await;
    let sink = SmtpSink::start(&[]);
    send(&pool, &issue("2026-02"), &sink, &fast_options()).await;

    let dumped = sink.dumped().pop().expect("one message");
    assert_eq!(dumped.sender().as_deref(), Some("lscp.info@leeds.gov.uk"));
    let m = dumped.parsed();
    let list = m.header_raw("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(!list.contains("mailto:"), "{list}");
}

#[sqlx::test]
async fn reports_come_back_to_an_address_naming_the_delivery_not_the_reader(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "ben.hartley@example.org", "training").await;
    add(&store, "ann.lee@example.org", "training").await;
    let sink = SmtpSink::start(&[]);
    let mut config = Config::default();
    config.mail.bounce_address = Some(
        lscp_mail::config::TaggedAddress::parse("bounces@news.leedsscp.org.uk").expect("address"),
    );
    config.mail.unsubscribe_mailto = Some(
        lscp_mail::config::TaggedAddress::parse("unsubscribe@news.leedsscp.org.uk")
            .expect("address"),
    );
    send_with_config(
        &store,
        &issue("2026-02"),
        sink.port,
        &fast_options(),
        &config,
    )
    .await;

    let mut senders = Vec::new();
    for dumped in sink.dumped() {
        let m = dumped.parsed();
        let to = m
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address())
            .expect("To");
        let id = m.message_id().expect("Message-ID").to_string();
        let tag = id.split('@').next().expect("local part").to_string();
        let sender = dumped.sender().expect("MAIL FROM");
        // VERP: the tag is the Message-ID's random part, which the ledger keeps; never the address.
        assert_eq!(sender, format!("bounces+{tag}@news.leedsscp.org.uk"));
        assert!(
            !sender.contains(to.split('@').next().expect("local")),
            "{sender}"
        );
        let subscriber = store
            .subscriber(&store::email(to))
            .await
            .expect("subscriber");
        let token = store.link_token(&subscriber).await.expect("token").expose();
        // Unfolded: a long header is folded onto several lines.
        let list = m
            .header_raw("List-Unsubscribe")
            .expect("List-Unsubscribe")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            list.ends_with(&format!(
                ", <mailto:unsubscribe+{token}@news.leedsscp.org.uk?subject=unsubscribe>"
            )),
            "{list}"
        );
        senders.push(sender);
    }
    senders.sort();
    senders.dedup();
    assert_eq!(
        senders.len(),
        2,
        "each delivery has its own envelope sender"
    );
}

#[sqlx::test]
async fn headers_pass_a_strict_rfc_5322_parser(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "zoe.o'brien@example.org", "training").await;
    let sink = SmtpSink::start(&[]);
    send(&pool, &issue("2025-11"), &sink, &fast_options()).await;
    let raw = sink.messages().pop().expect("one message");
    // smtp-sink puts its own X- lines and a Received header first; the message follows.
    let text = String::from_utf8(raw).expect("utf-8");
    let start = text.find("From: ").expect("From header");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &text[start..]).expect("write");
    // Python's email package with the strict policy raises on any defect in the headers.
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import sys, email, email.policy\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.strict)\n\
             for h in ('From', 'To', 'Subject', 'Date', 'Message-ID', 'List-Id', 'List-Unsubscribe', 'List-Unsubscribe-Post'):\n\
             \x20   assert m[h], h\n\
             assert m.get_content_type() == 'multipart/alternative'\n\
             print(m['To'].addresses[0].addr_spec)",
        )
        .arg(file.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "zoe.o'brien@example.org"
    );
}

#[sqlx::test]
async fn a_temporary_failure_is_retried_on_a_fresh_connection_until_it_goes(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "grace.liu@example.org", "training").await;
    let refusing = SmtpSink::start(&["-r", "RCPT", "-b", "451 4.7.1 Try again later"]);
    let port = refusing.port;
    let options = SendOptions {
        retry_after: Duration::from_secs(1),
        ..fast_options()
    };
    let feb = issue("2026-02");
    let sending = {
        let pool = pool.clone();
        let feb = feb.clone();
        let options = options.clone();
        tokio::spawn(async move { send_to_port(&pool, &feb, port, &options).await })
    };
    // Wait for the first refusal to be recorded, then bring up a server that accepts.
    wait_for(
        &pool,
        "SELECT count(*) FROM deliveries WHERE attempts >= 1 AND status = 'queued'",
    )
    .await;
    refusing.stop();
    let accepting = SmtpSink::start_on(port, &[]);
    let report = sending.await.expect("send task");

    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(
        accepting.recipients(),
        vec!["grace.liu@example.org".to_string()]
    );
    let (status, attempts, reply): (String, i32, String) =
        sqlx::query_as("SELECT status, attempts, last_reply FROM deliveries")
            .fetch_one(&pool)
            .await
            .expect("delivery");
    assert_eq!(status, "sent");
    assert!(attempts >= 2, "{attempts} attempts");
    assert!(reply.starts_with("250"), "{reply}");
}

/// Polls until `count_sql` returns at least one, for up to 30 s.
async fn wait_for(pool: &PgPool, count_sql: &'static str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar(count_sql)
            .fetch_one(pool)
            .await
            .expect("count");
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {count_sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_permanent_failure_is_final_and_no_such_user_marks_the_reader_bounced(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "gone@example.org", "training").await;
    let sink = SmtpSink::start(&[
        "-f",
        "RCPT",
        "-B",
        "550 5.1.1 <gone@example.org>: Recipient address rejected",
    ]);

    let report = send(&pool, &issue("2026-02"), &sink, &fast_options()).await;

    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.counts.failed, 1);
    let (status, attempts, reply): (String, i32, String) =
        sqlx::query_as("SELECT status, attempts, last_reply FROM deliveries")
            .fetch_one(&pool)
            .await
            .expect("delivery");
    assert_eq!((status.as_str(), attempts), ("failed", 1), "not retried");
    assert!(reply.contains("5.1.1"), "the reply is kept: {reply}");
    let reader = store
        .subscriber(&store::email("gone@example.org"))
        .await
        .expect("subscriber");
    assert_eq!(reader.status, SubscriberStatus::Bounced);
    let logged: (String, String, serde_json::Value) =
        sqlx::query_as("SELECT action, source, detail FROM consent_log WHERE action = 'bounced'")
            .fetch_one(&pool)
            .await
            .expect("the bounce is in the consent log");
    assert_eq!(logged.1, "bounce");
    assert_eq!(logged.2["smtp_status"], "5.1.1");
    assert!(
        !logged.2.to_string().contains("gone@example.org"),
        "the log holds no address"
    );
}

#[sqlx::test]
async fn a_5xx_that_is_not_about_the_address_fails_without_bouncing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "policy@example.org", "training").await;
    let sink = SmtpSink::start(&["-f", "RCPT", "-B", "554 5.7.1 Message rejected as spam"]);
    let report = send(&pool, &issue("2026-02"), &sink, &fast_options()).await;
    assert_eq!(report.counts.failed, 1);
    let reader = store
        .subscriber(&store::email("policy@example.org"))
        .await
        .expect("subscriber");
    assert_eq!(reader.status, SubscriberStatus::Active);
}

#[sqlx::test]
async fn running_again_resumes_and_never_enqueues_anyone_twice(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    for n in 0..6 {
        add(&store, &format!("reader{n}@example.org"), "training").await;
    }
    let sink = SmtpSink::start(&[]);
    let feb = issue("2026-02");
    let first = send(&pool, &feb, &sink, &fast_options()).await;
    assert_eq!(first.counts.sent, 6);

    add(&store, "newcomer@example.org", "training").await;
    let again = send(&pool, &feb, &sink, &fast_options()).await;
    assert_eq!(
        (again.sent, again.counts.total()),
        (0, 6),
        "resumed: nothing new, nobody twice"
    );

    let with_new = SendOptions {
        include_new: true,
        ..fast_options()
    };
    let third = send(&pool, &feb, &sink, &with_new).await;
    assert_eq!((third.sent, third.counts.sent), (1, 7));
    let mut got = sink.recipients();
    got.sort();
    let before = got.len();
    got.dedup();
    assert_eq!(
        (before, got.len()),
        (7, 7),
        "seven readers, one message each"
    );
}

#[sqlx::test]
async fn an_issue_changed_since_sending_began_is_not_sent_on_silently(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "reader@example.org", "training").await;
    let sink = SmtpSink::start(&[]);
    let (_copy, dir) = crate::common::issues::copy_issue("2026-02");
    let load = |d: &Path| {
        load_issue(d, &TopicCatalog::builtin())
            .issue
            .expect("loads")
    };
    send(&pool, &load(&dir), &sink, &fast_options()).await;

    let file = dir.join("issue.toml");
    let edited = std::fs::read_to_string(&file).expect("read").replace(
        "February 2026 newsletter",
        "February 2026 newsletter (corrected)",
    );
    std::fs::write(&file, edited).expect("write");
    let err = campaign::prepare(&store, &load(&dir), &fast_options())
        .await
        .expect_err("a changed issue is refused");
    assert!(err.to_string().contains("--allow-changed"), "{err}");
    let allowed = SendOptions {
        allow_changed: true,
        ..fast_options()
    };
    campaign::prepare(&store, &load(&dir), &allowed)
        .await
        .expect("allowed when asked");
}

#[sqlx::test]
async fn a_reader_who_leaves_after_the_audience_is_frozen_is_skipped(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    add(&store, "stays@example.org", "training").await;
    add(&store, "leaves@example.org", "training").await;
    let feb = issue("2026-02");
    campaign::prepare(&store, &feb, &fast_options())
        .await
        .expect("the audience is frozen");
    store
        .unsubscribe(
            &store::email("leaves@example.org"),
            &lscp_mail::store::ConsentSource::Cli,
        )
        .await
        .expect("unsubscribed");
    let sink = SmtpSink::start(&[]);
    let report = send(&pool, &feb, &sink, &fast_options()).await;
    assert_eq!((report.counts.sent, report.counts.skipped), (1, 1));
    assert_eq!(sink.recipients(), vec!["stays@example.org".to_string()]);
}

#[sqlx::test]
async fn the_daily_cap_holds_and_says_how_to_resume(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    for n in 0..8 {
        add(&store, &format!("reader{n}@example.org"), "training").await;
    }
    let sink = SmtpSink::start(&[]);
    let capped = SendOptions {
        daily_cap: Some(5),
        wait_at_cap: false,
        concurrency: 3,
        batch: 4,
        ..fast_options()
    };
    let report = send(&pool, &issue("2026-02"), &sink, &capped).await;
    assert_eq!(report.outcome, Outcome::CapReached);
    assert_eq!(
        report.counts.sent, 5,
        "never more than the cap, even with 3 connections"
    );
    assert_eq!(sink.recipients().len(), 5);
    let campaign = store
        .campaign(IssueId::parse("2026-02").expect("issue id"))
        .await
        .expect("read the campaign")
        .expect("the campaign");
    let counts = store.delivery_counts(campaign.id).await.expect("counts");
    assert_eq!(
        (counts.queued, counts.sending),
        (3, 0),
        "the rest wait, none held"
    );
}

async fn sign_and_verify(pool: &PgPool, algorithm: DkimAlgorithm, key: &TestKey) {
    let store = Store::from_pool(pool.clone());
    add(&store, "signed@example.org", "training").await;
    let sink = SmtpSink::start(&[]);
    let config = Config {
        dkim: Some(Dkim {
            domain: "leedsscp.org.uk".into(),
            selector: "lscp2026".into(),
            key_file: key.path.clone(),
            algorithm,
        }),
        ..Config::default()
    };
    send_with_config(
        &store,
        &issue("2026-02"),
        sink.port,
        &fast_options(),
        &config,
    )
    .await;
    let message = dkim::as_sent(&sink.messages().pop().expect("one message"));
    let sig = dkim::signature(&message);
    assert!(
        sig.contains("d=leedsscp.org.uk") && sig.contains("s=lscp2026"),
        "{sig}"
    );
    assert!(
        sig.contains("list-unsubscribe-post"),
        "one-click headers are signed: {sig}"
    );
    assert!(
        dkim::verifies(message.as_bytes(), &key.record),
        "the signature verifies"
    );
    let tampered = message.replacen(
        "List-Unsubscribe: <",
        "List-Unsubscribe: <https://evil.example/x>, <",
        1,
    );
    assert!(
        !dkim::verifies(tampered.as_bytes(), &key.record),
        "a changed List-Unsubscribe header breaks the signature"
    );
}

#[sqlx::test]
async fn messages_are_dkim_signed_with_rsa_sha256_when_configured(pool: PgPool) {
    let key = dkim::rsa_key("-traditional");
    sign_and_verify(&pool, DkimAlgorithm::RsaSha256, &key).await;
}

#[sqlx::test]
async fn an_rsa_key_in_pkcs8_as_openssl_3_writes_it_signs_too(pool: PgPool) {
    let key = dkim::rsa_key("");
    let pem = std::fs::read_to_string(&key.path).expect("the key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    sign_and_verify(&pool, DkimAlgorithm::RsaSha256, &key).await;
}

#[sqlx::test]
async fn messages_are_dkim_signed_with_ed25519_when_configured(pool: PgPool) {
    sign_and_verify(
        &pool,
        DkimAlgorithm::Ed25519Sha256,
        &dkim::ed25519_key(true),
    )
    .await;
}

#[sqlx::test]
async fn an_ed25519_key_in_pkcs8_pem_as_openssl_writes_it_signs_too(pool: PgPool) {
    sign_and_verify(
        &pool,
        DkimAlgorithm::Ed25519Sha256,
        &dkim::ed25519_key(false),
    )
    .await;
}
