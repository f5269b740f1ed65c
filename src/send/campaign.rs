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

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::ledger::{
    self, Campaign, CampaignImage, CampaignStatus, CapClaim, Claimant, Claimed, Counts, DeliveryId,
    DeliveryOutcome, Ending, FinalStatus, NewCampaign, Prepared, RecordError, Recorder, SenderInfo,
    Unrecorded,
};
use super::pace::CampaignPace;
use super::personalise::{MessageError, Personaliser};
use super::presence::{Halt, Presence, Standing};
use super::smtp::{Connection, Scope, SmtpFailure, SmtpTarget, redact};
use super::throttle::{Rate, Slowdown};
use crate::config::Config;
use crate::content::Issue;
use crate::store::{LinkToken, Store, StoreError};

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
    Message(#[from] MessageError),
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

/// SHA-256 over the issue's files (TOML and images; names and contents, in name order): a
/// changed issue is not sent on silently.
pub fn content_hash(dir: &Path) -> Result<String, SendError> {
    let read_err = |source| SendError::ReadIssue {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| {
                ["toml", "png", "jpg", "jpeg", "gif"]
                    .iter()
                    .any(|x| e.eq_ignore_ascii_case(x))
            })
        })
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(read_err)?;
        hash.update(
            f.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(hash.finalize()))
}

/// An issue with local images is sent only when readers can fetch them: from an https
/// `site.base_url` (mail clients and their image proxies refuse or warn on http).
pub fn check_image_site(issue: &Issue, config: &Config) -> Result<(), SendError> {
    let https = url::Url::parse(&config.site.base_url).is_ok_and(|u| u.scheme() == "https");
    if issue.local_images().is_empty() || https {
        Ok(())
    } else {
        Err(SendError::ImagesNeedHttps(config.site.base_url.clone()))
    }
}

/// The campaign for `issue`: created with its audience frozen on the first run; on later runs
/// resumed (set sending again when there is work), with newcomers added only when asked.
pub async fn prepare(
    store: &Store,
    issue: &Issue,
    options: &SendOptions,
) -> Result<Campaign, SendError> {
    let hash = content_hash(&issue.dir)?;
    // Resized before the transaction: it takes a while, and needs no row.
    let images = crate::render::images::publish(issue)?;
    let topics: Vec<String> = issue
        .topics()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let images: Vec<CampaignImage> = images
        .iter()
        .map(|img| CampaignImage {
            name: &img.name,
            content_type: img.content_type,
            bytes: &img.bytes,
        })
        .collect();
    let new = NewCampaign {
        issue: issue.id,
        subject: &issue.subject,
        content_hash: &hash,
        topics: &topics,
        allow_changed: options.allow_changed,
        include_new: options.include_new,
    };
    match store.prepare_campaign(new, &images).await? {
        Prepared::Ready(campaign) => Ok(campaign),
        Prepared::Cancelled => Err(SendError::Cancelled(issue.id.to_string())),
        Prepared::Changed(existing) => Err(SendError::Changed {
            began: existing.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            was: existing.content_hash,
            now: hash,
        }),
    }
}

/// Everything the workers share.
struct Shared {
    store: Store,
    campaign: Campaign,
    options: SendOptions,
    personaliser: Personaliser,
    target: SmtpTarget,
    /// The campaign's pace, shared with every other sender through the database. (No local
    /// limiter in front of it: one would keep workers from booking their slots ahead, and a
    /// slot nobody booked in time is lost.)
    pace: CampaignPace,
    stop: StopReceiver,
    progress: Arc<dyn Progress>,
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    /// Told each time a worker has been through a claimed batch: workers waiting on another's
    /// claims look again then, not when the lease would run out.
    batch_done: tokio::sync::Notify,
    run_id: String,
    /// This run's row in `senders`: its claims carry it.
    sender_id: i32,
    /// Whether this run holds its liveness lock, from its [`Presence`].
    standing: watch::Receiver<Standing>,
    /// `pause` or `cancel`, as soon as the database tells.
    halt: watch::Receiver<Option<Halt>>,
    /// Database outages waited out so far: a batch claimed before one is not trusted after it.
    outages: AtomicU64,
    /// Set once the run must end for a reason of the server's (see [`ServerHalt`]); every worker
    /// gives back its claims.
    server_halt: Mutex<Option<ServerHalt>>,
    server_halted: watch::Sender<bool>,
    /// The last permanent refusal of a reader's message and how many readers in a row got it.
    streak: Mutex<Option<(SmtpFailure, u32)>>,
    /// Since when no message was accepted while the server failed for now.
    outage: Mutex<Option<Instant>>,
    slowdown: Slowdown,
    /// Where every worker's outcomes go, to be written in groups (set once the run starts).
    recorder: std::sync::OnceLock<Recorder>,
}

