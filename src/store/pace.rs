//! A campaign's pace, shared by every `send` process working it: one token bucket row per
//! campaign (`campaign_pace`), kept as the time the next slot is due (GCRA). A sender books
//! each message's slot in one statement, by the database's clock, so machines whose clocks
//! disagree still share one rate, and any window of time holds at most `rate * window + burst`
//! slots, whoever booked them.
//!
//! The campaign's rate is the lowest `--rate` among its live senders (and the one asking), its
//! burst the smallest of their bursts: a second machine started with a lower rate slows every
//! sender, and a sender with no limit lifts nobody's.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::ledger::CampaignId;

/// A sender asking for the next message's slot.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    pub campaign_id: CampaignId,
    /// The asking sender's own rate, messages a second (`None`: no limit of its own).
    pub rate_per_second: Option<f64>,
    /// The asking sender's own burst.
    pub burst: u32,
    /// The time of the draw: `None` for the database's clock (always, but in tests of the
    /// bucket's arithmetic).
    pub at: Option<DateTime<Utc>>,
}

/// The slot booked for one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// The campaign's rate now, messages a second; `None` when no live sender has a limit.
    pub rate_per_second: Option<f64>,
    /// Seconds from the draw until the message may go (0: at once).
    pub wait_seconds: f64,
}

/// Creates the campaign's bucket, full, unless it exists.
pub async fn open(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO campaign_pace (campaign_id, next_at)
           VALUES ($1, COALESCE($2, clock_timestamp()) - interval '1 day')
           ON CONFLICT (campaign_id) DO NOTHING"#,
        campaign_id.get(),
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Books the next message's slot: at once while the bucket holds tokens, else one period after
/// the last slot booked by anyone. One statement: the row's lock orders concurrent draws from
/// any machine, and a slot booked is never booked twice, so no token is lost to a round trip's
/// latency. `None` when the campaign has no bucket (see [`open`]).
pub async fn draw(db: impl PgExecutor<'_>, d: &Draw) -> Result<Option<Slot>, sqlx::Error> {
    let r = sqlx::query!(
        r#"WITH pace AS (
               SELECT LEAST($2::float8, (
                          SELECT min(s.rate_per_second) FROM senders s
                          JOIN live_senders l ON l.id = s.id WHERE s.campaign_id = $1)) AS rate,
                      LEAST($3::float8, (
                          SELECT min(s.burst) FROM senders s JOIN live_senders l ON l.id = s.id
                          WHERE s.campaign_id = $1 AND s.rate_per_second IS NOT NULL)) AS burst
           ),
           booked AS (
               -- A full bucket lets `burst` go at once: the slot may be up to (burst - 1)
               -- periods before now, never earlier.
               SELECT b.campaign_id, p.rate, COALESCE($4, clock_timestamp()) AS now,
                      GREATEST(b.next_at, COALESCE($4, clock_timestamp())
                               - make_interval(secs => (p.burst - 1) / p.rate)) AS slot
               FROM campaign_pace b, pace p
               WHERE b.campaign_id = $1
               FOR UPDATE OF b
           )
           UPDATE campaign_pace b
           SET next_at = CASE WHEN g.rate IS NULL THEN b.next_at
                              ELSE g.slot + make_interval(secs => 1 / g.rate) END
           FROM booked g
           WHERE b.campaign_id = g.campaign_id
           RETURNING g.rate AS "rate?",
                     CASE WHEN g.rate IS NULL THEN 0
                          ELSE GREATEST(0, extract(epoch FROM g.slot - g.now)::float8)
                     END AS "wait!: f64""#,
        d.campaign_id.get(),
        d.rate_per_second,
        f64::from(d.burst.max(1)),
        d.at
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| Slot {
        rate_per_second: r.rate,
        wait_seconds: r.wait.max(0.0),
    }))
}

impl super::Store {
    /// See [`open`]: by the database's clock.
    pub async fn open_pace(&self, campaign_id: CampaignId) -> Result<(), sqlx::Error> {
        open(&self.pool, campaign_id, None).await
    }

    /// See [`draw`].
    pub async fn draw_pace(&self, d: &Draw) -> Result<Option<Slot>, sqlx::Error> {
        draw(&self.pool, d).await
    }
}
