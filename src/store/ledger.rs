//! The delivery ledger in PostgreSQL: campaigns, one delivery per recipient, and the senders
//! working them. Every statement is short and set-based; no transaction is held across an SMTP
//! conversation. What `send` does with them is in `send::ledger` and `send::campaign`.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::content::IssueId;
use crate::store::{Store, StoreError, SubscriberId, redact_addresses};

/// A campaign's number in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct CampaignId(i64);

impl CampaignId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for CampaignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One delivery's number in the ledger: one recipient of one campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct DeliveryId(i64);

impl DeliveryId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "sending" => Self::Sending,
            "paused" => Self::Paused,
            "finished" => Self::Finished,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown campaign status {other}").into(),
                ));
            }
        })
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

struct CampaignRow {
    id: i64,
    issue_id: String,
    subject: String,
    content_hash: String,
    topics: Vec<String>,
    status: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = sqlx::Error;

    fn try_from(r: CampaignRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: CampaignId(r.id),
            issue_id: r.issue_id,
            subject: r.subject,
            content_hash: r.content_hash,
            topics: r.topics,
            status: CampaignStatus::parse(&r.status)?,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

pub async fn campaign(
    db: impl PgExecutor<'_>,
    issue: IssueId,
) -> Result<Option<Campaign>, sqlx::Error> {
    sqlx::query_as!(
        CampaignRow,
        r#"SELECT id, issue_id, subject, content_hash, topics, status, created_at, finished_at
           FROM campaigns WHERE issue_id = $1"#,
        issue.to_string()
    )
    .fetch_optional(db)
    .await?
    .map(Campaign::try_from)
    .transpose()
}

pub async fn campaign_status(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<Option<CampaignStatus>, sqlx::Error> {
    sqlx::query_scalar!("SELECT status FROM campaigns WHERE id = $1", campaign_id.0)
        .fetch_optional(db)
        .await?
        .map(|s| CampaignStatus::parse(&s))
        .transpose()
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
pub async fn enqueue(db: impl PgExecutor<'_>, campaign_id: CampaignId) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"INSERT INTO deliveries (campaign_id, subscriber_id, topics, status, last_reply)
           SELECT c.id, s.id, t.topics,
                  CASE WHEN cardinality(t.topics) > 0 THEN 'queued' ELSE 'skipped' END,
                  CASE WHEN cardinality(t.topics) > 0 THEN NULL
                       ELSE 'none of the reader''s topics is in this issue' END
           FROM campaigns c
           CROSS JOIN subscribers s
           CROSS JOIN LATERAL (
               SELECT coalesce(array_agg(st.topic ORDER BY st.topic), '{}') AS topics
               FROM subscriber_topics st
               WHERE st.subscriber_id = s.id AND st.topic = ANY(c.topics)
           ) t
           WHERE c.id = $1 AND s.status = 'active'
           ON CONFLICT (campaign_id, subscriber_id) DO NOTHING"#,
        campaign_id.0
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Who claims: one connection (`worker`, what `claimed_by` records) of a registered sender.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    pub worker: &'a str,
    pub sender: i32,
}

/// A delivery claimed for sending, with what is needed to write the message.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub attempts: i32,
    pub topics: Vec<String>,
    /// `None` when the subscriber left or was erased since the audience was frozen.
    pub recipient: Option<Recipient>,
}

#[derive(Debug, Clone)]
pub struct Recipient {
    pub subscriber_id: SubscriberId,
    pub email: String,
    pub name: Option<String>,
    pub link_id: Vec<u8>,
    pub link_secret: Vec<u8>,
}

/// Claims up to `limit` due deliveries for `worker` of sender `sender`: queued ones whose time
/// has come, claims of a sender that is gone (its advisory lock is free: it crashed or was
/// killed), and claims whose lease ran out (a sender alive but hung or cut off: a connected
/// sender renews its leases). A sender never takes its own claims: they are in its workers'
/// hands, even while its lock is being re-taken after an outage. One short statement;
/// `SKIP LOCKED` lets several senders share a campaign without waiting on each other or taking
/// the same row.
pub async fn claim(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    who: Claimant<'_>,
    limit: i64,
    lease_seconds: f64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT d.id FROM deliveries d
               JOIN campaigns c ON c.id = d.campaign_id AND c.status = 'sending'
               WHERE d.campaign_id = $1
                 AND ((d.status = 'queued' AND d.next_attempt_at <= now())
                      OR (d.status = 'sending' AND d.sender_id IS DISTINCT FROM $5
                          AND (d.lease_until < now()
                               OR d.sender_id NOT IN (SELECT id FROM live_senders))))
               ORDER BY d.id
               LIMIT $2
               FOR UPDATE OF d SKIP LOCKED
           ), claimed AS (
               UPDATE deliveries d
               SET status = 'sending', claimed_by = $3, sender_id = $5,
                   lease_until = now() + make_interval(secs => $4),
                   attempts = d.attempts + 1, updated_at = now()
               FROM due WHERE d.id = due.id
               RETURNING d.id, d.subscriber_id, d.topics, d.attempts
           )
           SELECT c.id AS "id!", c.attempts AS "attempts!", c.topics AS "topics!",
                  s.id AS "subscriber_id?", s.email AS "email?", s.name AS "name?",
                  s.link_id AS "link_id?", s.link_secret AS "link_secret?"
           FROM claimed c
           LEFT JOIN subscribers s ON s.id = c.subscriber_id AND s.status = 'active'
           ORDER BY c.id"#,
        campaign_id.0,
        limit,
        who.worker,
        lease_seconds,
        who.sender
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            id: DeliveryId(r.id),
            attempts: r.attempts,
            topics: r.topics,
            recipient: match (r.subscriber_id, r.email, r.link_id, r.link_secret) {
                (Some(subscriber_id), Some(email), Some(link_id), Some(link_secret)) => {
                    Some(Recipient {
                        subscriber_id: SubscriberId::from_db(subscriber_id),
                        email,
                        name: r.name,
                        link_id,
                        link_secret,
                    })
                }
                _ => None,
            },
        })
        .collect())
}

