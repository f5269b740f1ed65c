//! Senders and holders: a sender registers under an advisory lock that tells everyone it is
//! alive, renews its claims' leases, and is forgotten when it ends; who holds a campaign's
//! claims and which senders are alive, for `status`.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::CampaignId;

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
