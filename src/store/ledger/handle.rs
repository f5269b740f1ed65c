//! The [`Store`]'s ledger methods: each runs one of this module's statements on the pool.
//!
//! Two doors to one set of statements, on purpose: the jobs hold a `Store` and no pool (the
//! pool never leaves `store/`), so they come in here; the statements themselves take any
//! executor, because the store runs some of them inside its own transactions
//! (`claim_within_cap`) or on a sender's own connection (`store::sender`), and the tests hold
//! one open mid-statement to pin down what waits for what (`send_outage`). These methods add
//! nothing but the pool.

use chrono::{DateTime, Utc};

use super::*;
use crate::content::IssueId;
use crate::store::{Store, StoreError, SubscriberId};

impl Store {
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

    /// A writer of outcomes that keeps one of the pool's connections between its statements.
    pub fn outcome_writer(&self) -> OutcomeWriter {
        OutcomeWriter {
            pool: self.pool.clone(),
            conn: tokio::sync::Mutex::new(None),
        }
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
    ) -> Result<Vec<(DateTime<Utc>, DeliveryStatus, String)>, sqlx::Error> {
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
        issue_topics: &crate::content::TopicSet,
    ) -> Result<Vec<(Recipient, crate::content::TopicSet)>, sqlx::Error> {
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

/// Runs [`record`] on a connection it keeps: a pooled connection is tested with a round trip
/// when it goes back to the pool, two more for every group of outcomes if each took its own
/// (sqlx pings on release). One that failed is let go, and the next group takes another.
pub struct OutcomeWriter {
    pool: sqlx::PgPool,
    conn: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>>,
}

impl OutcomeWriter {
    /// See [`record`].
    pub async fn record(
        &self,
        outcomes: &[DeliveryOutcome],
    ) -> Result<Vec<DeliveryId>, sqlx::Error> {
        let mut held = self.conn.lock().await;
        let conn = match &mut *held {
            Some(c) => c,
            None => held.insert(self.pool.acquire().await?),
        };
        let written = record(&mut **conn, outcomes).await;
        if written.is_err() {
            *held = None;
        }
        written
    }
}