/// What became of one claimed delivery, as its worker saw it.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub id: DeliveryId,
    /// The claim's holder (`claimed_by`): only it may record the outcome.
    pub worker: String,
    pub result: Ending,
    /// When it happened: a message is recorded `sent` at the time the server accepted it, not
    /// when its group reached the database.
    pub at: std::time::Instant,
}

/// The three ways a claim ends.
#[derive(Debug, Clone)]
pub enum Ending {
    /// The server accepted the message.
    Sent { reply: String, message_id: String },
    /// A temporary failure: back to the queue, to be tried again in `retry_in_seconds`.
    Retry {
        reply: String,
        retry_in_seconds: f64,
    },
    /// `failed` (with the server's reply) or `skipped`.
    Final { status: FinalStatus, reply: String },
}

/// Records the outcomes of many deliveries in one statement; returns the ids recorded (a
/// claim no longer its worker's is left as it is). Replies are kept without the addresses
/// they quote: the ledger outlives erasure, and `status` prints them.
pub async fn record(
    db: impl PgExecutor<'_>,
    outcomes: &[DeliveryOutcome],
) -> Result<Vec<DeliveryId>, sqlx::Error> {
    let n = outcomes.len();
    let (mut ids, mut workers, mut statuses, mut replies) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut message_ids, mut seconds): (Vec<Option<String>>, Vec<f64>) =
        (Vec::with_capacity(n), Vec::with_capacity(n));
    for o in outcomes {
        ids.push(o.id.0);
        workers.push(o.worker.clone());
        let (status, reply, message_id, secs) = match &o.result {
            // For a message sent: how long ago, to date it back to its acceptance.
            Ending::Sent { reply, message_id } => (
                "sent",
                reply,
                Some(message_id.clone()),
                o.at.elapsed().as_secs_f64(),
            ),
            Ending::Retry {
                reply,
                retry_in_seconds,
            } => ("queued", reply, None, *retry_in_seconds),
            Ending::Final { status, reply } => (status.as_str(), reply, None, 0.0),
        };
        statuses.push(status.to_string());
        replies.push(redact_addresses(reply).into_owned());
        message_ids.push(message_id);
        seconds.push(secs);
    }
    sqlx::query_scalar!(
        r#"UPDATE deliveries d
           SET status = o.status, last_reply = o.reply,
               sent_at = CASE WHEN o.status = 'sent'
                              THEN now() - make_interval(secs => o.secs) ELSE d.sent_at END,
               message_id = CASE WHEN o.status = 'sent' THEN o.message_id ELSE d.message_id END,
               next_attempt_at = CASE WHEN o.status = 'queued'
                                      THEN now() + make_interval(secs => o.secs)
                                      ELSE d.next_attempt_at END,
               claimed_by = NULL, lease_until = NULL, updated_at = now()
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
                AS o(id, worker, status, reply, message_id, secs)
           WHERE d.id = o.id AND d.claimed_by = o.worker AND d.status = 'sending'
           RETURNING d.id"#,
        &ids,
        &workers,
        &statuses,
        &replies,
        &message_ids as &[Option<String>],
        &seconds
    )
    .fetch_all(db)
    .await
    .map(|ids| ids.into_iter().map(DeliveryId).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Failed,
    Skipped,
}