/// Why the run ends on the server's account.
#[derive(Debug, Clone)]
enum ServerHalt {
    Refused(SmtpFailure),
    Repeated(SmtpFailure),
    GaveUp(SmtpFailure),
}

/// After a server's rate complaint the pace stays lowered this long.
const SLOWDOWN_HOLD: Duration = Duration::from_secs(600);

/// The longest wait between two probes of a server that is down.
const PROBE_CAP: Duration = Duration::from_secs(300);

/// Waits between probes of a server that is down: from `base`, doubling, at most
/// [`PROBE_CAP`], with the retries' jitter.
pub fn probe_wait(base: Duration, probe: i32) -> Duration {
    backoff(base, probe).min(PROBE_CAP)
}

impl ServerHalt {
    /// What the run reports when it ends for this reason.
    fn outcome(&self) -> Outcome {
        match self {
            ServerHalt::Refused(_) => Outcome::Refused,
            ServerHalt::Repeated(_) => Outcome::Paused,
            ServerHalt::GaveUp(_) => Outcome::ServerUnavailable,
        }
    }

    fn failure(&self) -> &SmtpFailure {
        match self {
            ServerHalt::Refused(f) | ServerHalt::Repeated(f) | ServerHalt::GaveUp(f) => f,
        }
    }
}

impl Shared {
    /// Why the run must stop now, if it must.
    fn stopping(&self) -> Option<Outcome> {
        match *self.halt.borrow() {
            Some(Halt::Paused) => return Some(Outcome::Paused),
            Some(Halt::Cancelled) => return Some(Outcome::Cancelled),
            None => {}
        }
        if *self.server_halted.borrow() {
            return Some(self.server_outcome());
        }
        self.stop.borrow().then_some(Outcome::Interrupted)
    }

