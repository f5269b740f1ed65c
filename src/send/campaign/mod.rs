//! Sending a campaign: freeze the audience, then let `concurrency` workers, each with its own
//! SMTP connection, claim batches from the ledger, wait on the shared throttle, send, and record
//! the outcome. A row is `sent` only after the server accepted it; a claim never holds a lock
//! across the SMTP conversation; a stop request, `pause` or `cancel` finishes the message in
//! hand on each connection and gives back the rest at once; a database outage pauses the
//! workers until it returns. The run's [`Presence`] tells other senders it is alive.
//!
//! SMTP failures are acted on by scope (see [`SmtpFailure::scope`]): only what the server says
//! about one recipient changes that recipient's record. A session refused for good halts the
//! run with every claim given back; a session failing for now (the server down, a 421, "slow
//! down") charges nobody an attempt while the workers probe it with backoff; the same message
//! refusal for reader after reader pauses the campaign.
//!
//! Here: the options, the run and its report. `prepare` creates or resumes the campaign,
//! `worker` claims, delivers and records, `faults` handles the server's and the database's
//! failures (halts, outages, probes, backoff).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::ledger::{RecordError, Recorder};
use super::pace::CampaignPace;
use super::personalise::{PersonaliseError, Personaliser};
use super::presence::Presence;
use super::throttle::{Rate, Slowdown};
use crate::config::Config;
use crate::content::Issue;
use crate::mail::smtp::{SmtpFailure, SmtpTarget};
use crate::store::ledger::{Campaign, Counts, SenderInfo};
use crate::store::{Store, StoreError};

mod deliver;
mod faults;
mod prepare;
mod worker;

use faults::SLOWDOWN_HOLD;
pub use faults::{preflight, probe_wait};
pub use prepare::{check_image_site, content_hash, prepare};
use worker::{Shared, worker};
pub use worker::{start_of_day, waiting_for};

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub batch: u32,
    pub concurrency: u32,
    pub daily_cap: Option<u32>,
    /// At the cap: wait for the next day (true) or stop with a resumable status (false).
    pub wait_at_cap: bool,
    pub include_new: bool,
    /// Go on although the issue's files changed since the campaign began.
    pub allow_changed: bool,
    pub max_attempts: u32,
    pub retry_after: Duration,
    pub smtp_timeout: Duration,
    pub lease: Duration,
    /// The same permanent refusal for this many readers in a row pauses the campaign.
    pub max_consecutive_failures: u32,
    /// An unbroken outage of the mail server this long stops the run, everything queued.
    pub give_up_after: Duration,
}

impl SendOptions {
    pub fn from_config(config: &Config) -> Self {
        let s = &config.send;
        Self {
            rate: s.rate,
            burst: NonZeroU32::new(s.burst).unwrap_or(NonZeroU32::MIN),
            batch: s.batch.max(1),
            concurrency: s.concurrency.max(1),
            daily_cap: s.daily_cap,
            wait_at_cap: true,
            include_new: false,
            allow_changed: false,
            max_attempts: s.max_attempts.max(1),
            retry_after: Duration::from_secs(s.retry_after_seconds),
            smtp_timeout: Duration::from_secs(s.smtp_timeout_seconds),
            lease: Duration::from_secs(s.lease_seconds),
            max_consecutive_failures: s.max_consecutive_failures.max(1),
            give_up_after: s.give_up_after.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(
        "the campaign for {0} was cancelled; it cannot be sent again (its ledger is kept for the record)"
    )]
    Cancelled(String),
    #[error(
        "the issue's files changed since sending began on {began} (content hash {was:.12} → {now:.12}); readers already sent the earlier version. Pass --allow-changed to send the rest the new version"
    )]
    Changed {
        began: String,
        was: String,
        now: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Message(#[from] PersonaliseError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("a send worker failed unexpectedly ({0}); run send again to resume")]
    WorkerFailed(String),
    #[error(transparent)]
    Image(#[from] crate::render::images::ImageError),
    #[error(
        "the issue has local images, which readers fetch from `site.base_url`, and `{0}` is not an https address"
    )]
    ImagesNeedHttps(String),
    #[error("cannot read the issue folder {path}: {source}")]
    ReadIssue {
        path: String,
        source: std::io::Error,
    },
}

