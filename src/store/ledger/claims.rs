//! Claims and outcomes: a sender's workers claim due deliveries (under the daily cap when there
//! is one), record what became of them, and give back what they did not finish.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::{CampaignId, DeliveryId, DeliveryStatus, Recipient, used_since};
use crate::content::{Topic, TopicSet};
use crate::store::{DisplayName, SubscriberEmail, SubscriberId, redact_addresses};

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
    /// The topics the reader shares with the issue, as the audience froze them.
    pub topics: TopicSet,
    /// `None` when the subscriber left or was erased since the audience was frozen.
    pub recipient: Option<Recipient>,
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
                  s.id AS "subscriber_id?: SubscriberId", s.email AS "email?: SubscriberEmail",
                  s.name AS "name?: DisplayName",
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
            topics: r.topics.into_iter().map(Topic::from_stored).collect(),
            recipient: match (r.subscriber_id, r.email, r.link_id, r.link_secret) {
                (Some(subscriber_id), Some(email), Some(link_id), Some(link_secret)) => {
                    Some(Recipient {
                        subscriber_id,
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
                DeliveryStatus::Sent,
                reply,
                Some(message_id.clone()),
                o.at.elapsed().as_secs_f64(),
            ),
            Ending::Retry {
                reply,
                retry_in_seconds,
            } => (DeliveryStatus::Queued, reply, None, *retry_in_seconds),
            Ending::Final { status, reply } => (DeliveryStatus::from(*status), reply, None, 0.0),
        };
        statuses.push(status);
        replies.push(redact_addresses(reply).into_owned());
        message_ids.push(message_id);
        seconds.push(secs);
    }
    // The arrays go in through subqueries, so that the planner sees no group's length: the
    // statement's plan (a loop over the outcomes, each row found by its id) is then made once
    // and kept, where it was made again for each group as the lengths varied, 0.16 ms a
    // group, a quarter of the database's time in a send (BENCHMARKS.md).
    //
    // A claim still the worker's is the row naming it in `claimed_by` with a lease. The
    // table's check makes that the same as `status = 'sending'` (a holder and a lease exactly
    // when sending), but the status is not what is asked: it would let the planner read the
    // rows through the partial index `deliveries_due` (campaign_id, id), in which an id is no
    // key, and it does so whenever its statistics say the queue is short, as they do in a
    // ledger of finished campaigns. Every group then read the whole queue: 18 ms for five
    // outcomes in a queue of 10,000, against 1.7 ms by the primary key (BENCHMARKS.md). Asked
    // by its lease, a row can only be found by its id.
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
           FROM unnest((SELECT $1::bigint[]), (SELECT $2::text[]), (SELECT $3::text[]),
                       (SELECT $4::text[]), (SELECT $5::text[]), (SELECT $6::float8[]))
                AS o(id, worker, status, reply, message_id, secs)
           WHERE d.id = o.id AND d.claimed_by = o.worker AND d.lease_until IS NOT NULL
           RETURNING d.id"#,
        &ids,
        &workers,
        &statuses as &[DeliveryStatus],
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

impl From<FinalStatus> for DeliveryStatus {
    fn from(status: FinalStatus) -> Self {
        match status {
            FinalStatus::Failed => Self::Failed,
            FinalStatus::Skipped => Self::Skipped,
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
    // Still the worker's by its lease, not by its status: see `record`.
    let done = sqlx::query!(
        r#"UPDATE deliveries
           SET status = 'queued', attempts = greatest(attempts - 1, 0),
               claimed_by = NULL, lease_until = NULL, updated_at = now()
           WHERE id = ANY($1) AND claimed_by = $2 AND lease_until IS NOT NULL"#,
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
