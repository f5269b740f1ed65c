//! `send` against mail servers that refuse the way real relays do (Microsoft 365, Gmail,
//! Postfix, a relay with a private CA, one that drops the connection or goes away): only what
//! the server says about one recipient changes that recipient's record; a refused session stops
//! the run before anyone else is tried; an outage fails nobody.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::common::scripted_smtp::{Answer, ForRecipient, Relay, ScriptedSmtp, TestCa};
use crate::common::sending::{fast_options, send_to, shipped_issue};
use crate::common::store::{add, database};
use lscp_mail::config::Config;
use lscp_mail::mail::smtp::{SmtpTarget, Stage};
use lscp_mail::send::campaign::{Outcome, RunReport, SendOptions};
use lscp_mail::store::Store;
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const ISSUE: &str = "issues/2026-02";

fn reader(i: usize) -> String {
    format!("reader{i:03}@example.org")
}

async fn readers(pool: &PgPool, n: usize) {
    let store = Store::from_pool(pool.clone());
    for i in 0..n {
        add(&store, &reader(i), "training,events").await;
    }
}

/// Each reader's delivery status and attempts, and their subscriber status, by address.
async fn ledger(pool: &PgPool) -> Vec<(String, String, i32, String)> {
    sqlx::query_as(
        "SELECT s.email, d.status, d.attempts, s.status
           FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
          ORDER BY s.email",
    )
    .fetch_all(pool)
    .await
    .expect("ledger")
}

async fn with_status(pool: &PgPool, status: &str) -> Vec<String> {
    ledger(pool)
        .await
        .into_iter()
        .filter(|r| r.1 == status)
        .map(|r| r.0)
        .collect()
}

async fn bounced(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT email FROM subscribers WHERE status = 'bounced' ORDER BY email")
        .fetch_all(pool)
        .await
        .expect("bounced")
}

async fn campaigns(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(pool)
        .await
        .expect("count")
}

fn plain(server: &ScriptedSmtp) -> SmtpTarget {
    SmtpTarget::parse(&SecretString::from(server.url())).expect("url")
}

/// One connection, so that "the session carried on" can be counted.
fn one_connection() -> SendOptions {
    SendOptions {
        concurrency: 1,
        ..fast_options()
    }
}

async fn send_in_process(pool: &PgPool, target: &SmtpTarget, options: &SendOptions) -> RunReport {
    let store = Store::from_pool(pool.clone());
    send_to(
        &store,
        &shipped_issue("2026-02"),
        target,
        options,
        &Config::default(),
    )
    .await
}

