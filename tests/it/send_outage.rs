//! The database going away in the middle of a send: the workers wait for it, nothing is
//! recorded that did not happen, and no reader gets the issue twice. And the database refusing
//! a statement: the run ends with the error rather than wait for claims nobody works, and the
//! renewal of leases never waits on a row a worker's statement holds (the two would deadlock).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::sending::{fast_options, send_with, shipped_issue, try_send_to};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::add;
use lscp_mail::config::Config;
use lscp_mail::mail::smtp::SmtpTarget;
use lscp_mail::send::campaign::{self, Outcome, SendOptions};
use lscp_mail::send::throttle::Rate;
use lscp_mail::store::Store;
use lscp_mail::store::ledger::{self, Claimant, DeliveryOutcome, Ending};
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// A TCP proxy to PostgreSQL that the test can cut (every connection dropped and the port
/// closed, so new connections are refused) and restore on the same port: a database server
/// going away and coming back.
struct Proxy {
    port: u16,
    upstream: (String, u16),
    links: Arc<Mutex<JoinSet<()>>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: (String, u16)) -> Self {
        let port = common::free_port();
        let mut proxy = Self {
            port,
            upstream,
            links: Arc::new(Mutex::new(JoinSet::new())),
            listener: None,
        };
        proxy.restore();
        proxy
    }

    async fn cut(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
            let _ = l.await;
        }
        self.links.lock().await.abort_all();
    }

    fn restore(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(([127, 0, 0, 1], self.port).into())
            .expect("bind the proxy port");
        let listener = socket.listen(64).expect("listen");
        let (upstream, links) = (self.upstream.clone(), self.links.clone());
        self.listener = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.lock().await.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }
}

#[sqlx::test]
async fn a_database_outage_mid_send_pauses_the_workers_and_loses_and_doubles_nothing(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let direct = pool_options
        .clone()
        .connect_with(options.clone())
        .await
        .expect("connect");
    let store = Store::from_pool(direct.clone());
    for i in 0..40 {
        add(&store, &format!("reader{i:02}@example.org"), "training").await;
    }
    let mut proxy = Proxy::start((options.get_host().to_string(), options.get_port())).await;
    let through_proxy = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.clone().port(proxy.port))
        .await
        .expect("connect through the proxy");
    let sink = SmtpSink::start(&[]);
    let port = sink.port;
    let send_options = SendOptions {
        rate: "40/s".parse::<Rate>().expect("rate"),
        concurrency: 2,
        batch: 2,
        // A claim whose commit landed but whose reply was lost waits out its lease.
        smtp_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(6),
        ..common::sending::fast_options()
    };
    let sending = tokio::spawn(async move {
        send_with(
            &Store::from_pool(through_proxy),
            &shipped_issue("2026-02"),
            port,
            &send_options,
        )
        .await
    });

    wait_for_sent(&direct, 8).await;
    proxy.cut().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = sent(&direct).await;
    proxy.restore();
    let report = tokio::time::timeout(Duration::from_secs(120), sending)
        .await
        .expect("the send finishes once the database is back")
        .expect("send task");

    assert_eq!(report.outcome, Outcome::Finished);
    assert!(during < 40, "the outage came mid-send ({during} sent)");
    let mut got = sink.recipients();
    got.sort();
    let all = got.len();
    got.dedup();
    assert_eq!((all, got.len()), (40, 40), "everyone once, nobody twice");
    assert_eq!(
        sent(&direct).await,
        40,
        "every accepted message is recorded as sent"
    );
}

async fn sent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn wait_for_sent(pool: &PgPool, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sent(pool).await < n {
        assert!(std::time::Instant::now() < deadline, "fewer than {n} sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_sender_cut_off_from_the_database_sends_nothing_more_of_what_another_took_over(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let direct = pool_options
        .clone()
        .connect_with(options.clone())
        .await
        .expect("connect");
    let store = Store::from_pool(direct.clone());
    for i in 0..60 {
        add(&store, &format!("reader{i:02}@example.org"), "training").await;
    }
    let mut proxy = Proxy::start((options.get_host().to_string(), options.get_port())).await;
    let through_proxy = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.clone().port(proxy.port))
        .await
        .expect("connect through the proxy");
    let sink = SmtpSink::start(&[]);
    let port = sink.port;
    // Big batches and the default ten-minute lease: without liveness, the other sender would
    // wait ten minutes; without care, the cut-off one would send the rest of its batches again.
    let send_options = SendOptions {
        rate: "20/s".parse::<Rate>().expect("rate"),
        concurrency: 2,
        batch: 10,
        smtp_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(600),
        ..common::sending::fast_options()
    };
    let cut_off_options = send_options.clone();
    let cut_off = tokio::spawn(async move {
        send_with(
            &Store::from_pool(through_proxy),
            &shipped_issue("2026-02"),
            port,
            &cut_off_options,
        )
        .await
    });
    wait_for_sent(&direct, 8).await;
    proxy.cut().await;

    // Another sender, still connected, takes over the cut-off one's claims at once.
    let other = tokio::time::timeout(
        Duration::from_secs(60),
        send_with(&store, &shipped_issue("2026-02"), port, &send_options),
    )
    .await
    .expect("the other sender does not wait for the lease");
    assert_eq!(other.outcome, Outcome::Finished);
    assert_eq!(sent(&direct).await, 60);

    proxy.restore();
    let report = tokio::time::timeout(Duration::from_secs(120), cut_off)
        .await
        .expect("the cut-off sender ends once the database is back")
        .expect("send task");
    assert_eq!(report.outcome, Outcome::Finished);

    let got = sink.recipients();
    let mut once = got.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), 60, "everyone got the issue");
    assert!(
        got.len() - once.len() <= 2,
        "only the messages in hand at the cut (one per connection) may go twice; {} did",
        got.len() - once.len()
    );
    assert_eq!(sent(&direct).await, 60);
}

