//! `lscp-mail send` as processes an operator runs, stops and kills, against a real PostgreSQL
//! and a real SMTP server: nobody is lost, nobody gets the issue twice but for what was in
//! flight at a kill, and every stop says how to resume.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::smtp_sink::SmtpSink;
use crate::common::store::{add, database};
use lscp_mail::send::ledger::UNRECORDED_PER_CONNECTION;
use lscp_mail::store::Store;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const ISSUE: &str = "issues/2026-02";

async fn readers(pool: &PgPool, n: usize) {
    let store = Store::from_pool(pool.clone());
    for i in 0..n {
        add(
            &store,
            &format!("reader{i:03}@example.org"),
            "training,events",
        )
        .await;
    }
}

/// `lscp-mail send …` against the test's database and `sink`, with a short lease so that a
/// killed sender's claims come back within seconds.
fn sender(db: &str, sink: &SmtpSink, args: &[&str]) -> Command {
    let mut cmd = crate::common::lscp_mail(args);
    cmd.env("DATABASE_URL", db)
        .env("SMTP_URL", sink.url())
        .env("LSCP_MAIL_SEND__LEASE_SECONDS", "3")
        .env("LSCP_MAIL_SEND__SMTP_TIMEOUT_SECONDS", "1")
        .env("LSCP_MAIL_SEND__RETRY_AFTER_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `send` at `rate` over `concurrency` connections claiming `batch` at a time.
fn start_send(db: &str, sink: &SmtpSink, rate: &str, concurrency: &str, batch: &str) -> Child {
    let args = [
        "send",
        ISSUE,
        "--rate",
        rate,
        "--concurrency",
        concurrency,
        "--batch",
        batch,
    ];
    sender(db, sink, &args).spawn().expect("spawn")
}

/// Runs `lscp-mail ARGS` to its end: its exit code, and its output and errors together.
fn run(db: &str, sink: &SmtpSink, args: &[&str]) -> (i32, String) {
    finish(sender(db, sink, args).spawn().expect("spawn"))
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("sender finishes");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn sent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn campaigns(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn wait_until_sent(pool: &PgPool, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent(pool).await < at_least {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} sent after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `send` again to its end, then checks that each of the `readers` got exactly one message.
fn resume_to_the_end(url: &str, sink: &SmtpSink, readers: usize) {
    let (code, out) = run(url, sink, &["send", ISSUE, "--rate", "0"]);
    assert_eq!(code, 0, "{out}");
    let got = received(sink);
    assert_eq!(got.len(), readers, "every reader got the issue");
    assert!(
        got.values().all(|n| *n == 1),
        "somebody got it twice: {got:?}"
    );
}

/// How many messages each address received.
fn received(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for r in sink.recipients() {
        *by.entry(r).or_default() += 1;
    }
    by
}

/// A send to kill: to how many readers, at what rate, over how many connections, and after how
/// many were sent.
struct Kill {
    readers: usize,
    rate: &'static str,
    connections: usize,
    after: i64,
}

/// 40 readers at 20/s over 2 connections, killed after 8.
const SLOW_KILL: Kill = Kill {
    readers: 40,
    rate: "20/s",
    connections: 2,
    after: 8,
};

/// Kills (SIGKILL) a send mid-way, starts it again, and checks that the second run finished
/// within `within`, that nobody was lost, and that only what was in flight or not yet recorded
/// at the kill went twice. With `default_lease`, both runs keep the ten-minute lease rather
/// than the tests' three seconds.
async fn kill_and_resume(
    pool: &PgPool,
    url: &str,
    sink: &SmtpSink,
    kill: Kill,
    default_lease: bool,
    within: Duration,
) {
    let with_lease = |mut cmd: Command| {
        if default_lease {
            cmd.env_remove("LSCP_MAIL_SEND__LEASE_SECONDS");
        }
        cmd
    };
    let connections = kill.connections.to_string();
    let args = [
        "send",
        ISSUE,
        "--rate",
        kill.rate,
        "--concurrency",
        &connections,
        "--batch",
        "5",
    ];
    let mut first = with_lease(sender(url, sink, &args)).spawn().expect("spawn");
    let dead = first.id();
    wait_until_sent(pool, kill.after).await;
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    sessions_gone(pool).await;
    let left_behind: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'sending'")
            .fetch_one(pool)
            .await
            .expect("count");
    let before_restart = sent(pool).await;
    assert!(before_restart < kill.readers as i64, "killed mid-send");
    if default_lease {
        assert!(left_behind > 0, "the killed sender left claims behind");
    }

    let started = Instant::now();
    let mut again = with_lease(sender(url, sink, &["send", ISSUE, "--rate", "0"]))
        .spawn()
        .expect("spawn");
    while again.try_wait().expect("wait").is_none() {
        if started.elapsed() > within {
            let _ = again.kill();
            let _ = again.wait();
            panic!(
                "the resumed send did not finish within {within:?}: it waited for the dead sender's lease"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out) = finish(again);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("finished"), "{out}");
    if left_behind > 0 {
        assert!(
            out.contains(&format!("taking over {left_behind} claim(s) of sender "))
                && out.contains(&format!(":{dead}, which has stopped")),
            "{out}"
        );
    }

    let got = received(sink);
    assert_eq!(
        got.len(),
        kill.readers,
        "every reader got the issue: {got:?}"
    );
    let extra: usize = got.values().map(|n| n - 1).sum();
    // Each connection with the message in flight and at most UNRECORDED_PER_CONNECTION accepted
    // whose record was still on its way (README, Send: two per connection).
    let bound = kill.connections * (UNRECORDED_PER_CONNECTION + 1);
    assert!(
        extra <= bound,
        "only what was in flight or not yet recorded at the kill (at most {bound}) may go twice; {extra} did"
    );
    assert_eq!(sent(pool).await, kill.readers as i64);
}

/// Waits until the database has closed every session of a killed sender: a statement it had
/// in flight (a claim, a group of outcomes) still runs to its commit on the server, and what is
/// left behind is counted after that.
async fn sessions_gone(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'lscp-mail'",
        )
        .fetch_one(pool)
        .await
        .expect("sessions");
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the killed sender's sessions linger"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_sender_killed_mid_send_and_started_again_loses_nobody(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 40).await;
    let sink = SmtpSink::start(&[]);
    kill_and_resume(
        &pool,
        &url,
        &sink,
        SLOW_KILL,
        false,
        Duration::from_secs(60),
    )
    .await;
}

#[sqlx::test]
async fn a_sender_killed_at_full_speed_doubles_at_most_two_messages_per_connection(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 300).await;
    let sink = SmtpSink::start(&[]);
    // Unthrottled over 4 connections the recorder writes groups of several workers' messages:
    // the kill lands with records on their way.
    let kill = Kill {
        readers: 300,
        rate: "0",
        connections: 4,
        after: 60,
    };
    kill_and_resume(&pool, &url, &sink, kill, false, Duration::from_secs(60)).await;
}

#[sqlx::test]
async fn two_senders_at_once_deliver_each_message_once(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 60).await;
    let sink = SmtpSink::start(&[]);
    let a = start_send(&url, &sink, "40/s", "2", "3");
    let b = start_send(&url, &sink, "40/s", "2", "3");
    let (code_a, out_a) = finish(a);
    let (code_b, out_b) = finish(b);
    assert_eq!((code_a, code_b), (0, 0), "{out_a}\n{out_b}");

    let got = received(&sink);
    assert_eq!(got.len(), 60);
    assert!(
        got.values().all(|n| *n == 1),
        "somebody got it twice: {got:?}"
    );
    assert_eq!(sent(&pool).await, 60, "the ledger agrees with the server");
}

#[sqlx::test]
async fn a_live_sender_keeps_its_claims_however_long_its_batch_outlasts_the_lease(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 40).await;
    let sink = SmtpSink::start(&[]);
    // Batches of 20 at 5/s take 4 s, past the tests' 3 s lease: a live sender renews it, so the
    // other sender never takes claims still in hand.
    let a = start_send(&url, &sink, "5/s", "1", "20");
    let b = start_send(&url, &sink, "5/s", "1", "20");
    let (code_a, out_a) = finish(a);
    let (code_b, out_b) = finish(b);
    assert_eq!((code_a, code_b), (0, 0), "{out_a}\n{out_b}");
    let got = received(&sink);
    assert_eq!(got.len(), 40);
    assert!(
        got.values().all(|n| *n == 1),
        "somebody got it twice: {got:?}"
    );
}

#[sqlx::test]
async fn pause_stops_the_sender_and_send_resumes_it(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 30).await;
    let sink = SmtpSink::start(&[]);
    let running = start_send(&url, &sink, "10/s", "1", "2");
    wait_until_sent(&pool, 3).await;

    let (code, out) = run(&url, &sink, &["pause", "2026-02"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = finish(running);
    assert_eq!(code, 75, "a paused send exits 75: {out}");
    assert!(
        out.contains("paused") && out.contains("again to resume"),
        "{out}"
    );
    let (code, status) = run(&url, &sink, &["status", ISSUE]);
    assert_eq!(code, 0);
    assert!(status.contains("paused"), "{status}");

    resume_to_the_end(&url, &sink, 30);
}

#[sqlx::test]
async fn sigterm_finishes_what_is_in_flight_and_gives_back_the_rest(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 30).await;
    let sink = SmtpSink::start(&[]);
    let running = start_send(&url, &sink, "10/s", "2", "10");
    wait_until_sent(&pool, 3).await;
    let term = Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let (code, out) = finish(running);
    assert_eq!(code, 75, "{out}");
    assert!(
        out.contains("interrupted") && out.contains("again to resume"),
        "{out}"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'sending'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(held, 0, "claims were given back, not left to expire");
    assert_eq!(
        sent(&pool).await as usize,
        sink.recipients().len(),
        "sent means accepted"
    );

    resume_to_the_end(&url, &sink, 30);
}

#[sqlx::test]
async fn dry_run_writes_each_message_and_changes_nothing(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 3).await;
    add(
        &Store::from_pool(pool.clone()),
        "reviews.only@example.org",
        "reviews",
    )
    .await;
    let sink = SmtpSink::start(&[]);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().to_str().expect("utf-8");
    let (code, text) = run(&url, &sink, &["send", ISSUE, "--dry-run", "--out", out]);
    assert_eq!(code, 0, "{text}");
    let mut files: Vec<String> = std::fs::read_dir(out_dir.path())
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "00001-reader000@example.org.eml",
            "00002-reader001@example.org.eml",
            "00003-reader002@example.org.eml"
        ]
    );
    let campaigns = campaigns(&pool).await;
    assert_eq!(campaigns, 0, "no ledger for a dry run");
    assert!(sink.recipients().is_empty(), "nothing went out");
}