/// How a run ended. Everything but `Finished` can be resumed by running `send` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every delivery has its final status.
    Finished,
    /// SIGINT or SIGTERM: what was in flight finished, the rest went back to the queue.
    Interrupted,
    /// The daily cap was reached and the run was asked not to wait.
    CapReached,
    /// Someone ran `lscp-mail pause`.
    Paused,
    /// Someone ran `lscp-mail cancel`.
    Cancelled,
    /// The mail server refused the session for good (login, sender, TLS): nothing changed for
    /// anyone not yet sent; fix the setting and run `send` again.
    Refused,
    /// The mail server stayed unavailable for `give_up_after`: everything is still queued.
    ServerUnavailable,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub outcome: Outcome,
    pub counts: Counts,
    pub sent: u64,
    pub failed: u64,
    pub retried: u64,
    pub elapsed: Duration,
    pub variants: usize,
    /// The server's reply that stopped the run (a refused session, the repeated refusal that
    /// paused it, the last failure of an outage).
    pub stopped_by: Option<SmtpFailure>,
}

/// What a run reports as it goes, for the progress bar.
pub trait Progress: Send + Sync {
    fn start(&self, remaining: u64);
    fn advance(&self, sent: u64, failed: u64, retried: u64);
    fn note(&self, message: &str);
    /// Nothing this run can send now: why (another sender's claims hold the end of the
    /// campaign, say), or `None` when it is sending again.
    fn waiting(&self, _why: Option<&str>) {}
    fn finish(&self);
}

/// No progress display (tests, and when stderr is not a terminal).
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64, _: u64, _: u64) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

/// Asks a run to stop: `stop.send(true)`.
pub type StopSender = watch::Sender<bool>;
pub type StopReceiver = watch::Receiver<bool>;

pub fn stop_channel() -> (StopSender, StopReceiver) {
    watch::channel(false)
}

/// Sends what is due in `campaign` until it is finished, stopped, paused, cancelled, or at the
/// daily cap.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: &Store,
    issue: &Issue,
    campaign: Campaign,
    options: &SendOptions,
    target: &SmtpTarget,
    personaliser: Personaliser,
    stop: StopReceiver,
    progress: Arc<dyn Progress>,
) -> Result<RunReport, SendError> {
    let started = Instant::now();
    let counts = store.delivery_counts(campaign.id).await?;
    progress.start(counts.remaining().max(0) as u64);
    let variants = personaliser.variant_count();
    let presence = Presence::start(
        store,
        SenderInfo {
            campaign_id: campaign.id,
            host: host_name(),
            pid: std::process::id() as i32,
            rate_per_second: options.rate.per_second(),
            burst: options.burst.get().min(i32::MAX as u32) as i32,
            concurrency: options.concurrency as i32,
            daily_cap: options.daily_cap.map(|c| c as i32),
        },
        options.lease,
    )
    .await?;
    let pace = CampaignPace::open(store, campaign.id, options.rate, options.burst).await?;
    let shared = Arc::new(Shared {
        store: store.clone(),
        campaign: campaign.clone(),
        options: options.clone(),
        personaliser,
        target: target.clone(),
        pace,
        stop,
        progress: progress.clone(),
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        retried: AtomicU64::new(0),
        batch_done: tokio::sync::Notify::new(),
        run_id: run_id(),
        sender_id: presence.id,
        standing: presence.standing.clone(),
        halt: presence.halt.clone(),
        outages: AtomicU64::new(0),
        server_halt: Mutex::new(None),
        server_halted: watch::Sender::new(false),
        worker_failed: watch::Sender::new(false),
        streak: Mutex::new(None),
        outage: Mutex::new(None),
        slowdown: Slowdown::new(SLOWDOWN_HOLD),
        recorder: std::sync::OnceLock::new(),
    });
    // The recorder holds the run's state weakly: once the run is over, it ends.
    let weak = Arc::downgrade(&shared);
    let fill = options.concurrency as usize;
    let writer = Arc::new(store.outcome_writer());
    let (recorder, _recording) = Recorder::start(fill, move |group| {
        let weak = weak.clone();
        let writer = writer.clone();
        async move {
            let Some(shared) = weak.upgrade() else {
                return Err(sqlx::Error::PoolClosed);
            };
            shared
                .db("recording outcomes", || writer.record(&group))
                .await
        }
    });
    let _ = shared.recorder.set(recorder);
    tracing::info!(issue = %issue.id, run = %shared.run_id, "sending");
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..options.concurrency {
        let shared = shared.clone();
        workers.spawn(async move { worker(shared, n).await });
    }
    let mut outcome = Outcome::Finished;
    let mut error = None;
    while let Some(done) = workers.join_next().await {
        let failure = match done {
            Ok(Ok(o)) => {
                outcome = worst(outcome, o);
                continue;
            }
            Ok(Err(e)) => e,
            Err(join) => SendError::WorkerFailed(join.to_string()),
        };
        // The others finish the message in hand and give back the rest; the failed worker's
        // claims stay as they are, for the next run to take once this one's lock is gone.
        tracing::error!("a send worker failed, stopping the run: {failure}");
        shared.worker_failed.send_replace(true);
        error.get_or_insert(failure);
    }
    progress.finish();
    if let Some(e) = error {
        return Err(e);
    }
    // Housekeeping: a row left behind is forgotten by the next run.
    if let Err(e) = presence.finish(store).await {
        tracing::warn!("cannot remove this sender's row: {e}");
    }
    let halt = shared.server_halt.lock().ok().and_then(|h| h.clone());
    let stopped_by = halt.map(|h| {
        outcome = h.outcome();
        h.failure().clone()
    });
    if outcome == Outcome::Finished {
        store.finish_if_done(campaign.id).await?;
    }
    Ok(RunReport {
        outcome,
        counts: store.delivery_counts(campaign.id).await?,
        sent: shared.sent.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        retried: shared.retried.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        variants,
        stopped_by,
    })
}

