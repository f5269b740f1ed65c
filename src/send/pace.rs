//! The campaign's pace as one process sees it: its workers take tokens the process drew from
//! the campaign's bucket in PostgreSQL ([`crate::store::pace`]), a few at a time, so that every
//! `send` working the campaign, on any machine, shares one rate and one burst.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::throttle::Rate;
use crate::store::pace::{self, Draw};

/// A draw takes about this much of the rate at a time: a database round trip per batch rather
/// than per message, and never more in hand than the campaign's pace would allow soon.
const BATCH_SPAN: f64 = 0.05;

/// With no limit anywhere, the process looks again this often whether a sender with a limit
/// has joined.
const UNLIMITED_RECHECK: Duration = Duration::from_secs(1);

/// The longest sleep between two draws, so that a change of pace (a sender joining with a lower
/// rate, or leaving) is seen soon.
const LONGEST_WAIT: Duration = Duration::from_secs(1);

pub struct CampaignPace {
    pool: PgPool,
    campaign_id: i64,
    rate: Option<f64>,
    burst: NonZeroU32,
    hand: tokio::sync::Mutex<Hand>,
}

/// What this process holds of the campaign's bucket.
struct Hand {
    tokens: u32,
    /// The campaign's rate at the last draw (`None`: no limit).
    rate: Option<f64>,
    unlimited_until: Option<Instant>,
}

impl CampaignPace {
    /// Creates the campaign's bucket (full) unless another sender did.
    pub async fn open(
        pool: &PgPool,
        campaign_id: i64,
        rate: Rate,
        burst: NonZeroU32,
    ) -> Result<Self, sqlx::Error> {
        pace::open(pool, campaign_id, burst.get(), None).await?;
        Ok(Self {
            pool: pool.clone(),
            campaign_id,
            rate: rate.per_second(),
            burst,
            hand: tokio::sync::Mutex::new(Hand {
                tokens: 0,
                rate: rate.per_second(),
                unlimited_until: None,
            }),
        })
    }

    /// Waits until the campaign's pace lets one more message go, and takes its token. A token
    /// taken is spent: a message that does not go after all gives nothing back (the pace errs
    /// on the slow side).
    pub async fn ready(&self) -> Result<(), sqlx::Error> {
        // Workers queue here; the one in front draws for all.
        let mut hand = self.hand.lock().await;
        loop {
            if hand.tokens > 0 {
                hand.tokens -= 1;
                return Ok(());
            }
            if hand.unlimited_until.is_some_and(|t| t > Instant::now()) {
                return Ok(());
            }
            let want = match hand.rate {
                Some(r) => ((r * BATCH_SPAN).ceil() as u32).clamp(1, self.burst.get()),
                None => 1,
            };
            let draw = Draw {
                campaign_id: self.campaign_id,
                want,
                rate_per_second: self.rate,
                burst: self.burst.get(),
                at: None,
            };
            let grant = match pace::draw(&self.pool, &draw).await? {
                Some(g) => g,
                None => {
                    // Gone (a campaign deleted under us would be): made again, full.
                    pace::open(&self.pool, self.campaign_id, self.burst.get(), None).await?;
                    continue;
                }
            };
            hand.rate = grant.rate_per_second;
            if grant.rate_per_second.is_none() {
                hand.unlimited_until = Some(Instant::now() + UNLIMITED_RECHECK);
                return Ok(());
            }
            hand.unlimited_until = None;
            if grant.tokens > 0 {
                hand.tokens = grant.tokens - 1;
                return Ok(());
            }
            let wait = Duration::from_secs_f64(grant.wait_seconds.min(LONGEST_WAIT.as_secs_f64()))
                .max(Duration::from_millis(1));
            tokio::time::sleep(wait).await;
        }
    }
}
