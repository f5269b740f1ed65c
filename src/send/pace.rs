//! The campaign's pace as one process sees it: before each message a worker books its slot in
//! the campaign's bucket in PostgreSQL ([`crate::store::pace`]) and sleeps until it, so that
//! every `send` working the campaign, on any machine, shares one rate and one burst.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::throttle::Rate;
use crate::store::Store;
use crate::store::ledger::CampaignId;
use crate::store::pace::Draw;

/// With no limit anywhere, the process looks again this often whether a sender with a limit
/// has joined.
const UNLIMITED_RECHECK: Duration = Duration::from_secs(1);

pub struct CampaignPace {
    store: Store,
    campaign_id: CampaignId,
    rate: Option<f64>,
    burst: NonZeroU32,
    /// Until when no live sender had a limit: no slot needs booking until then.
    unlimited_until: Mutex<Option<Instant>>,
}

impl CampaignPace {
    /// Creates the campaign's bucket (full) unless another sender did.
    pub async fn open(
        store: &Store,
        campaign_id: CampaignId,
        rate: Rate,
        burst: NonZeroU32,
    ) -> Result<Self, sqlx::Error> {
        store.open_pace(campaign_id).await?;
        Ok(Self {
            store: store.clone(),
            campaign_id,
            rate: rate.per_second(),
            burst,
            unlimited_until: Mutex::new(None),
        })
    }

    /// True while no live sender had a limit when last asked (within the last second): a
    /// message may then go without booking a slot, as [`ready`](Self::ready) would let it.
    pub fn is_unlimited_now(&self) -> bool {
        self.unlimited_until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|t| t > Instant::now())
    }

    /// Books the next message's slot and waits for it. A slot booked is spent: a message that
    /// does not go after all gives nothing back (the pace errs on the slow side).
    pub async fn ready(&self) -> Result<(), sqlx::Error> {
        if self.is_unlimited_now() {
            return Ok(());
        }
        let draw = Draw {
            campaign_id: self.campaign_id,
            rate_per_second: self.rate,
            burst: self.burst.get(),
            at: None,
        };
        let slot = match self.store.draw_pace(&draw).await? {
            Some(s) => s,
            None => {
                // Gone (deleted under us): made again, full, and asked once more.
                self.store.open_pace(self.campaign_id).await?;
                return Box::pin(self.ready()).await;
            }
        };
        if let Ok(mut u) = self.unlimited_until.lock() {
            *u = slot
                .rate_per_second
                .is_none()
                .then(|| Instant::now() + UNLIMITED_RECHECK);
        }
        if slot.wait_seconds > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(slot.wait_seconds)).await;
        }
        Ok(())
    }
}