#[sqlx::test]
async fn test_sends_go_only_to_the_given_addresses_outside_the_ledger(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 3).await;
    let sink = SmtpSink::start(&[]);
    let (code, text) = run(
        &url,
        &sink,
        &[
            "send",
            ISSUE,
            "--test",
            "editor@example.org",
            "reader001@example.org",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let mut got = sink.recipients();
    got.sort();
    assert_eq!(got, ["editor@example.org", "reader001@example.org"]);
    let campaigns = campaigns(&pool).await;
    assert_eq!(campaigns, 0);
}

#[sqlx::test]
async fn cancel_ends_a_campaign_for_good(pool_options: PgPoolOptions, options: PgConnectOptions) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 2).await;
    let sink = SmtpSink::start(&[]);
    let (code, out) = run(
        &url,
        &sink,
        &["send", ISSUE, "--dry-run", "--out", "/tmp/lscp-unused"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&url, &sink, &["cancel", ISSUE]);
    assert_eq!(code, 1, "no campaign yet: {out}");
    assert!(out.contains("no campaign for 2026-02"), "{out}");

    let (code, _) = run(&url, &sink, &["send", ISSUE, "--rate", "0"]);
    assert_eq!(code, 0);
    let (code, out) = run(&url, &sink, &["cancel", ISSUE]);
    assert_eq!(code, 1, "a finished campaign cannot be cancelled: {out}");
}

