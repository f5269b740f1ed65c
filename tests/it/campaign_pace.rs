//! The campaign's pace in PostgreSQL: one token bucket that every sender draws from, refilled
//! by the database's clock. Tested here with a fixed clock, so the arithmetic is exact and no
//! test depends on how busy the machine is.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lscp_mail::content::IssueId;
use lscp_mail::store::ledger::{self, CampaignId, SenderInfo};
use lscp_mail::store::pace::{self, Draw, Slot};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::common::store::database;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("time")
}

async fn campaign(pool: &PgPool) -> CampaignId {
    let issue = IssueId::parse("2026-02").expect("issue id");
    ledger::create_campaign(pool, issue, "Subject", &"0".repeat(64), &[])
        .await
        .expect("create")
        .expect("new campaign")
}

/// A sender that asks for a slot at `at` (seconds after t0) with its own rate and burst.
fn ask(campaign_id: CampaignId, rate: Option<f64>, burst: u32, at: f64) -> Draw {
    Draw {
        campaign_id,
        rate_per_second: rate,
        burst,
        at: Some(t0() + Duration::microseconds((at * 1e6).round() as i64)),
    }
}

async fn draw(pool: &PgPool, d: Draw) -> Slot {
    pace::draw(pool, &d).await.expect("draw").expect("bucket")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// A live sender of `campaign_id` at `rate` with `burst`, registered (and its lock held) on a
/// connection of its own, as `send` does.
async fn live_sender(
    options: &PgConnectOptions,
    campaign_id: CampaignId,
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
async fn a_new_bucket_lets_the_burst_go_at_once_then_one_slot_per_period(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    let id = campaign(&pool).await;
    pace::open(&pool, id, Some(t0())).await.expect("open");

    for n in 0..5 {
        let s = draw(&pool, ask(id, Some(20.0), 5, 0.0)).await;
        assert_eq!(s.rate_per_second, Some(20.0));
        assert!(
            close(s.wait_seconds, 0.0),
            "message {n} of the burst: {s:?}"
        );
    }
    // Then one every 50 ms at 20/s, booked in turn.
    assert!(close(
        draw(&pool, ask(id, Some(20.0), 5, 0.0)).await.wait_seconds,
        0.05
    ));
    assert!(close(
        draw(&pool, ask(id, Some(20.0), 5, 0.0)).await.wait_seconds,
        0.10
    ));
    assert!(close(
        draw(&pool, ask(id, Some(20.0), 5, 0.12)).await.wait_seconds,
        0.03
    ));

    // A long pause fills the bucket up to the burst only.
    for _ in 0..5 {
        assert!(close(
            draw(&pool, ask(id, Some(20.0), 5, 60.0)).await.wait_seconds,
            0.0
        ));
    }
    assert!(close(
        draw(&pool, ask(id, Some(20.0), 5, 60.0)).await.wait_seconds,
        0.05
    ));
}

#[sqlx::test]
async fn senders_booking_in_turn_never_get_more_than_rate_times_window_plus_burst(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, _) = database(pool_options, options).await;
    let id = campaign(&pool).await;
    let (rate, burst) = (20.0, 3);
    pace::open(&pool, id, Some(t0())).await.expect("open");

    // Two senders of four workers each, as `send --concurrency 4` twice: a worker books a slot,
    // waits for it, takes 30 ms to send, and books the next. Each sender alone would go at
    // 20/s; together they go at 20/s.
    let mut free = [0.0f64; 8];
    let mut got = [0u32; 2];
    loop {
        let (w, at) = free
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("workers");
        if at > 60.0 {
            break;
        }
        let slot = at
            + draw(&pool, ask(id, Some(rate), burst, at))
                .await
                .wait_seconds;
        if slot <= 60.0 {
            got[w / 4] += 1;
        }
        free[w] = slot + 0.03;
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
    pace::open(&pool, id, Some(t0())).await.expect("open");
    let slow = live_sender(&options, id, Some(5.0), 1).await;
    let _unlimited = live_sender(&options, id, None, 1).await;

    // A sender at 20/s asks; the live one at 5/s sets the pace for both.
    let s = draw(&pool, ask(id, Some(20.0), 1, 0.0)).await;
    assert_eq!(s.rate_per_second, Some(5.0));
    assert!(close(s.wait_seconds, 0.0));
    assert!(close(
        draw(&pool, ask(id, Some(20.0), 1, 0.0)).await.wait_seconds,
        0.2
    ));

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
    let s = draw(&pool, ask(id, Some(20.0), 1, 1.0)).await;
    assert_eq!(s.rate_per_second, Some(20.0));

    // A sender without a limit of its own lifts nobody's, and goes unlimited only alone.
    let s = draw(&pool, ask(id, None, 1, 2.0)).await;
    assert_eq!(s.rate_per_second, None, "no live sender has a limit");
    assert!(close(s.wait_seconds, 0.0));
}
