//! Counts and status queries: deliveries in each status, what the daily cap has used, what is
//! due next, the latest errors and the current rate, for `send` and `status`.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::{CampaignId, DeliveryStatus};

/// How many deliveries there are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl Counts {
    pub fn remaining(&self) -> i64 {
        self.queued + self.sending
    }

    pub fn total(&self) -> i64 {
        self.queued + self.sending + self.sent + self.failed + self.skipped
    }
}

pub async fn counts(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<Counts, sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'queued') AS "queued!",
                  count(*) FILTER (WHERE status = 'sending') AS "sending!",
                  count(*) FILTER (WHERE status = 'sent') AS "sent!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!",
                  count(*) FILTER (WHERE status = 'skipped') AS "skipped!"
           FROM deliveries WHERE campaign_id = $1"#,
        campaign_id.0
    )
    .fetch_one(db)
    .await?;
    Ok(Counts {
        queued: r.queued,
        sending: r.sending,
        sent: r.sent,
        failed: r.failed,
        skipped: r.skipped,
    })
}

/// What the daily cap counts, across every campaign: messages sent since `since` and claims
/// in flight. One statement, so one snapshot: counted in two, a message that went from
/// `sending` to `sent` between them would be in neither, and the cap would let one more by.
pub async fn used_since(db: impl PgExecutor<'_>, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM deliveries
           WHERE sent_at >= $1 OR (status = 'sending' AND lease_until >= now())"#,
        since
    )
    .fetch_one(db)
    .await
}

/// The next time a queued delivery becomes due or a claim runs out; `None` when nothing is
/// queued or in flight.
pub async fn next_due(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT min(least(CASE WHEN status = 'queued' THEN next_attempt_at END,
                            CASE WHEN status = 'sending' THEN lease_until END))
           FROM deliveries WHERE campaign_id = $1 AND status IN ('queued', 'sending')"#,
        campaign_id.0
    )
    .fetch_one(db)
    .await
}

/// The most recent failures and retries, for `status`.
pub async fn last_errors(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    limit: i64,
) -> Result<Vec<(DateTime<Utc>, DeliveryStatus, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT updated_at, status AS "status: DeliveryStatus", last_reply AS "last_reply!"
           FROM deliveries
           WHERE campaign_id = $1 AND last_reply IS NOT NULL
             AND (status = 'failed' OR (status = 'queued' AND attempts > 0))
           ORDER BY updated_at DESC LIMIT $2"#,
        campaign_id.0,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.updated_at, r.status, r.last_reply))
        .collect())
}

/// Sent in the last `seconds`, for the current rate.
pub async fn sent_in_last(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    seconds: f64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM deliveries
           WHERE campaign_id = $1 AND sent_at >= now() - make_interval(secs => $2)"#,
        campaign_id.0,
        seconds
    )
    .fetch_one(db)
    .await
}

/// How many of a campaign's remaining deliveries could go now (due or claimed), and when the
/// first of the others (retries waiting) becomes due.
pub async fn due_now(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'sending' OR next_attempt_at <= now()) AS "due!",
                  min(next_attempt_at) FILTER (WHERE status = 'queued' AND next_attempt_at > now())
                      AS next_retry
           FROM deliveries WHERE campaign_id = $1 AND status IN ('queued', 'sending')"#,
        campaign_id.0
    )
    .fetch_one(db)
    .await?;
    Ok((r.due, r.next_retry))
}