/// Runs `lscp-mail cancel` or `pause` on a send of 200 in progress (2 connections, batches of
/// 20, throttled), then checks that at most one more message per connection reached the server
/// after the command returned.
async fn stop_a_running_send(
    pool: &PgPool,
    url: &str,
    sink: &SmtpSink,
    command: &str,
) -> (i32, String, String, usize) {
    let running = start_send(url, sink, "10/s", "2", "20");
    wait_until_sent(pool, 10).await;
    let (code, said) = run(url, sink, &[command, ISSUE]);
    assert_eq!(code, 0, "{said}");
    let at_the_server_then = sink.recipients().len();
    let (code, out) = finish(running);
    let after = sink.recipients().len();
    assert!(
        after <= at_the_server_then + 2,
        "{} more message(s) after `{command}` returned ({at_the_server_then} then, {after} now); at most one per connection may go",
        after - at_the_server_then
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'sending'")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(held, 0, "the rest of the claims went back at once");
    assert!(
        after < 150,
        "the send was stopped well before its end ({after} sent)"
    );
    (code, out, said, after)
}

#[sqlx::test]
async fn cancel_stops_a_running_send_within_the_message_in_hand(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 200).await;
    let sink = SmtpSink::start(&[]);
    let (code, out, said, delivered) = stop_a_running_send(&pool, &url, &sink, "cancel").await;
    assert_eq!(code, 1, "a cancelled send exits 1: {out}");
    assert!(out.contains("cancelled"), "{out}");

    // "N sent before, M will not be sent": true but for the messages in hand.
    let number_before = |what: &str| -> usize {
        let words: Vec<&str> = said
            .split([' ', ',', ';'])
            .filter(|w| !w.is_empty())
            .collect();
        let at = words
            .windows(2)
            .position(|w| w[1] == what)
            .unwrap_or_else(|| panic!("no \"{what}\" in: {said}"));
        words[at].parse().expect("a number")
    };
    let sent_before = number_before("sent");
    let will_not = number_before("will");
    assert!(
        delivered <= sent_before + 2,
        "{said}; {delivered} delivered"
    );
    assert!(
        200 - delivered >= will_not - 2,
        "{said}; {delivered} delivered"
    );
    assert_eq!(sent(&pool).await as usize, delivered, "sent means accepted");
}

