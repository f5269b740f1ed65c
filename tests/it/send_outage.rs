//! The database going away in the middle of a send: the workers wait for it, nothing is
//! recorded that did not happen, and no reader gets the issue twice.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::sending::{send_with, shipped_issue};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::add;
use lscp_mail::send::campaign::{Outcome, SendOptions};
use lscp_mail::send::throttle::Rate;
use lscp_mail::store::Store;
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