/// The renewal locks every claim of the sender at once, in whatever order it finds them; a
/// group of outcomes locks its claims in the order they came. Were the renewal to wait for a
/// row a record holds while the record waits for one the renewal holds, PostgreSQL would
/// break the deadlock by failing one of them: it did, with the record, 186 messages before
/// the end of a 100,000-reader run.
#[sqlx::test]
async fn renewing_leases_passes_over_a_claim_being_recorded_instead_of_waiting_for_it(
    pool: PgPool,
) {
    let store = Store::from_pool(pool.clone());
    for i in 0..6 {
        add(&store, &format!("reader{i:02}@example.org"), "training").await;
    }
    let c = campaign::prepare(&store, &shipped_issue("2026-02"), &fast_options())
        .await
        .expect("campaign");
    let me = Claimant {
        worker: "mailhost:1:0",
        sender: 7,
    };
    let claimed = ledger::claim(&pool, c.id, me, 6, 30.0)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 6);

    // The first outcome's record, its transaction not yet committed, holds that claim's row.
    let mut recording = pool.begin().await.expect("begin");
    let sent = DeliveryOutcome {
        id: claimed[0].id,
        worker: me.worker.to_string(),
        result: Ending::Sent {
            reply: "250 2.0.0 Ok: queued".into(),
            message_id: "<1@example.org>".into(),
        },
        at: std::time::Instant::now(),
    };
    let recorded = ledger::record(&mut *recording, &[sent])
        .await
        .expect("record");
    assert_eq!(recorded, [claimed[0].id]);

    let renewed = tokio::time::timeout(
        Duration::from_secs(5),
        ledger::renew_leases(&pool, c.id, me.sender, 600.0),
    )
    .await
    .expect("the renewal does not wait for the row being recorded")
    .expect("renew");
    assert_eq!(renewed, 5, "every other claim is renewed");
    recording.commit().await.expect("commit");

    let leases: Vec<(String, bool)> = sqlx::query_as(
        "SELECT status, lease_until > now() + interval '500 seconds'
           FROM deliveries WHERE status = 'sending' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("leases");
    assert_eq!(leases, vec![("sending".to_string(), true); 5]);
}

/// A worker whose outcomes the ledger refuses ends with the error. Its claims are in no one
/// else's hands (a sender never takes its own workers' claims), so the others must not wait
/// for them: they stop, and the run reports the error instead of waiting for ever.
#[sqlx::test]
async fn a_worker_failing_to_record_ends_the_run_with_the_error_instead_of_leaving_it_waiting(
    pool: PgPool,
) {
    let store = Store::from_pool(pool.clone());
    for i in 0..20 {
        add(&store, &format!("reader{i:02}@example.org"), "training").await;
    }
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_reader05() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.status = 'sent' AND NEW.subscriber_id =
                    (SELECT id FROM subscribers WHERE email = 'reader05@example.org') THEN
                 RAISE EXCEPTION 'the ledger refuses reader05';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_reader05 BEFORE UPDATE ON deliveries
             FOR EACH ROW EXECUTE FUNCTION refuse_reader05();",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    let sink = SmtpSink::start(&[]);
    let target = SmtpTarget::parse(&SecretString::from(format!(
        "smtp://127.0.0.1:{}",
        sink.port
    )))
    .expect("url");
    // One batch holds every reader: whichever worker claims it fails, and the other has
    // nothing of its own left to send.
    let options = SendOptions {
        concurrency: 2,
        batch: 20,
        ..fast_options()
    };
    let issue = shipped_issue("2026-02");
    let config = Config::default();

    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        try_send_to(&store, &issue, &target, &options, &config),
    )
    .await
    .expect("the run ends once a worker failed");
    let error = format!(
        "{:#}",
        anyhow::Error::from(ended.expect_err("the run fails"))
    );
    assert!(
        error.contains("cannot record the outcome") && error.contains("refuses reader05"),
        "{error}"
    );

    // The next run, with the ledger accepting again, takes the failed run's claims at once.
    sqlx::raw_sql("DROP TRIGGER refuse_reader05 ON deliveries")
        .execute(&pool)
        .await
        .expect("drop trigger");
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        try_send_to(&store, &issue, &target, &options, &config),
    )
    .await
    .expect("the next run does not wait for the failed run's leases")
    .expect("the next run sends");
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(sent(&pool).await, 20);
}