#[sqlx::test]
async fn pause_stops_a_running_send_within_the_message_in_hand_and_send_resumes(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 200).await;
    let sink = SmtpSink::start(&[]);
    let (code, out, _, _) = stop_a_running_send(&pool, &url, &sink, "pause").await;
    assert_eq!(code, 75, "a paused send exits 75: {out}");
    assert!(
        out.contains("paused") && out.contains("again to resume"),
        "{out}"
    );

    resume_to_the_end(&url, &sink, 200);
}

#[sqlx::test]
async fn a_sender_killed_mid_send_is_resumed_at_once_with_the_default_lease(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 40).await;
    let sink = SmtpSink::start(&[]);
    // The dead sender's claims carry a ten-minute lease; PostgreSQL knows at once it is gone.
    kill_and_resume(&pool, &url, &sink, SLOW_KILL, true, Duration::from_secs(20)).await;
}

#[sqlx::test]
async fn status_lists_live_senders_and_whose_claims_hold_the_end(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 30).await;
    let sink = SmtpSink::start(&[]);
    // One connection claiming everything at once, at 2/s: its claims hold the end.
    let running = start_send(&url, &sink, "2/s", "1", "50");
    wait_until_sent(&pool, 2).await;
    let (code, status) = run(&url, &sink, &["status", ISSUE]);
    assert_eq!(code, 0, "{status}");
    let me = format!(":{} sending 2026-02", running.id());
    assert!(status.contains(&me), "the live sender is listed: {status}");
    assert!(status.contains("rate 2.0/s"), "{status}");
    assert!(
        status.contains("claim(s) of sender") && status.contains("lease ends"),
        "{status}"
    );
    assert!(
        status.contains("estimate  finish") && status.contains("2.0/s"),
        "the estimate follows the running sender's rate: {status}"
    );
    let (code, _) = run(&url, &sink, &["cancel", ISSUE]);
    assert_eq!(code, 0);
    let (code, out) = finish(running);
    assert_eq!(code, 1, "{out}");
    let (_, status) = run(&url, &sink, &["status", ISSUE]);
    assert!(status.contains("senders   none running"), "{status}");
}

#[sqlx::test]
async fn two_senders_sharing_a_rate_never_exceed_rate_times_window_plus_burst(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    readers(&pool, 150).await;
    let sink = SmtpSink::start(&[]);
    let started = Instant::now();
    let senders = [
        start_send(&url, &sink, "10/s", "2", "5"),
        start_send(&url, &sink, "10/s", "2", "5"),
    ];
    tokio::time::sleep(Duration::from_secs(6)).await;
    for s in &senders {
        let term = Command::new("kill")
            .args(["-TERM", &s.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(term.success());
    }
    for s in senders {
        let (code, out) = finish(s);
        assert_eq!(code, 75, "interrupted, not finished: {out}");
    }
    let window = started.elapsed().as_secs_f64();

    // Each alone would send 10/s; together they share 10/s (and the burst, 1 by default).
    // The window runs from before the first started to after the last stopped, so it can only
    // be longer than the senders' own: an upper bound that a busy machine cannot break.
    let got = sink.recipients().len();
    assert!(
        got as f64 <= 10.0 * window + 1.0,
        "{got} messages in {window:.1} s at a shared 10/s"
    );
    assert!(
        got >= 15,
        "both sent, at the shared pace: {got} in {window:.1} s"
    );
    assert_eq!(sent(&pool).await as usize, got, "the ledger agrees");
}