    /// Ready when the run must stop (SIGINT/SIGTERM, `pause`, `cancel`).
    async fn until_stopped(&self) {
        let mut stop = self.stop.clone();
        let mut halt = self.halt.clone();
        // A sender that went away can no longer ask: wait on the other then.
        let stopped = async {
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let halted = async {
            if halt.wait_for(|h| h.is_some()).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let mut server = self.server_halted.subscribe();
        tokio::select! {
            _ = stopped => {}
            _ = halted => {}
            _ = server.wait_for(|h| *h) => {}
        }
    }

    /// The point a claim was made at: what it takes for the claim to still be this run's alone.
    fn mark(&self) -> (u64, u64) {
        (
            self.standing.borrow().epoch,
            self.outages.load(Ordering::Relaxed),
        )
    }

    /// False once the run lost its lock or waited out a database outage since `mark`: another
    /// sender may have taken the claims made before.
    fn still_mine(&self, mark: (u64, u64)) -> bool {
        let s = *self.standing.borrow();
        s.held && (s.epoch, self.outages.load(Ordering::Relaxed)) == mark
    }

    /// The outcome of the server's halt; `Interrupted` if none was recorded.
    fn server_outcome(&self) -> Outcome {
        self.server_halt
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(ServerHalt::outcome))
            .unwrap_or(Outcome::Interrupted)
    }

    /// Ends the run for every worker; the first reason stands.
    fn halt_for_server(&self, why: ServerHalt) {
        if let Ok(mut h) = self.server_halt.lock()
            && h.is_none()
        {
            *h = Some(why);
        }
        self.server_halted.send_replace(true);
    }

    /// Queues what became of delivery `id`, claimed by `me`, for the next group.
    fn record(&self, id: DeliveryId, me: &str, ending: Ending) -> ledger::Receipt {
        let outcome = DeliveryOutcome {
            id,
            worker: me.to_string(),
            result: ending,
            at: Instant::now(),
        };
        match self.recorder.get() {
            Some(r) => r.record(outcome),
            None => ledger::Receipt::closed(),
        }
    }

    /// Records what became of delivery `id` and waits until it is written.
    async fn record_now(
        &self,
        id: DeliveryId,
        me: &str,
        ending: Ending,
    ) -> Result<(), RecordError> {
        self.record(id, me, ending).recorded().await.map(|_| ())
    }

    fn report_progress(&self) {
        self.progress.advance(
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
        );
    }

    /// Sleeps for `d`, or less when a stop is requested.
    async fn nap(&self, d: Duration) {
        self.nap_or(d, std::future::pending()).await;
    }

    /// Sleeps for `d`, or less when a stop is requested or `wake` is ready.
    async fn nap_or(&self, d: Duration, wake: impl std::future::Future<Output = ()>) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.until_stopped() => {}
            _ = wake => {}
        }
    }

    /// Runs a database step, waiting out an outage: nothing is recorded that did not happen,
    /// and what did happen is recorded once the database is back.
    async fn db<T, E, F, Fut>(&self, what: &str, mut step: F) -> Result<T, E>
    where
        E: Outage,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut wait = Duration::from_millis(250);
        loop {
            let e = match step().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(cause) = e.outage() else {
                return Err(e);
            };
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("database unavailable while {what} ({cause}); retrying in {wait:?}");
            self.progress.note(&format!(
                "the {} is unavailable: waiting ({cause})",
                self.store.place()
            ));
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(15));
        }
    }
}

/// An error that may be the database going away, which [`Shared::db`] waits out.
trait Outage {
    fn outage(&self) -> Option<&sqlx::Error>;
}

impl Outage for sqlx::Error {
    fn outage(&self) -> Option<&sqlx::Error> {
        crate::store::is_outage(self).then_some(self)
    }
}

impl Outage for StoreError {
    fn outage(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Sql(e) => e.outage(),
            _ => None,
        }
    }
}