impl FinalStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Gives back claims this sender holds but did not finish (on SIGINT/SIGTERM), without
/// counting the attempt.
pub async fn release(
    db: impl PgExecutor<'_>,
    ids: &[DeliveryId],
    worker: &str,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<i64> = ids.iter().map(|d| d.0).collect();
    let done = sqlx::query!(
        r#"UPDATE deliveries
           SET status = 'queued', attempts = greatest(attempts - 1, 0),
               claimed_by = NULL, lease_until = NULL, updated_at = now()
           WHERE id = ANY($1) AND claimed_by = $2 AND status = 'sending'"#,
        &ids,
        worker
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Gives back every claim `worker` holds: after a claim whose reply was lost in an outage, the
/// rows it took are the worker's but in nobody's hands. (A sender never takes its own claims,
/// so nobody else would.)
pub async fn release_all(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    worker: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE deliveries
           SET status = 'queued', attempts = greatest(attempts - 1, 0),
               claimed_by = NULL, lease_until = NULL, updated_at = now()
           WHERE campaign_id = $1 AND claimed_by = $2 AND status = 'sending'"#,
        campaign_id.0,
        worker
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

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
) -> Result<Vec<(DateTime<Utc>, String, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT updated_at, status, last_reply AS "last_reply!"
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

/// Like [`claim`], but under an advisory lock that makes the daily cap exact across every
/// process: the count of what was sent today and what is in flight, and the claim, happen as
/// one step.
pub async fn claim_within_cap(
    pool: &PgPool,
    campaign_id: CampaignId,
    who: Claimant<'_>,
    limit: i64,
    lease_seconds: f64,
    cap: i64,
    since: DateTime<Utc>,
) -> Result<CapClaim, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock(7242017)")
        .execute(&mut *tx)
        .await?;
    let used = used_since(&mut *tx, since).await?;
    let room = cap - used;
    if room <= 0 {
        tx.commit().await?;
        return Ok(CapClaim::CapReached { used });
    }
    let claimed = claim(&mut *tx, campaign_id, who, limit.min(room), lease_seconds).await?;
    tx.commit().await?;
    Ok(CapClaim::Claimed(claimed))
}

pub enum CapClaim {
    Claimed(Vec<Claimed>),
    CapReached { used: i64 },
}

/// Who would receive the issue now, without touching the ledger: for `--dry-run`.
pub async fn audience(
    db: impl PgExecutor<'_>,
    issue_topics: &[String],
) -> Result<Vec<(Recipient, Vec<String>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT s.id, s.email, s.name, s.link_id, s.link_secret, t.topics AS "topics!"
           FROM subscribers s
           CROSS JOIN LATERAL (
               SELECT coalesce(array_agg(st.topic ORDER BY st.topic), '{}') AS topics
               FROM subscriber_topics st
               WHERE st.subscriber_id = s.id AND st.topic = ANY($1)
           ) t
           WHERE s.status = 'active'
           ORDER BY s.id"#,
        issue_topics
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                Recipient {
                    subscriber_id: SubscriberId::from_db(r.id),
                    email: r.email,
                    name: r.name,
                    link_id: r.link_id,
                    link_secret: r.link_secret,
                },
                r.topics,
            )
        })
        .collect())
}

