//! The campaign's pace in PostgreSQL: one token bucket that every sender draws from, refilled
//! by the database's clock. Tested here with a fixed clock, so the arithmetic is exact and no
//! test depends on how busy the machine is.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lscp_mail::content::IssueId;
use lscp_mail::send::ledger::{self, SenderInfo};
use lscp_mail::store::pace::{self, Draw, Grant};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::store_support::database;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("time")
}

async fn campaign(pool: &PgPool) -> i64 {
    let issue = IssueId::parse("2026-02").expect("issue id");
    ledger::create_campaign(pool, issue, "Subject", &"0".repeat(64), &[])
        .await
        .expect("create")
        .expect("new campaign")
}

/// A sender that asks for `want` tokens at `at` (seconds after t0) with its own rate and burst.
fn ask(campaign_id: i64, want: u32, rate: Option<f64>, burst: u32, at: f64) -> Draw {
    Draw {
        campaign_id,
        want,
        rate_per_second: rate,
        burst,
        at: Some(t0() + Duration::milliseconds((at * 1000.0) as i64)),
    }
}

async fn draw(pool: &PgPool, d: Draw) -> Grant {
    pace::draw(pool, &d).await.expect("draw").expect("bucket")
}

/// A live sender of `campaign_id` at `rate` with `burst`, registered (and its lock held) on a
/// connection of its own, as `send` does.
async fn live_sender(
    options: &PgConnectOptions,
    campaign_id: i64,
    rate: Option<f64>,
    burst: i32,
) -> PgConnection {
    let mut conn = PgConnection::connect_with(options).await.expect("connect");
    ledger::register_sender(
        &mut conn,
        &SenderInfo {
            campaign_id,
            host: "test".into(),
            pid: 1,
            rate_per_second: rate,
            burst,
            concurrency: 1,
            daily_cap: None,
        },
    )
    .await
    .expect("register");
    conn
}

#[sqlx::test]
async fn a_new_bucket_grants_the_burst_at_once_then_one_token_per_period(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    let id = campaign(&pool).await;
    pace::open(&pool, id, 5, Some(t0())).await.expect("open");

    let first = draw(&pool, ask(id, 10, Some(20.0), 5, 0.0)).await;
    assert_eq!(first.tokens, 5, "the burst, and no more");
    assert_eq!(first.rate_per_second, Some(20.0));

    let empty = draw(&pool, ask(id, 1, Some(20.0), 5, 0.0)).await;
    assert_eq!(empty.tokens, 0);
    assert!(
        (empty.wait_seconds - 0.05).abs() < 1e-9,
        "one token every 50 ms at 20/s: {empty:?}"
    );

    // 120 ms later: two whole tokens (2.4), and the fraction is kept for the next draw:
    // 0.4 + 40 ms' worth makes one more.
    assert_eq!(
        draw(&pool, ask(id, 10, Some(20.0), 5, 0.12)).await.tokens,
        2
    );
    assert_eq!(
        draw(&pool, ask(id, 10, Some(20.0), 5, 0.13)).await.tokens,
        0
    );
    assert_eq!(
        draw(&pool, ask(id, 10, Some(20.0), 5, 0.17)).await.tokens,
        1
    );

    // A long pause refills up to the burst only.
    assert_eq!(
        draw(&pool, ask(id, 100, Some(20.0), 5, 60.0)).await.tokens,
        5
    );
}

#[sqlx::test]
async fn senders_drawing_in_turn_never_get_more_than_rate_times_window_plus_burst(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    let id = campaign(&pool).await;
    let (rate, burst) = (20.0, 3);
    pace::open(&pool, id, burst, Some(t0()))
        .await
        .expect("open");

    // Two senders, each asking for a batch every 7 ms of the database's clock for 60 s: each
    // alone would take 20/s; together they get 20/s between them.
    let mut got = [0u32; 2];
    let mut at = 0.0;
    let mut step = 0;
    while at <= 60.0 {
        let who = step % 2;
        got[who] += draw(&pool, ask(id, 2, Some(rate), burst, at)).await.tokens;
        at += 0.007;
        step += 1;
    }
    let total = got[0] + got[1];
    assert!(
        f64::from(total) <= rate * 60.0 + f64::from(burst),
        "at most rate * window + burst: {got:?}"
    );
    assert!(total >= 1_200, "and the whole rate is used: {got:?}");
    assert!(
        got.iter().all(|g| *g >= 400),
        "each sender gets its share: {got:?}"
    );
}

#[sqlx::test]
async fn the_campaign_goes_at_the_lowest_rate_of_its_live_senders(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options.clone()).await;
    let id = campaign(&pool).await;
    pace::open(&pool, id, 1, Some(t0())).await.expect("open");
    let slow = live_sender(&options, id, Some(5.0), 1).await;
    let _unlimited = live_sender(&options, id, None, 1).await;

    // A sender at 20/s asks; the live one at 5/s sets the pace for both.
    let g = draw(&pool, ask(id, 100, Some(20.0), 1, 0.0)).await;
    assert_eq!((g.tokens, g.rate_per_second), (1, Some(5.0)));
    assert_eq!(
        draw(&pool, ask(id, 100, Some(20.0), 1, 1.0)).await.tokens,
        1
    );

    // Once it is gone (its connection, and so its lock, went), the asker's own rate holds.
    slow.close().await.expect("close");
    for _ in 0..100 {
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM live_senders")
            .fetch_one(&pool)
            .await
            .expect("count");
        if live == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let g = draw(&pool, ask(id, 100, Some(20.0), 1, 1.05)).await;
    assert_eq!(g.rate_per_second, Some(20.0));

    // A sender without a limit of its own lifts nobody's, and goes unlimited only alone.
    let g = draw(&pool, ask(id, 100, None, 1, 2.0)).await;
    assert_eq!(g.rate_per_second, None, "no live sender has a limit");
    assert_eq!(g.tokens, 100);
}