/// Opens one session exactly as the workers will (EHLO, STARTTLS, AUTH), then offers the
/// envelope sender with `MAIL FROM` and takes it back with `RSET`: a server that will refuse
/// the run refuses it here, before anything is frozen or claimed.
pub async fn preflight(
    target: &SmtpTarget,
    hello: &str,
    sender: &lettre::Address,
    limit: Duration,
) -> Result<(), SmtpFailure> {
    let mut conn = Connection::open(target, hello, limit).await?;
    let tried = conn.try_sender(Some(sender)).await;
    conn.quit().await;
    tried
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
        streak: Mutex::new(None),
        outage: Mutex::new(None),
        slowdown: Slowdown::new(SLOWDOWN_HOLD),
        recorder: std::sync::OnceLock::new(),
    });
    // The recorder holds the run's state weakly: once the run is over, it ends.
    let weak = Arc::downgrade(&shared);
    let (recorder, _recording) = Recorder::start(move |group| {
        let weak = weak.clone();
        async move {
            let Some(shared) = weak.upgrade() else {
                return Err(sqlx::Error::PoolClosed);
            };
            let store = &shared.store;
            shared
                .db("recording outcomes", || store.record_outcomes(&group))
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
        match done {
            Ok(Ok(o)) => outcome = worst(outcome, o),
            Ok(Err(e)) => error = Some(e),
            Err(join) => {
                error = Some(SendError::WorkerFailed(join.to_string()));
            }
        }
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

/// London midnight that starts the day containing `now`, in UTC: where the daily cap resets.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&London).date_naive();
    London
        .from_local_datetime(&local.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(now, |d| d.with_timezone(&Utc))
}

async fn worker(shared: Arc<Shared>, n: u32) -> Result<Outcome, SendError> {
    let me = format!("{}:{n}", shared.run_id);
    let mut conn: Option<Connection> = None;
    let mut unrecorded = Unrecorded::default();
    let result = worker_loop(&shared, &me, &mut conn, &mut unrecorded).await;
    if let Some(c) = conn {
        c.quit().await;
    }
    // Whatever ended the worker, what it sent is recorded before the run reports.
    let drained = unrecorded.drain().await;
    let outcome = result?;
    drained?;
    Ok(outcome)
}

async fn worker_loop(
    shared: &Shared,
    me: &str,
    conn: &mut Option<Connection>,
    unrecorded: &mut Unrecorded,
) -> Result<Outcome, SendError> {
    let store = &shared.store;
    let campaign = shared.campaign.id;
    let who = Claimant {
        worker: me,
        sender: shared.sender_id,
    };
    let lease = shared.options.lease.as_secs_f64();
    let batch = i64::from(shared.options.batch);
    loop {
        if let Some(outcome) = shared.stopping() {
            return Ok(outcome);
        }
        if !shared.standing.borrow().held {
            // Without the lock, others would take what this run claims: wait for it.
            let mut standing = shared.standing.clone();
            tokio::select! {
                _ = standing.wait_for(|s| s.held) => {}
                _ = shared.until_stopped() => {}
            }
            continue;
        }
        let mark = shared.mark();
        let claimed = match shared.options.daily_cap {
            None => {
                shared
                    .db("claiming", || store.claim(campaign, who, batch, lease))
                    .await?
            }
            Some(cap) => {
                let since = start_of_day(Utc::now());
                match shared
                    .db("claiming", || {
                        store.claim_within_cap(campaign, who, batch, lease, cap.into(), since)
                    })
                    .await?
                {
                    CapClaim::Claimed(c) => c,
                    CapClaim::CapReached { used } => {
                        if !shared.options.wait_at_cap {
                            return Ok(Outcome::CapReached);
                        }
                        let tomorrow = since + chrono::Duration::hours(25);
                        let next = start_of_day(tomorrow);
                        shared.progress.note(&format!(
                            "daily cap of {cap} reached ({used} today): waiting until {}",
                            next.with_timezone(&London).format("%Y-%m-%d %H:%M %Z")
                        ));
                        let wait = (next - Utc::now())
                            .to_std()
                            .unwrap_or(Duration::from_secs(1));
                        shared.nap(wait.min(Duration::from_secs(60))).await;
                        continue;
                    }
                }
            }
        };
        if !shared.still_mine(mark) {
            // The claim met an outage (or the lock went): a first try may have committed with
            // its reply lost. Give back all this worker holds and claim afresh.
            shared
                .db("giving back claims", || store.release_all(campaign, me))
                .await?;
            continue;
        }
        if claimed.is_empty() {
            match idle(shared).await? {
                Some(outcome) => return Ok(outcome),
                None => continue,
            }
        }
        shared.progress.waiting(None);
        let mut rest = claimed.into_iter();
        let mut stopped = None;
        while let Some(d) = rest.next() {
            // Checked before every message, not every batch: a stop, a pause or a cancel takes
            // effect within the message in hand; a lost lock or an outage leaves the rest of
            // the batch to whoever may have taken it meanwhile.
            stopped = shared.stopping();
            let id = d.id;
            let delivery = if stopped.is_some() || !shared.still_mine(mark) {
                Delivery::GaveBack
            } else {
                deliver(shared, me, conn, unrecorded, d).await?
            };
            match delivery {
                Delivery::Done => {}
                Delivery::GaveBack => {
                    stopped = stopped.or_else(|| shared.stopping());
                    let ids: Vec<DeliveryId> =
                        std::iter::once(id).chain(rest.map(|d| d.id)).collect();
                    shared
                        .db("giving back claims", || store.release(&ids, me))
                        .await?;
                    break;
                }
                // The server failed the session: nobody is charged; the rest goes back, and
                // this worker waits for the server before it claims again.
                Delivery::SessionFailed => {
                    let ids: Vec<DeliveryId> = rest.map(|d| d.id).collect();
                    shared
                        .db("giving back claims", || store.release(&ids, me))
                        .await?;
                    if shared.stopping().is_none() {
                        wait_out_outage(shared, conn).await;
                    }
                    stopped = shared.stopping();
                    break;
                }
            }
        }
        // The batch's records are in before others are told it is through.
        unrecorded.drain().await?;
        shared.batch_done.notify_waiters();
        if let Some(outcome) = stopped {
            return Ok(outcome);
        }
    }
}

/// Nothing was due: the campaign is done, paused or cancelled, or retries are waiting.
async fn idle(shared: &Shared) -> Result<Option<Outcome>, SendError> {
    // Listening before looking, so that a batch another worker finishes meanwhile still wakes us.
    let batch_done = shared.batch_done.notified();
    tokio::pin!(batch_done);
    batch_done.as_mut().enable();
    let store = &shared.store;
    let campaign = shared.campaign.id;
    let status = shared
        .db("reading the campaign", || store.campaign_status(campaign))
        .await?;
    match status {
        Some(CampaignStatus::Paused) => return Ok(Some(Outcome::Paused)),
        Some(CampaignStatus::Cancelled) | None => return Ok(Some(Outcome::Cancelled)),
        _ => {}
    }
    // None when nothing is queued or in flight: the campaign is done.
    let Some(next) = shared
        .db("finding the next due", || store.next_due(campaign))
        .await?
    else {
        return Ok(Some(Outcome::Finished));
    };
    // Retries not yet due, or another sender's claims: look again when the next is due, and
    // say whose claims hold the end of the campaign rather than show an estimate of nothing.
    let holders = shared
        .db("finding whose claims remain", || store.holders(campaign))
        .await?;
    shared
        .progress
        .waiting(waiting_for(&holders, Some(shared.sender_id)).as_deref());
    let wait = (next - Utc::now())
        .to_std()
        .ok()
        .unwrap_or(Duration::from_millis(200))
        .clamp(Duration::from_millis(50), Duration::from_secs(2));
    shared.nap_or(wait, batch_done).await;
    Ok(None)
}

/// "waiting for 67 claims of sender host:pid, lease ends 10:42", when live senders other than
/// `me` hold claims; `None` when nobody else does.
pub fn waiting_for(holders: &[ledger::Holder], me: Option<i32>) -> Option<String> {
    let parts: Vec<String> = holders
        .iter()
        .filter(|h| h.alive && (me.is_none() || h.sender_id != me))
        .map(|h| {
            format!(
                "{} claim(s) of sender {}, lease ends {}",
                h.claims,
                h.name.as_deref().unwrap_or("(unnamed)"),
                h.lease_until.with_timezone(&London).format("%H:%M")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| format!("waiting for {}", parts.join("; ")))
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Sent, failed, skipped or scheduled for a retry: recorded.
    Done,
    /// The run was stopped before it went: the claim is to be given back.
    GaveBack,
    /// The session failed: this claim went back as it was; the rest of the batch goes back
    /// too, and the worker waits out the outage.
    SessionFailed,
}

/// Sends one claimed delivery and records how it went.
async fn deliver(
    shared: &Shared,
    me: &str,
    conn: &mut Option<Connection>,
    unrecorded: &mut Unrecorded,
    d: Claimed,
) -> Result<Delivery, SendError> {
    let store = &shared.store;
    let Some(r) = &d.recipient else {
        let reply = "the reader unsubscribed, bounced or was erased before their turn".into();
        shared
            .record_now(d.id, me, final_status(FinalStatus::Skipped, reply))
            .await?;
        return Ok(Delivery::Done);
    };
    let token = LinkToken::new(r.link_id.clone(), r.link_secret.clone());
    let out =
        match shared
            .personaliser
            .message(&r.email, r.name.as_deref(), Some(&d.topics), &token)
        {
            Ok(out) => out,
            Err(e) => {
                shared
                    .record_now(d.id, me, final_status(FinalStatus::Failed, e.to_string()))
                    .await?;
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.report_progress();
                return Ok(Delivery::Done);
            }
        };
    // A stop while waiting for the throttle: this one has not gone, and goes back.
    let paced = tokio::select! {
        paced = async {
            shared.slowdown.ready().await;
            shared
                .db("waiting for the campaign's pace", || shared.pace.ready())
                .await
        } => paced,
        _ = shared.until_stopped() => return Ok(Delivery::GaveBack),
    };
    paced?;
    // At most so many of this connection's messages may be unrecorded while it sends another.
    unrecorded.make_room().await?;
    let result = match conn {
        Some(c) if c.is_usable() => c.send(&out.envelope, &out.bytes).await,
        _ => match Connection::open(
            &shared.target,
            shared.personaliser.hello_name(),
            shared.options.smtp_timeout,
        )
        .await
        {
            Ok(mut c) => {
                let r = c.send(&out.envelope, &out.bytes).await;
                *conn = Some(c);
                r
            }
            Err(f) => Err(f),
        },
    };
    let failure = match result {
        Ok(reply) => {
            unrecorded.push(shared.record(
                d.id,
                me,
                Ending::Sent {
                    reply,
                    message_id: out.message_id,
                },
            ));
            shared.sent.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut o) = shared.outage.lock() {
                *o = None;
            }
            if let Ok(mut s) = shared.streak.lock() {
                *s = None;
            }
            shared.report_progress();
            return Ok(Delivery::Done);
        }
        Err(f) => f,
    };
    if conn.as_ref().is_some_and(|c| !c.is_usable()) {
        *conn = None;
    }
    match (failure.scope(), failure.is_permanent()) {
        // Not the reader's doing: their claim goes back as it was, attempt uncharged.
        (Scope::Session, permanent) => {
            if let Some(c) = conn.take() {
                c.quit().await;
            }
            let id = [d.id];
            shared
                .db("giving back a claim", || store.release(&id, me))
                .await?;
            if permanent {
                tracing::error!(reply = %redact(&failure.to_string()), "the mail server refused the session");
                shared.halt_for_server(ServerHalt::Refused(failure));
            } else {
                if let Ok(mut o) = shared.outage.lock() {
                    o.get_or_insert_with(Instant::now);
                }
                if failure.is_rate_complaint() {
                    let gap = shared.slowdown.complain(shared.options.rate);
                    shared.progress.note(&format!(
                        "the mail server asks us to slow down ({}): at most one message every {:.1} s for the next {} min",
                        failure.detail(),
                        gap.as_secs_f64(),
                        SLOWDOWN_HOLD.as_secs() / 60
                    ));
                }
                tracing::warn!(reply = %redact(&failure.to_string()), "the mail server is unavailable for now");
            }
            return Ok(Delivery::SessionFailed);
        }
        // Greylisting, a full mailbox: this reader's message, later.
        (Scope::Recipient | Scope::Message, false) => {
            let reply = failure.to_string();
            if d.attempts >= shared.options.max_attempts as i32 {
                let why = format!("gave up after {} attempts: {reply}", d.attempts);
                shared
                    .record_now(d.id, me, final_status(FinalStatus::Failed, why))
                    .await?;
                shared.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                let wait = backoff(shared.options.retry_after, d.attempts);
                let retry = Ending::Retry {
                    reply,
                    retry_in_seconds: wait.as_secs_f64(),
                };
                shared.record_now(d.id, me, retry).await?;
                shared.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
        (Scope::Recipient | Scope::Message, true) => {
            shared
                .record_now(
                    d.id,
                    me,
                    final_status(FinalStatus::Failed, failure.to_string()),
                )
                .await?;
            shared.failed.fetch_add(1, Ordering::Relaxed);
            if failure.is_no_such_mailbox() {
                let code = failure
                    .enhanced()
                    .map(str::to_string)
                    .or_else(|| failure.code().map(|c| c.to_string()))
                    .unwrap_or_default();
                shared
                    .db("recording a bounce", || {
                        store.bounce_after_reply(r.subscriber_id, &code)
                    })
                    .await?;
            } else if let Some(repeated) = count_refusal(shared, &failure) {
                shared
                    .db("pausing the campaign", || {
                        store.set_campaign_status(shared.campaign.id, CampaignStatus::Paused)
                    })
                    .await?;
                shared.halt_for_server(ServerHalt::Repeated(repeated));
            }
        }
    }
    shared.report_progress();
    Ok(Delivery::Done)
}

fn final_status(status: FinalStatus, reply: String) -> Ending {
    Ending::Final { status, reply }
}

/// Counts a permanent refusal that is not about the reader's address; returns it when it is
/// the `max_consecutive_failures`th same refusal in a row.
fn count_refusal(shared: &Shared, failure: &SmtpFailure) -> Option<SmtpFailure> {
    let mut streak = shared.streak.lock().ok()?;
    let n = match streak.as_ref() {
        Some((last, n)) if last.same_as(failure) => n + 1,
        _ => 1,
    };
    *streak = Some((failure.clone(), n));
    (n >= shared.options.max_consecutive_failures).then(|| failure.clone())
}

/// The server failed for now: wait, probing it with a session like a sender's (up to `MAIL
/// FROM` and `RSET`) with growing pauses, until it answers, the run is stopped, or the outage
/// has lasted `give_up_after`. A working probe's session is kept for the next message.
async fn wait_out_outage(shared: &Shared, conn: &mut Option<Connection>) {
    let mut probe = 1;
    loop {
        let since = shared
            .outage
            .lock()
            .ok()
            .and_then(|o| *o)
            .unwrap_or_else(Instant::now);
        let wait = probe_wait(shared.options.retry_after, probe);
        shared.progress.note(&format!(
            "the mail server is unavailable (for {} s so far): nobody is charged an attempt; probing again in {:.1} s",
            since.elapsed().as_secs(),
            wait.as_secs_f64()
        ));
        shared.nap(wait).await;
        if shared.stopping().is_some() {
            return;
        }
        let result = match Connection::open(
            &shared.target,
            shared.personaliser.hello_name(),
            shared.options.smtp_timeout,
        )
        .await
        {
            Ok(mut c) => match c.try_sender(Some(shared.personaliser.sender())).await {
                Ok(()) => {
                    *conn = Some(c);
                    Ok(())
                }
                Err(f) => {
                    c.quit().await;
                    Err(f)
                }
            },
            Err(f) => Err(f),
        };
        match result {
            Ok(()) => {
                shared
                    .progress
                    .note("the mail server answers again: sending");
                return;
            }
            Err(f) if f.is_permanent() => {
                shared.halt_for_server(ServerHalt::Refused(f));
                return;
            }
            Err(f) => {
                if since.elapsed() >= shared.options.give_up_after {
                    shared.halt_for_server(ServerHalt::GaveUp(f));
                    return;
                }
                probe += 1;
            }
        }
    }
}

/// `base` × 2^(attempt−1), at most six hours, with ±25% jitter so retries do not arrive at the
/// server together.
pub fn backoff(base: Duration, attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 16) as u32 - 1;
    let plain = base
        .saturating_mul(1 << exp)
        .min(Duration::from_secs(6 * 3600));
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = 0.75 + (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5;
    plain.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter() {
        let base = Duration::from_secs(60);
        for (attempt, plain) in [(1, 60.0), (2, 120.0), (3, 240.0), (10, 30720.0)] {
            let plain: f64 = f64::min(plain, 21600.0);
            let d = backoff(base, attempt).as_secs_f64();
            assert!(
                d >= plain * 0.75 && d <= plain * 1.25,
                "attempt {attempt}: {d} s"
            );
        }
    }

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