/// Marks a subscriber bounced after a 5.1.x reply. The consent log keeps the status code only:
/// the reply itself usually quotes the address, which the log must never hold.
pub async fn bounce(
    pool: &PgPool,
    subscriber_id: SubscriberId,
    status_code: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query!(
        r#"UPDATE subscribers SET status = 'bounced', updated_at = now()
           WHERE id = $1 AND status = 'active'"#,
        subscriber_id.get()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 1 {
        crate::store::consent::record(
            &mut tx,
            subscriber_id,
            crate::store::ConsentAction::Bounced,
            &crate::store::ConsentSource::Bounce,
            serde_json::json!({ "from": "active", "to": "bounced", "smtp_status": status_code }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The first key of every sender's advisory lock (the second is the sender's id); the
/// `live_senders` view looks for it.
const SENDER_LOCK: i32 = 7_242_018;

/// What a sender tells others about itself when it registers.
#[derive(Debug, Clone)]
pub struct SenderInfo {
    pub campaign_id: CampaignId,
    pub host: String,
    pub pid: i32,
    /// Messages a second; `None` for no limit.
    pub rate_per_second: Option<f64>,
    /// Messages that may go at once after a pause.
    pub burst: i32,
    pub concurrency: i32,
    pub daily_cap: Option<i32>,
}

/// Registers a sender and takes its advisory lock on `conn`, which must be a connection that
/// lives as long as the run: the lock is how everyone else knows the sender is alive. One
/// statement, so the row is never visible without its lock held.
pub async fn register_sender(
    conn: impl PgExecutor<'_>,
    s: &SenderInfo,
) -> Result<i32, sqlx::Error> {
    let r = sqlx::query!(
        r#"WITH s AS (
               INSERT INTO senders
                   (campaign_id, host, pid, rate_per_second, concurrency, daily_cap, burst)
               VALUES ($1, $2, $3, $4, $5, $6, $8)
               RETURNING id)
           SELECT id AS "id!", pg_try_advisory_lock($7, id) AS "locked!" FROM s"#,
        s.campaign_id.0,
        s.host,
        s.pid,
        s.rate_per_second,
        s.concurrency,
        s.daily_cap,
        SENDER_LOCK,
        s.burst
    )
    .fetch_one(conn)
    .await?;
    if !r.locked {
        return Err(sqlx::Error::Protocol(format!(
            "the advisory lock of new sender {} is held by another session",
            r.id
        )));
    }
    Ok(r.id)
}

/// Takes sender `id`'s lock again on `conn` (after its connection was lost): the backend's pid
/// when taken, `None` when another session still holds it.
pub async fn relock_sender(conn: impl PgExecutor<'_>, id: i32) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT CASE WHEN pg_try_advisory_lock($1, $2) THEN pg_backend_pid() END AS "pid""#,
        SENDER_LOCK,
        id
    )
    .fetch_one(conn)
    .await
}

/// The pid of the backend `conn` is attached to: a sender remembers it so that, should the
/// server keep a session it has lost alive, it can end that session and take its lock back.
pub async fn backend_pid(conn: impl PgExecutor<'_>) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#)
        .fetch_one(conn)
        .await
}

/// Ends backend `pid` if it is the one holding sender `id`'s lock (our own former session,
/// which the server has not yet noticed is gone); true when it was.
pub async fn end_stale_session(
    conn: impl PgExecutor<'_>,
    id: i32,
    pid: i32,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(bool_or(pg_terminate_backend(l.pid)), false) AS "ended!"
           FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.classid = $1::integer::oid
             AND l.objid = $2::integer::oid AND l.objsubid = 2 AND l.granted AND l.pid = $3"#,
        SENDER_LOCK,
        id,
        pid
    )
    .fetch_one(conn)
    .await
}

/// Extends the leases of every claim sender `id` holds in a campaign: a sender that is alive and
/// connected keeps its claims however long its batches take; one that hangs or is cut off stops
/// renewing, and its claims come free when the lease runs out.
///
/// A claim whose row another statement holds (its outcome being recorded, its claim given
/// back) is passed over, not waited for: the renewal takes every claim's lock at once, in no
/// order a worker's statement could agree on, so waiting would let the two deadlock, and
/// PostgreSQL would end one of them. A claim passed over is being ended, or is renewed at the
/// next renewal, well within its lease.
pub async fn renew_leases(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
    id: i32,
    lease_seconds: f64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE deliveries d
           SET lease_until = now() + make_interval(secs => $3)
           FROM (SELECT id FROM deliveries
                 WHERE campaign_id = $1 AND sender_id = $2 AND status = 'sending'
                 FOR UPDATE SKIP LOCKED) mine
           WHERE d.id = mine.id"#,
        campaign_id.0,
        id,
        lease_seconds
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A sender that ended cleanly (its lock connection closed) leaves no row, unless it still
/// holds claims: then the row names it while others take them over.
pub async fn forget_sender(db: impl PgExecutor<'_>, id: i32) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"DELETE FROM senders s
           WHERE s.id = $1
             AND NOT EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.sender_id = $1 AND d.status = 'sending')"#,
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets senders that are gone and hold no claims any more (crashed runs, once their claims
/// were taken over).
pub async fn forget_departed_senders(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"DELETE FROM senders s
           WHERE s.id NOT IN (SELECT id FROM live_senders)
             AND NOT EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.sender_id = s.id AND d.status = 'sending')"#
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Whose claims a campaign's `sending` deliveries are: one line per sender. `alive` is false
/// only for a sender known to be gone, whose claims anyone may take at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub sender_id: Option<i32>,
    /// `host:pid`, when the sender is known.
    pub name: Option<String>,
    pub alive: bool,
    pub claims: i64,
    /// When the last of these claims runs out.
    pub lease_until: DateTime<Utc>,
}

pub async fn holders(
    db: impl PgExecutor<'_>,
    campaign_id: CampaignId,
) -> Result<Vec<Holder>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT d.sender_id, s.host || ':' || s.pid AS name,
                  -- A claim with no sender (made before senders registered) waits for its
                  -- lease, as for a live one.
                  coalesce(d.sender_id IN (SELECT id FROM live_senders), d.sender_id IS NULL)
                      AS "alive!",
                  count(*) AS "claims!", max(d.lease_until) AS "lease_until!"
           FROM deliveries d
           LEFT JOIN senders s ON s.id = d.sender_id
           WHERE d.campaign_id = $1 AND d.status = 'sending'
           GROUP BY d.sender_id, s.host, s.pid
           ORDER BY 4 DESC"#,
        campaign_id.0
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Holder {
            sender_id: r.sender_id,
            name: r.name,
            alive: r.alive,
            claims: r.claims,
            lease_until: r.lease_until,
        })
        .collect())
}