/// `lscp-mail send issues/2026-02` against the test's database and `smtp_url`: exit code and
/// everything printed. The process is waited for off the runtime, which serves the SMTP side.
async fn send_process(db: &str, smtp_url: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = crate::common::lscp_mail(&["send", ISSUE, "--rate", "0", "--concurrency", "1"]);
    cmd.env("DATABASE_URL", db)
        .env("SMTP_URL", smtp_url)
        .env("LSCP_MAIL_SEND__SMTP_TIMEOUT_SECONDS", "5")
        .env("LSCP_MAIL_SEND__RETRY_AFTER_SECONDS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("lscp-mail runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `lscp-mail send issues/2026-02 --rate 0 EXTRA…` started with the default settings (no
/// shortened timeouts) against the test's database and `server`, its output discarded.
fn send_with_defaults(db: &str, server: &ScriptedSmtp, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["send", ISSUE, "--rate", "0"];
    args.extend_from_slice(extra);
    crate::common::lscp_mail(&args)
        .env("DATABASE_URL", db)
        .env("SMTP_URL", server.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lscp-mail runs")
}

/// Every reader's message was accepted exactly once.
fn each_accepted_once(server: &ScriptedSmtp, n: usize) {
    let mut got = server.log().accepted;
    got.sort();
    let want: Vec<String> = (0..n).map(reader).collect();
    assert_eq!(got, want, "each reader's message accepted exactly once");
}

/// The relay's answer at the end of each message, by the message's place in the run (0 for
/// the first, over every session and recipient).
fn by_message(answer: impl Fn(u32) -> Answer + Send + Sync + 'static) -> ForRecipient<Answer> {
    let messages = AtomicU32::new(0);
    Arc::new(move |_, _| answer(messages.fetch_add(1, Ordering::SeqCst)))
}

/// The test's database with `n` readers, and a mail server playing `relay`.
async fn scene(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
    n: usize,
    relay: Relay,
) -> (PgPool, String, ScriptedSmtp) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, n).await;
    (pool, url, ScriptedSmtp::start(relay).await)
}

/// Every reader accepted once and recorded sent on the one attempt that worked: the session's
/// failures were charged to nobody.
async fn sent_once_charging_nobody(pool: &PgPool, server: &ScriptedSmtp, n: usize) {
    each_accepted_once(server, n);
    let rows = ledger(pool).await;
    assert!(
        rows.iter().all(|r| r.1 == "sent" && r.2 == 1),
        "sent, each charged one attempt only: {rows:?}"
    );
}

// Microsoft 365 ---------------------------------------------------------------------------

#[sqlx::test]
async fn microsoft_365_refusing_an_unauthenticated_client_stops_send_before_anyone_is_frozen(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(pool_options, options, 5, Relay {
        mail: "530 5.7.57 Client not authenticated to send mail. [LO2P265CA0001.GBRP265.PROD.OUTLOOK.COM]".into(),
        ..Relay::default()
    }).await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("530 5.7.57"), "the server's reply: {out}");
    assert!(out.contains("SMTP_URL"), "the setting at fault: {out}");
    assert_eq!(campaigns(&pool).await, 0, "nothing frozen or claimed");
    assert!(bounced(&pool).await.is_empty());
    assert_eq!(server.count("MAIL FROM"), 1, "one pre-flight session only");
}

#[sqlx::test]
async fn microsoft_365_refusing_the_sender_stops_send_naming_mail_from(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(
        pool_options,
        options,
        5,
        Relay {
            mail: "550 5.1.8 Access denied, bad outbound sender".into(),
            ..Relay::default()
        },
    )
    .await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("550 5.1.8"), "{out}");
    assert!(out.contains("mail.from"), "{out}");
    assert_eq!(campaigns(&pool).await, 0);
    assert!(bounced(&pool).await.is_empty());
}

#[sqlx::test]
async fn a_sender_refused_mid_run_fails_and_bounces_nobody_and_gives_every_claim_back(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(
        pool_options,
        options,
        20,
        Relay {
            mail: "550 5.1.8 Access denied, bad outbound sender".into(),
            ..Relay::default()
        },
    )
    .await;
    let report = send_in_process(&pool, &plain(&server), &fast_options()).await;
    assert_eq!(report.outcome, Outcome::Refused);
    let why = report.stopped_by.expect("the refusal");
    assert_eq!(why.stage, Stage::MailFrom);
    assert_eq!(why.enhanced(), Some("5.1.8"));
    let rows = ledger(&pool).await;
    assert!(
        rows.iter()
            .all(|(_, status, attempts, sub)| status == "queued"
                && *attempts == 0
                && sub == "active"),
        "nobody's delivery or subscriber status changed: {rows:?}"
    );
    assert!(
        server.count("MAIL FROM") <= 2,
        "nobody else tried after the refusal (one per connection)"
    );
}

#[sqlx::test]
async fn microsoft_365_refusing_the_login_stops_send_naming_the_credentials(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 5).await;
    let ca = TestCa::new();
    let server = ScriptedSmtp::start(Relay {
        extensions: vec!["AUTH LOGIN PLAIN".into(), "8BITMIME".into()],
        tls: Some(ca.clone()),
        auth: "535 5.7.3 Authentication unsuccessful [LO4P123CA0456.GBRP123.PROD.OUTLOOK.COM]"
            .into(),
        ..Relay::default()
    })
    .await;
    let ca_file = ca.ca_file.display().to_string();
    let (code, out) = send_process(
        &url,
        &server.login_url(),
        &[("LSCP_MAIL_SMTP__CA_FILE", &ca_file)],
    )
    .await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("535 5.7.3"), "{out}");
    assert!(out.contains("user name and password in SMTP_URL"), "{out}");
    assert!(
        !out.contains("secret"),
        "the password is never shown: {out}"
    );
    assert_eq!(campaigns(&pool).await, 0);
}

