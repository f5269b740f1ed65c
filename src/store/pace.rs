//! A campaign's pace, shared by every `send` process working it: one token bucket row per
//! campaign (`campaign_pace`). A sender draws a few tokens at a time in one statement; the
//! refill is computed from the row's last refill and the database's clock, so machines whose
//! clocks disagree still share one rate, and any window of time sees at most
//! `rate * window + burst` tokens handed out, whoever asks.
//!
//! The campaign's rate is the lowest `--rate` among its live senders (and the one asking), its
//! burst the smallest of their bursts: a second machine started with a lower rate slows every
//! sender, and a sender with no limit lifts nobody's.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// What a sender asks the bucket for.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    pub campaign_id: i64,
    /// Tokens wanted (the batch); fewer, or none, may be granted.
    pub want: u32,
    /// The asking sender's own rate, messages a second (`None`: no limit of its own).
    pub rate_per_second: Option<f64>,
    /// The asking sender's own burst.
    pub burst: u32,
    /// The time of the draw: `None` for the database's clock (always, but in tests of the
    /// bucket's arithmetic).
    pub at: Option<DateTime<Utc>>,
}

/// What the bucket granted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    pub tokens: u32,
    /// The campaign's rate now, messages a second; `None` when no live sender has a limit.
    pub rate_per_second: Option<f64>,
    /// When nothing was granted: seconds until the next token.
    pub wait_seconds: f64,
}

/// Creates the campaign's bucket, full, unless it exists.
pub async fn open(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    burst: u32,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO campaign_pace (campaign_id, tokens, refilled_at)
           VALUES ($1, $2, COALESCE($3, clock_timestamp()))
           ON CONFLICT (campaign_id) DO NOTHING"#,
        campaign_id,
        f64::from(burst),
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes up to `want` tokens from the campaign's bucket after refilling it for the time since
/// its last refill. One statement: the row's lock orders concurrent draws from any machine.
/// `None` when the campaign has no bucket (see [`open`]).
pub async fn draw(db: impl PgExecutor<'_>, d: &Draw) -> Result<Option<Grant>, sqlx::Error> {
    let r = sqlx::query!(
        r#"WITH pace AS (
               SELECT LEAST($3::float8, (
                          SELECT min(s.rate_per_second) FROM senders s
                          JOIN live_senders l ON l.id = s.id WHERE s.campaign_id = $1)) AS rate,
                      LEAST($4::float8, (
                          SELECT min(s.burst) FROM senders s JOIN live_senders l ON l.id = s.id
                          WHERE s.campaign_id = $1 AND s.rate_per_second IS NOT NULL)) AS burst
           ),
           bucket AS (
               -- A draw that waited for the row's lock may carry a time before the last
               -- refill: it refills nothing rather than go back in time.
               SELECT b.campaign_id, p.rate, p.burst,
                      GREATEST(b.refilled_at, COALESCE($5, clock_timestamp())) AS at,
                      LEAST(p.burst, b.tokens + COALESCE(p.rate, 0) * GREATEST(0, extract(epoch FROM
                          COALESCE($5, clock_timestamp()) - b.refilled_at)::float8)) AS available
               FROM campaign_pace b, pace p
               WHERE b.campaign_id = $1
               FOR UPDATE OF b
           ),
           granted AS (
               SELECT campaign_id, rate, at, available,
                      CASE WHEN rate IS NULL THEN $2::integer
                           ELSE LEAST($2::integer, floor(available)::integer) END AS n
               FROM bucket
           )
           UPDATE campaign_pace b
           SET tokens = CASE WHEN g.rate IS NULL THEN b.tokens ELSE g.available - g.n END,
               refilled_at = g.at
           FROM granted g
           WHERE b.campaign_id = g.campaign_id
           RETURNING g.n AS "granted!", g.rate AS "rate?",
                     CASE WHEN g.n > 0 OR g.rate IS NULL THEN 0
                          ELSE (1 - g.available) / g.rate END AS "wait!: f64""#,
        d.campaign_id,
        d.want.min(i32::MAX as u32) as i32,
        d.rate_per_second,
        f64::from(d.burst.max(1)),
        d.at
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| Grant {
        tokens: r.granted.max(0) as u32,
        rate_per_second: r.rate,
        wait_seconds: r.wait.max(0.0),
    }))
}