/// A sender that is alive now, for `status` and its estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSender {
    pub id: i32,
    pub issue_id: String,
    pub host: String,
    pub pid: i32,
    pub rate_per_second: Option<f64>,
    pub concurrency: i32,
    pub daily_cap: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub claims: i64,
}

pub async fn live_senders(db: impl PgExecutor<'_>) -> Result<Vec<LiveSender>, sqlx::Error> {
    sqlx::query_as!(
        LiveSender,
        r#"SELECT s.id, c.issue_id, s.host, s.pid, s.rate_per_second, s.concurrency,
                  s.daily_cap, s.started_at,
                  (SELECT count(*) FROM deliveries d
                   WHERE d.sender_id = s.id AND d.status = 'sending') AS "claims!"
           FROM senders s
           JOIN campaigns c ON c.id = s.campaign_id
           WHERE s.id IN (SELECT id FROM live_senders)
           ORDER BY s.id"#
    )
    .fetch_all(db)
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

/// A new campaign as `send` asks for it: the issue, what was hashed, and its audience's topics.
#[derive(Debug, Clone, Copy)]
pub struct NewCampaign<'a> {
    pub issue: IssueId,
    pub subject: &'a str,
    pub content_hash: &'a str,
    pub topics: &'a [String],
    /// Go on although the content hash differs from the campaign's.
    pub allow_changed: bool,
    /// On a resumed campaign, add who became active since the audience was frozen.
    pub include_new: bool,
}

