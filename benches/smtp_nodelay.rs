//! The Nagle stall in lettre 0.11.23, and that `mail::smtp::Connection` does not have it.
//!
//! Sends the same message `SMTP_BENCH_COUNT` times (default 300) over one SMTP connection to the
//! server at `SMTP_BENCH_ADDR` (host:port, such as a local smtp-sink), three ways:
//!
//! - `lettre-transport`: stock `AsyncSmtpTransport::builder_dangerous`, the way lettre's
//!   documentation sends mail (a pool of one connection, reused);
//! - `lettre-connection-nagle`: lettre's `AsyncSmtpConnection` over a TCP stream we open, with
//!   Nagle's algorithm left on: the same code as ours but for `TCP_NODELAY`, so the difference
//!   is that flag alone;
//! - `lscp-mail-connection`: `lscp_mail::mail::smtp::Connection`, what `send` uses.
//!
//! Each is run `SMTP_BENCH_REPEATS` times (default 3), interleaved; one line per run and a
//! median per way, in messages per second. `bench/send.sh` starts the smtp-sink, picks the
//! message (one of the real personalised messages) and runs this.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use lscp_mail::mail::smtp::{Connection, SmtpTarget};
use secrecy::SecretString;

#[derive(Clone, Copy)]
enum Way {
    LettreTransport,
    LettreConnectionNagle,
    LscpMailConnection,
}

impl Way {
    const ALL: [Way; 3] = [
        Way::LettreTransport,
        Way::LettreConnectionNagle,
        Way::LscpMailConnection,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::LettreTransport => "lettre-transport",
            Way::LettreConnectionNagle => "lettre-connection-nagle",
            Way::LscpMailConnection => "lscp-mail-connection",
        }
    }
}

struct Setup {
    host: String,
    port: u16,
    envelope: Envelope,
    message: Vec<u8>,
    count: usize,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn setup() -> anyhow::Result<Setup> {
    let addr = std::env::var("SMTP_BENCH_ADDR").map_err(|_| {
        anyhow::anyhow!("set SMTP_BENCH_ADDR=127.0.0.1:PORT (an SMTP server); bench/send.sh does")
    })?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("SMTP_BENCH_ADDR {addr} is not host:port"))?;
    let message = match std::env::var("SMTP_BENCH_MESSAGE") {
        Ok(path) => std::fs::read(&path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?,
        Err(_) => anyhow::bail!("set SMTP_BENCH_MESSAGE to a .eml file; bench/send.sh does"),
    };
    let envelope = Envelope::new(
        Some("newsletter@example.org".parse()?),
        vec!["reader@example.org".parse()?],
    )?;
    Ok(Setup {
        host: host.to_string(),
        port: port.parse()?,
        envelope,
        message,
        count: env_or("SMTP_BENCH_COUNT", 300),
    })
}

/// Messages per second for `count` messages over one connection, set-up excluded.
async fn run(way: Way, s: &Setup) -> anyhow::Result<f64> {
    let hello = ClientId::Domain("bench.example.org".into());
    let elapsed = match way {
        Way::LettreTransport => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                .port(s.port)
                .pool_config(PoolConfig::new().max_size(1))
                .build();
            // The first message opens the pooled connection; time the rest over it.
            transport.send_raw(&s.envelope, &s.message).await?;
            let start = Instant::now();
            for _ in 1..s.count {
                transport.send_raw(&s.envelope, &s.message).await?;
            }
            start.elapsed()
        }
        Way::LettreConnectionNagle => {
            let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port)).await?;
            tcp.set_nodelay(false)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await?;
            conn.send(&s.envelope, &s.message).await?;
            let start = Instant::now();
            for _ in 1..s.count {
                conn.send(&s.envelope, &s.message).await?;
            }
            let elapsed = start.elapsed();
            conn.quit().await?;
            elapsed
        }
        Way::LscpMailConnection => {
            let url = SecretString::from(format!("smtp://{}:{}", s.host, s.port));
            let target = SmtpTarget::parse(&url)?;
            let mut conn = Connection::open(&target, "bench.example.org", Duration::from_secs(30))
                .await
                .map_err(|f| anyhow::anyhow!("{f}"))?;
            ours(&mut conn, s).await?;
            let start = Instant::now();
            for _ in 1..s.count {
                ours(&mut conn, s).await?;
            }
            let elapsed = start.elapsed();
            conn.quit().await;
            elapsed
        }
    };
    Ok((s.count - 1) as f64 / elapsed.as_secs_f64())
}

async fn ours(conn: &mut Connection, s: &Setup) -> anyhow::Result<()> {
    conn.send(&s.envelope, &s.message)
        .await
        .map(drop)
        .map_err(|f| anyhow::anyhow!("{f}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there are no other arguments.
    let s = setup()?;
    let repeats = env_or("SMTP_BENCH_REPEATS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "one connection, {} messages of {} bytes each to {}:{}",
        s.count,
        s.message.len(),
        s.host,
        s.port
    );
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    for repeat in 1..=repeats {
        for (i, way) in Way::ALL.into_iter().enumerate() {
            let rate = rt.block_on(run(way, &s))?;
            println!(
                "run {repeat} {:<24} {rate:8.1} msg/s {:7.2} ms/msg",
                way.name(),
                1000.0 / rate
            );
            results[i].push(rate);
        }
    }
    for (way, rates) in Way::ALL.into_iter().zip(results) {
        let m = median(rates);
        println!(
            "median {:<24} {m:8.1} msg/s {:7.2} ms/msg",
            way.name(),
            1000.0 / m
        );
    }
    Ok(())
}