#[sqlx::test]
async fn too_many_recipients_4_5_3_is_a_rate_complaint_that_charges_nobody(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(
        pool_options,
        options,
        6,
        Relay {
            rcpt: Arc::new(|to, n| {
                if to == "reader001@example.org" && n == 1 {
                    "452 4.5.3 Too many recipients".into()
                } else {
                    "250 2.1.5 Recipient OK".into()
                }
            }),
            ..Relay::default()
        },
    )
    .await;
    let report = send_in_process(&pool, &plain(&server), &one_connection()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 6).await;
}

#[sqlx::test]
async fn microsoft_365s_submission_rate_limit_slows_the_run_and_fails_nobody(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 5).await;
    let server = ScriptedSmtp::start(Relay {
        data_end: by_message(|n| {
            Answer::Reply(if n == 1 {
                "421 4.4.2 Message submission rate for this client has exceeded the configured limit".into()
            } else {
                "250 2.0.0 OK <x@example.org> [Hostname=LO2P265MB0001]".into()
            })
        }),
        ..Relay::default()
    })
    .await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("slow down") && out.contains("4.4.2"), "{out}");
    assert!(out.contains("nobody is charged an attempt"), "{out}");
    each_accepted_once(&server, 5);
    assert!(with_status(&pool, "failed").await.is_empty());
}

// Gmail -----------------------------------------------------------------------------------

#[sqlx::test]
async fn gmails_421_rate_limit_charges_nobody_and_delivers_everyone_once(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    readers(&pool, 8).await;
    let server = ScriptedSmtp::start(Relay {
        data_end: by_message(|n| match n {
            2 | 3 => Answer::Reply(
                "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address.".into(),
            ),
            _ => Answer::Reply("250 2.0.0 OK 1700000000 gsmtp".into()),
        }),
        ..Relay::default()
    })
    .await;
    let report = send_in_process(&pool, &plain(&server), &fast_options()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 8).await;
}

#[sqlx::test]
async fn gmail_refusing_unauthenticated_mail_pauses_the_run_after_ten_readers_in_a_row(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(pool_options, options, 15, Relay {
        data_end: Arc::new(|_, _| {
            Answer::Reply("550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.".into())
        }),
        ..Relay::default()
    }).await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("5.7.26"), "{out}");
    assert!(
        out.contains("paused") && out.contains("retry-failed"),
        "says what to do: {out}"
    );
    assert_eq!(with_status(&pool, "failed").await.len(), 10);
    assert_eq!(with_status(&pool, "queued").await.len(), 5);
    assert!(bounced(&pool).await.is_empty(), "nobody's address is dead");
    let status: String = sqlx::query_scalar("SELECT status FROM campaigns")
        .fetch_one(&pool)
        .await
        .expect("campaign");
    assert_eq!(status, "paused");
}

// Postfix ---------------------------------------------------------------------------------