/// One image stored with the campaign, for `serve`.
#[derive(Debug, Clone, Copy)]
pub struct CampaignImage<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// What [`Store::prepare_campaign`] found.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Created (with its audience frozen) or resumed, its images stored.
    Ready(Campaign),
    /// The campaign was cancelled: nothing was changed.
    Cancelled,
    /// The issue's content hash differs from the campaign's: nothing was changed.
    Changed(Campaign),
}

impl Store {
    /// The campaign for an issue, in one transaction: created with its audience frozen on the
    /// first run; on later runs resumed (set sending again when there is work), with newcomers
    /// added only when asked; its images stored with it, before any message links to them.
    pub async fn prepare_campaign(
        &self,
        new: NewCampaign<'_>,
        images: &[CampaignImage<'_>],
    ) -> Result<Prepared, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(id) = create_campaign(
            &mut *tx,
            new.issue,
            new.subject,
            new.content_hash,
            new.topics,
        )
        .await?
        {
            let n = enqueue(&mut *tx, id).await?;
            tracing::info!(campaign = %id, recipients = n, "audience frozen");
        } else {
            let existing = campaign(&mut *tx, new.issue)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            if existing.status == CampaignStatus::Cancelled {
                return Ok(Prepared::Cancelled);
            }
            if existing.content_hash != new.content_hash && !new.allow_changed {
                return Ok(Prepared::Changed(existing));
            }
            let added = if new.include_new {
                enqueue(&mut *tx, existing.id).await?
            } else {
                0
            };
            let has_work = added > 0 || counts(&mut *tx, existing.id).await?.remaining() > 0;
            if existing.status != CampaignStatus::Sending && has_work {
                set_status(&mut *tx, existing.id, CampaignStatus::Sending).await?;
            }
        }
        let campaign = campaign(&mut *tx, new.issue)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        // On a resumed run, again: a changed issue's new images have new names.
        for img in images {
            super::images::save_campaign_image(
                &mut tx,
                campaign.id,
                img.name,
                img.content_type,
                img.bytes,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Prepared::Ready(campaign))
    }

    /// The campaign of `issue`, if `send` began one.
    pub async fn campaign(&self, issue: IssueId) -> Result<Option<Campaign>, sqlx::Error> {
        campaign(&self.pool, issue).await
    }

    pub async fn campaign_status(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<CampaignStatus>, sqlx::Error> {
        campaign_status(&self.pool, campaign_id).await
    }

    pub async fn set_campaign_status(
        &self,
        campaign_id: CampaignId,
        status: CampaignStatus,
    ) -> Result<(), sqlx::Error> {
        set_status(&self.pool, campaign_id, status).await
    }

    /// See [`finish_if_done`].
    pub async fn finish_if_done(&self, campaign_id: CampaignId) -> Result<bool, sqlx::Error> {
        finish_if_done(&self.pool, campaign_id).await
    }

    /// How many of the campaign's deliveries are in each status.
    pub async fn delivery_counts(&self, campaign_id: CampaignId) -> Result<Counts, sqlx::Error> {
        counts(&self.pool, campaign_id).await
    }

    /// See [`claim`].
    pub async fn claim(
        &self,
        campaign_id: CampaignId,
        who: Claimant<'_>,
        limit: i64,
        lease_seconds: f64,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        claim(&self.pool, campaign_id, who, limit, lease_seconds).await
    }

    /// See [`claim_within_cap`].
    pub async fn claim_within_cap(
        &self,
        campaign_id: CampaignId,
        who: Claimant<'_>,
        limit: i64,
        lease_seconds: f64,
        cap: i64,
        since: DateTime<Utc>,
    ) -> Result<CapClaim, sqlx::Error> {
        claim_within_cap(
            &self.pool,
            campaign_id,
            who,
            limit,
            lease_seconds,
            cap,
            since,
        )
        .await
    }

    /// See [`record`].
    pub async fn record_outcomes(
        &self,
        outcomes: &[DeliveryOutcome],
    ) -> Result<Vec<DeliveryId>, sqlx::Error> {
        record(&self.pool, outcomes).await
    }

    /// See [`release`].
    pub async fn release(&self, ids: &[DeliveryId], worker: &str) -> Result<u64, sqlx::Error> {
        release(&self.pool, ids, worker).await
    }

    /// See [`release_all`].
    pub async fn release_all(
        &self,
        campaign_id: CampaignId,
        worker: &str,
    ) -> Result<u64, sqlx::Error> {
        release_all(&self.pool, campaign_id, worker).await
    }

    /// See [`used_since`].
    pub async fn used_since(&self, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
        used_since(&self.pool, since).await
    }

    /// See [`retry_failed`].
    pub async fn retry_failed(&self, campaign_id: CampaignId) -> Result<u64, sqlx::Error> {
        retry_failed(&self.pool, campaign_id).await
    }

    /// See [`next_due`].
    pub async fn next_due(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        next_due(&self.pool, campaign_id).await
    }

    /// See [`last_errors`].
    pub async fn last_errors(
        &self,
        campaign_id: CampaignId,
        limit: i64,
    ) -> Result<Vec<(DateTime<Utc>, String, String)>, sqlx::Error> {
        last_errors(&self.pool, campaign_id, limit).await
    }

    /// See [`sent_in_last`].
    pub async fn sent_in_last(
        &self,
        campaign_id: CampaignId,
        seconds: f64,
    ) -> Result<i64, sqlx::Error> {
        sent_in_last(&self.pool, campaign_id, seconds).await
    }

    /// See [`due_now`].
    pub async fn due_now(
        &self,
        campaign_id: CampaignId,
    ) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
        due_now(&self.pool, campaign_id).await
    }

    /// See [`audience`].
    pub async fn audience(
        &self,
        issue_topics: &[String],
    ) -> Result<Vec<(Recipient, Vec<String>)>, sqlx::Error> {
        audience(&self.pool, issue_topics).await
    }

    /// See [`bounce`].
    pub async fn bounce_after_reply(
        &self,
        subscriber_id: SubscriberId,
        status_code: &str,
    ) -> Result<(), StoreError> {
        bounce(&self.pool, subscriber_id, status_code).await
    }

    /// See [`renew_leases`].
    pub async fn renew_leases(
        &self,
        campaign_id: CampaignId,
        sender: i32,
        lease_seconds: f64,
    ) -> Result<u64, sqlx::Error> {
        renew_leases(&self.pool, campaign_id, sender, lease_seconds).await
    }

    /// See [`forget_sender`].
    pub async fn forget_sender(&self, sender: i32) -> Result<(), sqlx::Error> {
        forget_sender(&self.pool, sender).await
    }

    /// See [`forget_departed_senders`].
    pub async fn forget_departed_senders(&self) -> Result<u64, sqlx::Error> {
        forget_departed_senders(&self.pool).await
    }

    /// Whose claims a campaign's deliveries in flight are.
    pub async fn holders(&self, campaign_id: CampaignId) -> Result<Vec<Holder>, sqlx::Error> {
        holders(&self.pool, campaign_id).await
    }

    /// Every sender alive now, of any campaign.
    pub async fn live_senders(&self) -> Result<Vec<LiveSender>, sqlx::Error> {
        live_senders(&self.pool).await
    }
}
