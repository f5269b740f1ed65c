//! A running sender's own connection to the database: the session-level advisory lock that
//! tells every other sender it is alive, and the `LISTEN` that brings it `pause` and `cancel`.
//! What the run does with them is in `send::presence`.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::Store;
use super::ledger::{self, CampaignId, CampaignStatus, SenderInfo};

/// The channel the `campaigns_status_changed` trigger notifies, with the campaign's id.
const CHANNEL: &str = "lscp_mail_campaign";

/// The lock's connection: a pool of one of its own (the listener reconnects through it), so that
/// it is never handed to anyone else with the lock still held.
pub struct SenderSession {
    pool: PgPool,
    listener: PgListener,
}

/// A notification on the campaigns' channel: some campaign's status changed.
#[derive(Debug, Clone)]
pub struct Notice(String);

impl Notice {
    /// Whether it is about campaign `id`.
    pub fn is_about(&self, id: CampaignId) -> bool {
        self.0 == id.to_string()
    }
}

impl Store {
    /// Opens a connection of its own for a sender, listening on the campaigns' channel.
    pub async fn sender_session(&self) -> Result<SenderSession, sqlx::Error> {
        let options = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        // A lost connection is reported, not silently replaced: the lock went with it.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(SenderSession { pool, listener })
    }
}

impl SenderSession {
    /// Registers the sender and takes its lock on this connection (see
    /// [`ledger::register_sender`]).
    pub async fn register(&mut self, info: &SenderInfo) -> Result<i32, sqlx::Error> {
        ledger::register_sender(&mut self.listener, info).await
    }

    /// Takes sender `id`'s lock again on this connection (see [`ledger::relock_sender`]).
    pub async fn relock(&mut self, id: i32) -> Result<Option<i32>, sqlx::Error> {
        ledger::relock_sender(&mut self.listener, id).await
    }

    /// The pid of this connection's backend; answering at all shows the connection is alive.
    pub async fn backend_pid(&mut self) -> Result<i32, sqlx::Error> {
        ledger::backend_pid(&mut self.listener).await
    }

    /// See [`ledger::end_stale_session`].
    pub async fn end_stale_session(&mut self, id: i32, pid: i32) -> Result<bool, sqlx::Error> {
        ledger::end_stale_session(&mut self.listener, id, pid).await
    }

    /// The campaign's status, read on this connection.
    pub async fn campaign_status(
        &mut self,
        campaign_id: CampaignId,
    ) -> Result<Option<CampaignStatus>, sqlx::Error> {
        ledger::campaign_status(&mut self.listener, campaign_id).await
    }

    /// The next notification; `None` when the connection was lost (and with it the lock).
    pub async fn next_notice(&mut self) -> Result<Option<Notice>, sqlx::Error> {
        Ok(self
            .listener
            .try_recv()
            .await?
            .map(|n| Notice(n.payload().to_string())))
    }

    /// Closes the connection, which releases the lock.
    pub async fn close(self) {
        drop(self.listener);
        self.pool.close().await;
    }
}