#[sqlx::test]
async fn greylisting_defers_each_reader_once_then_everyone_is_delivered_on_one_session(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(pool_options, options, 5, Relay {
        rcpt: Arc::new(|to, n| {
            if n == 1 {
                format!("450 4.2.0 <{to}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html")
            } else {
                "250 2.1.5 Ok".into()
            }
        }),
        ..Relay::default()
    }).await;
    let report = send_in_process(&pool, &plain(&server), &one_connection()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    each_accepted_once(&server, 5);
    let rows = ledger(&pool).await;
    assert!(
        rows.iter().all(|r| r.1 == "sent" && r.2 == 2),
        "a greylisted reader is charged the attempt: {rows:?}"
    );
    let log = server.log();
    assert_eq!(log.sessions, 1, "RSET after each deferral, no reconnecting");
    assert_eq!(server.count("RSET"), 5);
}

/// The tests above shorten `send.retry_after_seconds` and `send.smtp_timeout_seconds` to stay
/// fast; with the defaults a greylisted reader is put back for about a minute (60 s, ±25 %
/// jitter), the others are sent, and a stopped run says it can be resumed.
#[sqlx::test]
async fn with_the_default_settings_a_greylisted_reader_is_put_back_for_about_a_minute(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let greylisted = reader(0);
    let (pool, url, server) = scene(
        pool_options,
        options,
        3,
        Relay {
            rcpt: Arc::new(move |to, _| {
                if to == reader(0) {
                    format!("450 4.2.0 <{to}>: Recipient address rejected: Greylisted")
                } else {
                    "250 2.1.5 Ok".into()
                }
            }),
            ..Relay::default()
        },
    )
    .await;
    let mut child = send_with_defaults(&url, &server, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let put_back_for = loop {
        let row: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM d.next_attempt_at - now())::float8
               FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
              WHERE s.email = $1 AND d.status = 'queued' AND d.attempts = 1",
        )
        .bind(&greylisted)
        .fetch_optional(&pool)
        .await
        .expect("ledger");
        if let Some(secs) = row
            && with_status(&pool, "sent").await.len() == 2
        {
            break secs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the greylisted reader was not put back: {:?}",
            ledger(&pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        (40.0..=75.0).contains(&put_back_for),
        "put back for {put_back_for:.1} s, not about the default minute"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joined")
        .expect("waited");
    assert_eq!(status.code(), Some(75), "a stopped run is resumable");
}

/// The process tests shorten `send.smtp_timeout_seconds` (to 1 s in `send_process`, 5 s here):
/// with the default a relay that takes 3 s to accept each message (as a busy one scanning for
/// viruses does) is waited for, and every reader's message is accepted once, none given up on or
/// sent again.
#[sqlx::test]
async fn with_the_default_settings_a_relay_slow_to_accept_is_waited_for(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(
        pool_options,
        options,
        2,
        Relay {
            data_end: Arc::new(|_, _| {
                Answer::After(Duration::from_secs(3), "250 2.0.0 Ok: queued".into())
            }),
            ..Relay::default()
        },
    )
    .await;
    let mut child = send_with_defaults(&url, &server, &["--concurrency", "1"]);
    // Two messages of 3 s each; a timeout shorter than the relay's wait would retry for ever.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waited") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("send did not finish within 60 s: {:?}", ledger(&pool).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0));
    let rows = ledger(&pool).await;
    assert!(
        rows.iter().all(|r| r.1 == "sent" && r.2 == 1),
        "each sent at the first attempt, none given up on: {rows:?}"
    );
    each_accepted_once(&server, 2);
}

#[sqlx::test]
async fn postfix_refusing_a_dead_mailbox_bounces_that_reader_alone_and_carries_on(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(pool_options, options, 6, Relay {
        rcpt: Arc::new(|to, _| {
            if to == "reader002@example.org" {
                format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown in virtual mailbox table")
            } else {
                "250 2.1.5 Ok".into()
            }
        }),
        ..Relay::default()
    }).await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 sent, 1 failed"), "{out}");
    assert_eq!(bounced(&pool).await, vec![reader(2)]);
    assert_eq!(with_status(&pool, "failed").await, vec![reader(2)]);
    assert_eq!(with_status(&pool, "sent").await.len(), 5);
    // The pre-flight session, then one session for all six.
    assert_eq!(
        server.log().sessions,
        2,
        "the refusal did not end the session"
    );
}

#[sqlx::test]
async fn a_run_in_which_every_attempt_failed_does_not_exit_0(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(
        pool_options,
        options,
        4,
        Relay {
            rcpt: Arc::new(|_, _| "554 5.7.1 Recipient address rejected: Access denied".into()),
            ..Relay::default()
        },
    )
    .await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("every attempt failed"), "{out}");
    assert!(
        bounced(&pool).await.is_empty(),
        "a policy refusal is no dead mailbox"
    );
}

// Pipelining across messages --------------------------------------------------------------

/// The MAIL FROM commands that came with the end of the message before: written ahead.
fn envelopes_sent_ahead(server: &ScriptedSmtp) -> usize {
    server
        .log()
        .pipelined
        .iter()
        .filter(|(_, c)| c.to_ascii_uppercase().starts_with("MAIL FROM"))
        .count()
}

#[sqlx::test]
async fn an_unlimited_run_sends_each_envelope_with_the_end_of_the_message_before(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(pool_options, options, 6, Relay::default()).await;
    let report = send_in_process(&pool, &plain(&server), &one_connection()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 6).await;
    // Batches of 5: the first batch's third, fourth and fifth went ahead (the first message
    // asks the pace, which says "unlimited" for a second; the first of a batch has no message
    // before it). Two at least, in case that second ran out on a slow machine.
    let ahead = envelopes_sent_ahead(&server);
    assert!(
        (2..=3).contains(&ahead),
        "{ahead} envelopes went with the end of the message before: {:?}",
        server.log().commands
    );
    assert_eq!(server.log().sessions, 1, "on one session");
    assert_eq!(server.count("MAIL FROM"), 6, "each envelope went once");
}

#[sqlx::test]
async fn a_run_at_a_rate_sends_each_envelope_when_its_message_may_go(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(pool_options, options, 4, Relay::default()).await;
    let options = SendOptions {
        rate: "50/s".parse().expect("rate"),
        ..one_connection()
    };
    let report = send_in_process(&pool, &plain(&server), &options).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 4).await;
    assert_eq!(
        envelopes_sent_ahead(&server),
        0,
        "a message's envelope goes at its turn in the pace, not before"
    );
}

/// A session that fails at the end of a message (a 421 as the relay shuts down) while the next
/// reader's envelope is out: both go back uncharged with the rest of the batch, and everyone is
/// sent once on the next session.
#[sqlx::test]
async fn a_session_failing_at_a_messages_end_gives_the_next_one_back_too(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(
        pool_options,
        options,
        6,
        Relay {
            // The third: the fourth's envelope comes with its end.
            data_end: by_message(|n| {
                Answer::Reply(if n == 2 {
                    "421 4.3.0 Service shutting down, closing channel".into()
                } else {
                    "250 2.0.0 Ok: queued".into()
                })
            }),
            ..Relay::default()
        },
    )
    .await;
    let report = send_in_process(&pool, &plain(&server), &one_connection()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 6).await;
    assert_eq!(
        server.log().sessions,
        2,
        "the one that failed, then the probe's, kept"
    );
    assert!(envelopes_sent_ahead(&server) >= 1);
}

/// With the defaults (no shortened timeouts): a stop that comes while the next reader's
/// envelope is out (with the end of the message before, held by a relay slow to accept) sends
/// that reader nothing: the session is hung up on without the message, and their claim goes back
/// uncharged with the rest.
#[sqlx::test]
async fn a_run_stopped_while_the_next_envelope_is_out_sends_that_reader_nothing(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let slow = Arc::new(tokio::sync::Notify::new());
    let told = slow.clone();
    let (pool, url, server) = scene(
        pool_options,
        options,
        6,
        Relay {
            data_end: by_message(move |n| {
                // The second message: the first has told the run that its pace is unlimited.
                if n == 1 {
                    told.notify_one();
                    Answer::After(Duration::from_secs(2), "250 2.0.0 Ok: queued".into())
                } else {
                    Answer::Reply("250 2.0.0 Ok: queued".into())
                }
            }),
            ..Relay::default()
        },
    )
    .await;
    let child = send_with_defaults(&url, &server, &["--concurrency", "1"]);
    tokio::time::timeout(Duration::from_secs(60), slow.notified())
        .await
        .expect("the second message began within 60 s");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .expect("joined")
    .expect("waited");
    assert_eq!(status.code(), Some(75), "a stopped run is resumable");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    let mut accepted = log.accepted.clone();
    assert_eq!(
        accepted.len(),
        2,
        "nothing taken after the stop: {accepted:?}"
    );
    accepted.sort();
    assert_eq!(with_status(&pool, "sent").await, accepted);
    let third = log
        .commands
        .iter()
        .filter_map(|(_, c)| c.strip_prefix("RCPT TO:<")?.strip_suffix('>'))
        .nth(2)
        .expect("a third reader's envelope went ahead with the second's end")
        .to_string();
    assert!(!accepted.contains(&third), "{third} was sent nothing");
    let rows = ledger(&pool).await;
    assert!(
        rows.iter()
            .filter(|r| r.1 != "sent")
            .all(|r| r.1 == "queued" && r.2 == 0),
        "the rest, {third} among them, went back uncharged: {rows:?}"
    );
    assert_eq!(rows.iter().filter(|r| r.1 == "queued").count(), 4);
}

// TLS -------------------------------------------------------------------------------------

#[sqlx::test]
async fn a_relay_with_a_private_ca_is_trusted_through_smtp_ca_file(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 3).await;
    let ca = TestCa::new();
    let server = ScriptedSmtp::start(Relay {
        extensions: vec!["AUTH PLAIN LOGIN".into(), "8BITMIME".into()],
        tls: Some(ca.clone()),
        ..Relay::default()
    })
    .await;

    let (code, out) = send_process(&url, &server.login_url(), &[]).await;
    assert_eq!(code, 3, "an unknown CA is refused: {out}");
    assert!(out.contains("ca_file"), "{out}");
    assert_eq!(campaigns(&pool).await, 0);

    let ca_file = ca.ca_file.display().to_string();
    let (code, out) = send_process(
        &url,
        &server.login_url(),
        &[("LSCP_MAIL_SMTP__CA_FILE", &ca_file)],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    each_accepted_once(&server, 3);
    // The pre-flight session goes as far as the workers' do, and sends nothing.
    let first: Vec<String> = server
        .log()
        .commands
        .iter()
        .filter(|(n, _)| *n == 2)
        .map(|(_, c)| c.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        first,
        [
            "EHLO news.leedsscp.org.uk",
            "STARTTLS",
            "EHLO news.leedsscp.org.uk",
            "AUTH PLAIN",
            "MAIL FROM:<lscp.info@leeds.gov.uk>",
            "RSET",
            "QUIT"
        ]
    );
}

#[sqlx::test]
async fn credentials_for_a_server_without_starttls_or_auth_stop_send(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 3).await;
    let no_tls = ScriptedSmtp::start(Relay::default()).await;
    let (code, out) = send_process(&url, &no_tls.login_url(), &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("does not offer STARTTLS") && out.contains("TLS mode"),
        "{out}"
    );

    let ca = TestCa::new();
    let no_auth = ScriptedSmtp::start(Relay {
        tls: Some(ca.clone()),
        ..Relay::default()
    })
    .await;
    let ca_file = ca.ca_file.display().to_string();
    let (code, out) = send_process(
        &url,
        &no_auth.login_url(),
        &[("LSCP_MAIL_SMTP__CA_FILE", &ca_file)],
    )
    .await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("offers no AUTH"), "{out}");
    assert_eq!(campaigns(&pool).await, 0);
    assert_eq!(no_auth.count("MAIL FROM"), 0, "no mail without the login");
}

