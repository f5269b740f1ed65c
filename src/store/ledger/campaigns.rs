//! Campaigns: their status, reading and creating them, freezing their audience into the
//! deliveries, and moving them between `sending`, `paused`, `finished` and `cancelled`.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::CampaignId;
use crate::content::IssueId;

/// Where a campaign stands; stored as lowercase text (`sending`, `paused`, `finished`,
/// `cancelled`) and read back by sqlx, which rejects any other value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum CampaignStatus {
    Sending,
    Paused,
    Finished,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: CampaignId,
    pub issue_id: String,
    pub subject: String,
    pub content_hash: String,
    pub topics: Vec<String>,
    pub status: CampaignStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn campaign(
    db: impl PgExecutor<'_>,
    issue: IssueId,
) -> Result<Option<Campaign>, sqlx::Error> {
    sqlx::query_as!(
        Campaign,
        r#"SELECT id AS "id: CampaignId", issue_id, subject, content_hash, topics,
                  status AS "status: CampaignStatus", created_at, finished_at
           FROM campaigns WHERE issue_id = $1"#,
        issue.to_string()
    )
    .fetch_optional(db)
    .await
}

pub async fn campaign_status(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<Option<CampaignStatus>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT status AS "status: CampaignStatus" FROM campaigns WHERE id = $1"#,
        campaign_id.0
    )
    .fetch_optional(db)
    .await
}

/// Creates the campaign unless it exists; returns it and whether it is new.
pub async fn create_campaign(
    db: impl PgExecutor<'_>,
    issue: IssueId,
    subject: &str,
    content_hash: &str,
    topics: &[String],
) -> Result<Option<CampaignId>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO campaigns (issue_id, subject, content_hash, topics)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (issue_id) DO NOTHING
           RETURNING id"#,
        issue.to_string(),
        subject,
        content_hash,
        topics
    )
    .fetch_optional(db)
    .await?;
    Ok(id.map(CampaignId))
}

/// Freezes the audience in one statement: every active subscriber, `queued` when their topics
/// meet the issue's and `skipped` when they do not. Someone already in the ledger is left as
/// they are, so running it again only adds who joined since.
///
/// The readers' topics in the issue are gathered in one pass over `subscriber_topics` and
/// joined to the subscribers, rather than looked up for each subscriber: a third of the time
/// for 10,000 readers, and part of what `send` does before its first message (BENCHMARKS.md).
pub async fn enqueue(db: impl PgExecutor<'_>, campaign_id: CampaignId) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"INSERT INTO deliveries (campaign_id, subscriber_id, topics, status, last_reply)
           SELECT c.id, s.id, coalesce(t.topics, '{}'),
                  CASE WHEN t.topics IS NOT NULL THEN 'queued' ELSE 'skipped' END,
                  CASE WHEN t.topics IS NOT NULL THEN NULL
                       ELSE 'none of the reader''s topics is in this issue' END
           FROM campaigns c
           CROSS JOIN subscribers s
           LEFT JOIN (
               SELECT st.subscriber_id, array_agg(st.topic ORDER BY st.topic) AS topics
               FROM subscriber_topics st
               JOIN campaigns ic ON st.topic = ANY(ic.topics)
               WHERE ic.id = $1
               GROUP BY st.subscriber_id
           ) t ON t.subscriber_id = s.id
           WHERE c.id = $1 AND s.status = 'active'
           ON CONFLICT (campaign_id, subscriber_id) DO NOTHING"#,
        campaign_id.0
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

pub async fn set_status(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    status: CampaignStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"UPDATE campaigns
           SET status = $2, updated_at = now(),
               finished_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN now() END
           WHERE id = $1"#,
        campaign_id.0,
        status.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the campaign finished when nothing is left to send.
pub async fn finish_if_done(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE campaigns SET status = 'finished', finished_at = now(), updated_at = now()
           WHERE id = $1 AND status = 'sending'
             AND NOT EXISTS (SELECT 1 FROM deliveries
                             WHERE campaign_id = $1 AND status IN ('queued', 'sending'))"#,
        campaign_id.0
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts every failed delivery back in the queue with a fresh count of attempts.
pub async fn retry_failed(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE deliveries d
           SET status = 'queued', attempts = 0, next_attempt_at = now(), updated_at = now()
           FROM subscribers s
           WHERE d.campaign_id = $1 AND d.status = 'failed'
             AND s.id = d.subscriber_id AND s.status = 'active'"#,
        campaign_id.0
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
