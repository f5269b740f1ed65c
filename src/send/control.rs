//! Looking after a campaign `send` began: where it stands, pause, cancel, and queueing the
//! failed deliveries again. `lscp-mail status`, `pause`, `cancel` and `retry-failed` call these
//! and print what they return; the rules (what may be paused, what a cancel leaves in hand) are
//! here.

use chrono::{DateTime, Utc};

use super::{campaign, estimate};
use crate::content::IssueId;
use crate::store::bounce::BounceCounts;
use crate::store::ledger::{Campaign, CampaignStatus, Counts, DeliveryStatus, Holder, LiveSender};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no campaign for {0}: `lscp-mail send issues/{0}` begins one")]
    NoCampaign(IssueId),
    #[error("{issue} is {status}, not sending")]
    NotSending {
        issue: String,
        status: CampaignStatus,
    },
    #[error("{issue} is already {status}")]
    AlreadyOver {
        issue: String,
        status: CampaignStatus,
    },
    #[error("{0} was cancelled")]
    WasCancelled(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ControlError {
    /// Asked of a campaign that is not there or not in a state that allows it: the user asked
    /// the wrong thing, nothing failed.
    pub fn is_input_problem(&self) -> bool {
        !matches!(self, Self::Sql(_) | Self::Store(_))
    }
}

/// The campaign of `issue`.
pub async fn find(store: &Store, issue: IssueId) -> Result<Campaign, ControlError> {
    store
        .campaign(issue)
        .await?
        .ok_or(ControlError::NoCampaign(issue))
}

/// Everything `status` shows of a campaign.
#[derive(Debug, Clone)]
pub struct Status {
    pub counts: Counts,
    pub bounces: BounceCounts,
    /// Every sender running now, of any campaign.
    pub live: Vec<LiveSender>,
    /// Whose claims this campaign's deliveries in flight are.
    pub holders: Vec<Holder>,
    /// When it will finish, while it is sending with something left.
    pub estimate: Option<(estimate::Estimate, estimate::Inputs)>,
    /// The five latest failures and retries: when, the delivery's status, the server's reply.
    pub last_errors: Vec<(DateTime<Utc>, DeliveryStatus, String)>,
}

pub async fn status(store: &Store, c: &Campaign) -> Result<Status, ControlError> {
    let counts = store.delivery_counts(c.id).await?;
    let live = store.live_senders().await?;
    let bounces = store.bounce_counts(c.id).await?;
    let holders = store.holders(c.id).await?;
    let estimate = if c.status == CampaignStatus::Sending && counts.remaining() > 0 {
        let ours: Vec<&LiveSender> = live.iter().filter(|s| s.issue_id == c.issue_id).collect();
        let inputs = estimate_inputs(store, c, &counts, &ours).await?;
        Some((estimate::estimate(&inputs), inputs))
    } else {
        None
    };
    let last_errors = store.last_errors(c.id, 5).await?;
    Ok(Status {
        counts,
        bounces,
        live,
        holders,
        estimate,
        last_errors,
    })
}

/// What the estimate needs, read from the ledger and the live senders.
async fn estimate_inputs(
    store: &Store,
    c: &Campaign,
    n: &Counts,
    senders: &[&LiveSender],
) -> Result<estimate::Inputs, ControlError> {
    let now = Utc::now();
    let paces: Vec<estimate::Pace> = senders
        .iter()
        .map(|s| estimate::Pace {
            rate_per_second: s.rate_per_second,
            started_at: s.started_at,
        })
        .collect();
    let window = estimate::observed_seconds(&paces, now);
    let sent_recently = if window > 0.0 {
        store.sent_in_last(c.id, window).await?
    } else {
        0
    };
    let (due, next_retry) = store.due_now(c.id).await?;
    let cap = match senders.iter().filter_map(|s| s.daily_cap).min() {
        Some(per_day) => {
            let today = campaign::start_of_day(now);
            Some(estimate::Cap {
                per_day: per_day.into(),
                used_today: store.used_since(today).await?,
                next_day: campaign::start_of_day(today + chrono::Duration::hours(25)),
            })
        }
        None => None,
    };
    Ok(estimate::Inputs {
        now,
        remaining: n.remaining(),
        due,
        next_retry,
        senders: paces,
        sent_recently,
        cap,
    })
}

/// Stops a sending campaign for now; running senders hear of it at once.
pub async fn pause(store: &Store, c: &Campaign) -> Result<(), ControlError> {
    if c.status != CampaignStatus::Sending {
        return Err(ControlError::NotSending {
            issue: c.issue_id.clone(),
            status: c.status,
        });
    }
    store
        .set_campaign_status(c.id, CampaignStatus::Paused)
        .await?;
    Ok(())
}

/// What a cancel left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// Sent before the cancel.
    pub sent: i64,
    /// Will not be sent…
    pub not_sent: i64,
    /// …but for at most these, in the hands of the senders running now (one per connection).
    pub in_hand: i64,
}

/// Stops a campaign for good; the ledger is kept for the record.
pub async fn cancel(store: &Store, c: &Campaign) -> Result<Cancelled, ControlError> {
    if matches!(
        c.status,
        CampaignStatus::Finished | CampaignStatus::Cancelled
    ) {
        return Err(ControlError::AlreadyOver {
            issue: c.issue_id.clone(),
            status: c.status,
        });
    }
    // Running senders hear of it at once (the status trigger notifies them): each connection
    // finishes the message in hand and gives back the rest.
    store
        .set_campaign_status(c.id, CampaignStatus::Cancelled)
        .await?;
    let n = store.delivery_counts(c.id).await?;
    Ok(Cancelled {
        sent: n.sent,
        not_sent: n.remaining(),
        in_hand: in_hand(store, c).await?,
    })
}

/// How many messages running senders of `c` may have in hand: one per connection.
async fn in_hand(store: &Store, c: &Campaign) -> Result<i64, ControlError> {
    Ok(store
        .live_senders()
        .await?
        .iter()
        .filter(|s| s.issue_id == c.issue_id)
        .map(|s| i64::from(s.concurrency).min(s.claims))
        .sum())
}

/// Queues the campaign's failed deliveries again (bounced and departed readers stay out), and
/// reopens a finished campaign when there are any; returns how many.
pub async fn retry_failed(store: &Store, c: &Campaign) -> Result<u64, ControlError> {
    if c.status == CampaignStatus::Cancelled {
        return Err(ControlError::WasCancelled(c.issue_id.clone()));
    }
    let n = store.retry_failed(c.id).await?;
    if n > 0 && c.status == CampaignStatus::Finished {
        store
            .set_campaign_status(c.id, CampaignStatus::Sending)
            .await?;
    }
    Ok(n)
}