#[sqlx::test]
async fn a_5xx_greeting_stops_send(pool_options: PgPoolOptions, options: PgConnectOptions) {
    let (pool, url, server) = scene(
        pool_options,
        options,
        3,
        Relay {
            greeting: "554 5.7.1 relay.test: this host does not accept mail from you".into(),
            ..Relay::default()
        },
    )
    .await;
    let (code, out) = send_process(&url, &server.url(), &[]).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("greeting") && out.contains("554 5.7.1"),
        "{out}"
    );
    assert_eq!(campaigns(&pool).await, 0);
}

// Connections that go away ----------------------------------------------------------------

#[sqlx::test]
async fn a_connection_dropped_mid_data_charges_nobody_and_the_message_goes_later(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(
        pool_options,
        options,
        5,
        Relay {
            data_end: Arc::new(|to, n| {
                if to == "reader003@example.org" && n == 1 {
                    Answer::Drop
                } else {
                    Answer::Reply("250 2.0.0 Ok: queued".into())
                }
            }),
            ..Relay::default()
        },
    )
    .await;
    let report = send_in_process(&pool, &plain(&server), &one_connection()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    sent_once_charging_nobody(&pool, &server, 5).await;
}

#[sqlx::test]
async fn an_outage_longer_than_the_whole_retry_schedule_fails_nobody(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    readers(&pool, 30).await;
    let server = Arc::new(ScriptedSmtp::start(Relay::default()).await);
    // Two tries 200 ms apart: the outage below outlasts a reader's whole retry schedule tenfold.
    let opts = SendOptions {
        max_attempts: 2,
        retry_after: Duration::from_millis(200),
        rate: "20/s".parse().expect("rate"),
        ..fast_options()
    };
    let target = plain(&server);
    let run = {
        let pool = pool.clone();
        tokio::spawn(async move { send_in_process(&pool, &target, &opts).await })
    };
    while server.log().accepted.len() < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.set_down(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(server.log().accepted.len() < 30, "the outage came mid-send");
    server.set_down(false);
    let report = run.await.expect("the run ends");
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.failed, 0);
    each_accepted_once(&server, 30);
    assert!(with_status(&pool, "failed").await.is_empty());
}

#[sqlx::test]
async fn an_outage_past_give_up_after_stops_with_everyone_still_queued(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _, server) = scene(pool_options, options, 6, Relay::default()).await;
    server.set_down(true);
    let opts = SendOptions {
        retry_after: Duration::from_millis(100),
        give_up_after: Duration::from_secs(1),
        ..fast_options()
    };
    let report = send_in_process(&pool, &plain(&server), &opts).await;
    assert_eq!(report.outcome, Outcome::ServerUnavailable);
    assert_eq!(report.failed, 0);
    let rows = ledger(&pool).await;
    assert!(
        rows.iter().all(|r| r.1 == "queued" && r.2 == 0),
        "everyone still queued, nobody charged: {rows:?}"
    );
}