/// When workers end differently, the run reports the reason that needs the user most.
fn worst(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Finished => 0,
        Outcome::Interrupted => 1,
        Outcome::CapReached => 2,
        Outcome::ServerUnavailable => 3,
        Outcome::Paused => 4,
        Outcome::Cancelled => 5,
        Outcome::Refused => 6,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

fn run_id() -> String {
    let host = host_name();
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        u32::from_le_bytes(r)
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::faults::PROBE_CAP;
    use super::*;
    use crate::store::ledger;

    #[test]
    fn only_live_senders_other_than_this_one_are_waited_for() {
        let lease = Utc
            .with_ymd_and_hms(2026, 12, 2, 10, 42, 0)
            .single()
            .expect("date");
        let holder = |id: i32, alive: bool, claims: i64| ledger::Holder {
            sender_id: Some(id),
            name: Some(format!("mailhost:{id}")),
            alive,
            claims,
            lease_until: lease,
        };
        let holders = [holder(7, true, 67), holder(8, false, 3), holder(9, true, 2)];
        assert_eq!(
            waiting_for(&holders, Some(9)).as_deref(),
            Some("waiting for 67 claim(s) of sender mailhost:7, lease ends 10:42")
        );
        assert_eq!(
            waiting_for(&holders[1..2], None),
            None,
            "a dead sender's claims are taken, not waited for"
        );
        assert_eq!(waiting_for(&holders[2..], Some(9)), None);
    }

    #[test]
    fn by_default_an_outage_is_probed_every_few_minutes_and_outlasts_every_readers_retries() {
        let o = SendOptions::from_config(&Config::default());
        // The longest a reader's temporary failures could take to use up max_attempts.
        let retries: Duration = (1..o.max_attempts as i32)
            .map(|a| o.retry_after.saturating_mul(1 << (a - 1)).mul_f64(1.25))
            .sum();
        assert!(retries < Duration::from_secs(3600), "{retries:?}");
        assert_eq!(o.give_up_after, Duration::from_secs(3 * 24 * 3600));
        assert!(o.give_up_after > retries * 10);
        assert!(probe_wait(o.retry_after, 1) <= Duration::from_secs(75));
        for probe in 1..40 {
            assert!(probe_wait(o.retry_after, probe) <= PROBE_CAP);
        }
        // Probing every five minutes at worst: a server back after an hour is found within five.
        assert_eq!(PROBE_CAP, Duration::from_secs(300));
        assert_eq!(o.max_consecutive_failures, 10);
    }

    #[test]
    fn the_daily_cap_resets_at_london_midnight() {
        let summer = Utc
            .with_ymd_and_hms(2026, 7, 1, 12, 0, 0)
            .single()
            .expect("date");
        assert_eq!(
            start_of_day(summer),
            Utc.with_ymd_and_hms(2026, 6, 30, 23, 0, 0)
                .single()
                .expect("date")
        );
        let winter = Utc
            .with_ymd_and_hms(2026, 1, 15, 0, 30, 0)
            .single()
            .expect("date");
        assert_eq!(
            start_of_day(winter),
            Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0)
                .single()
                .expect("date")
        );
    }
}