// doctor ----------------------------------------------------------------------------------

/// `lscp-mail --config FILE doctor` against the test's database and `smtp_url`.
async fn doctor(db: &str, smtp_url: &str, config: &std::path::Path) -> (i32, String) {
    let mut cmd = crate::common::lscp_mail(&["--config"]);
    cmd.arg(config)
        .arg("doctor")
        .current_dir(config.parent().expect("a folder"))
        .env("DATABASE_URL", db)
        .env("SMTP_URL", smtp_url);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("lscp-mail runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[sqlx::test]
async fn doctor_checks_what_a_send_needs_prints_the_dkim_record_and_changes_nothing(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url, server) = scene(pool_options, options, 3, Relay::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("dkim.pem");
    let openssl = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("openssl {args} 2>/dev/null"))
            .output()
            .expect("openssl runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    openssl(&format!("genrsa -traditional -out {} 2048", key.display()));
    let public = openssl(&format!(
        "rsa -in {} -pubout -outform DER | base64 -w0",
        key.display()
    ));
    assert!(!public.is_empty(), "openssl made a key");
    let config = dir.path().join("lscp-mail.toml");
    let write = |base_url: &str, mailto: &str| {
        std::fs::write(
            &config,
            format!(
                "[site]\nbase_url = \"{base_url}\"\n\
                 [mail]\nfrom = \"LSCP <news@leedsscp.org.uk>\"\nunsubscribe_mailto = \"{mailto}\"\n\
                 [dkim]\ndomain = \"leedsscp.org.uk\"\nselector = \"lscp2026\"\nkey_file = \"{}\"\n",
                key.display()
            ),
        )
        .expect("write config")
    };

    write("http://news.example.org", "unsubscribe@elsewhere.example");
    let (code, out) = doctor(&url, &server.url(), &config).await;
    assert_eq!(code, 1, "{out}");
    for line in [
        "✓ configuration loads",
        "✓ database reachable and migrated",
        "✓ mail server smtp://127.0.0.1",
        "✓ DKIM key",
        "✓ the From domain leedsscp.org.uk aligns with the DKIM domain leedsscp.org.uk",
        "✗ site.base_url http://news.example.org is not https",
        "✗ the unsubscribe address unsubscribe@elsewhere.example is not on the From domain",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
    let record =
        format!("lscp2026._domainkey.leedsscp.org.uk. IN TXT \"v=DKIM1; k=rsa; p={public}\"");
    assert!(out.contains(&record), "the record to publish:\n{out}");
    assert_eq!(out.matches("fix:").count(), 2, "a fix for each ✗:\n{out}");
    assert_eq!(server.count("MAIL FROM"), 1);
    assert_eq!(server.count("RSET"), 1);
    assert_eq!(server.count("DATA"), 0, "nothing was sent");
    assert_eq!(campaigns(&pool).await, 0, "nothing was recorded");

    write(
        "https://news.leedsscp.org.uk",
        "unsubscribe@news.leedsscp.org.uk",
    );
    let (code, out) = doctor(&url, &server.url(), &config).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ready to send") && !out.contains('✗'), "{out}");

    let (code, out) = doctor(&url, "smtp://127.0.0.1:1", &config).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ mail server smtp://127.0.0.1:1 unavailable"),
        "{out}"
    );
}
