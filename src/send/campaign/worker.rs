//! The workers: each with its own SMTP connection, claims a batch from the ledger, waits for
//! the campaign's pace, and hands each delivery to `deliver` (which sends it and records the
//! outcome); what they share is [`Shared`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use tokio::sync::watch;

use super::super::ledger::{Receipt, RecordError, Recorder, Unrecorded};
use super::super::pace::CampaignPace;
use super::super::personalise::Personaliser;
use super::super::presence::{Halt, Standing};
use super::super::throttle::Slowdown;
use super::deliver::{Delivery, Written, deliver, prepare};
use super::faults::{CONFLICT_RETRIES, Outage, ServerHalt, is_conflict, wait_out_outage};
use super::{Outcome, Progress, SendError, SendOptions, StopReceiver};
use crate::mail::smtp::{Connection, SmtpFailure, SmtpTarget};
use crate::store::Store;
use crate::store::ledger::{
    self, Campaign, CampaignStatus, CapClaim, Claimant, DeliveryId, DeliveryOutcome, Ending,
};

/// Everything the workers share.
pub(super) struct Shared {
    pub(super) store: Store,
    pub(super) campaign: Campaign,
    pub(super) options: SendOptions,
    pub(super) personaliser: Personaliser,
    pub(super) target: SmtpTarget,
    /// The campaign's pace, shared with every other sender through the database. (No local
    /// limiter in front of it: one would keep workers from booking their slots ahead, and a
    /// slot nobody booked in time is lost.)
    pub(super) pace: CampaignPace,
    pub(super) stop: StopReceiver,
    pub(super) progress: Arc<dyn Progress>,
    pub(super) sent: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) retried: AtomicU64,
    /// Told each time a worker has been through a claimed batch: workers waiting on another's
    /// claims look again then, not when the lease would run out.
    pub(super) batch_done: tokio::sync::Notify,
    pub(super) run_id: String,
    /// This run's row in `senders`: its claims carry it.
    pub(super) sender_id: i32,
    /// Whether this run holds its liveness lock, from its [`Presence`].
    pub(super) standing: watch::Receiver<Standing>,
    /// `pause` or `cancel`, as soon as the database tells.
    pub(super) halt: watch::Receiver<Option<Halt>>,
    /// Database outages waited out so far: a batch claimed before one is not trusted after it.
    pub(super) outages: AtomicU64,
    /// Set once the run must end for a reason of the server's (see [`ServerHalt`]); every worker
    /// gives back its claims.
    pub(super) server_halt: Mutex<Option<ServerHalt>>,
    pub(super) server_halted: watch::Sender<bool>,
    /// Set once a worker failed: the others stop as on a stop request, so that the run ends
    /// with the failure instead of waiting for the failed worker's claims, which nobody works.
    pub(super) worker_failed: watch::Sender<bool>,
    /// The last permanent refusal of a reader's message and how many readers in a row got it.
    pub(super) streak: Mutex<Option<(SmtpFailure, u32)>>,
    /// Since when no message was accepted while the server failed for now.
    pub(super) outage: Mutex<Option<Instant>>,
    pub(super) slowdown: Slowdown,
    /// Where every worker's outcomes go, to be written in groups (set once the run starts).
    pub(super) recorder: std::sync::OnceLock<Recorder>,
}

impl Shared {
    /// Why the run must stop now, if it must.
    pub(super) fn stopping(&self) -> Option<Outcome> {
        match *self.halt.borrow() {
            Some(Halt::Paused) => return Some(Outcome::Paused),
            Some(Halt::Cancelled) => return Some(Outcome::Cancelled),
            None => {}
        }
        if *self.server_halted.borrow() {
            return Some(self.server_outcome());
        }
        let failed = *self.worker_failed.borrow();
        (failed || *self.stop.borrow()).then_some(Outcome::Interrupted)
    }

    /// Ready when the run must stop (SIGINT/SIGTERM, `pause`, `cancel`).
    pub(super) async fn until_stopped(&self) {
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
        let mut failed = self.worker_failed.subscribe();
        tokio::select! {
            _ = stopped => {}
            _ = halted => {}
            _ = server.wait_for(|h| *h) => {}
            _ = failed.wait_for(|f| *f) => {}
        }
    }

    /// The point a claim was made at: what it takes for the claim to still be this run's alone.
    pub(super) fn mark(&self) -> (u64, u64) {
        (
            self.standing.borrow().epoch,
            self.outages.load(Ordering::Relaxed),
        )
    }

    /// False once the run lost its lock or waited out a database outage since `mark`: another
    /// sender may have taken the claims made before.
    pub(super) fn still_mine(&self, mark: (u64, u64)) -> bool {
        let s = *self.standing.borrow();
        s.held && (s.epoch, self.outages.load(Ordering::Relaxed)) == mark
    }

    /// The outcome of the server's halt; `Interrupted` if none was recorded.
    pub(super) fn server_outcome(&self) -> Outcome {
        self.server_halt
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(ServerHalt::outcome))
            .unwrap_or(Outcome::Interrupted)
    }

    /// Ends the run for every worker; the first reason stands.
    pub(super) fn halt_for_server(&self, why: ServerHalt) {
        if let Ok(mut h) = self.server_halt.lock()
            && h.is_none()
        {
            *h = Some(why);
        }
        self.server_halted.send_replace(true);
    }

    /// Whether a message may go now without waiting for its turn: no limit on the campaign's
    /// pace for now and no slowdown after a complaint. The next message is then written ahead
    /// and its envelope sent with the end of the one before.
    pub(super) fn may_go_at_once(&self) -> bool {
        !self.slowdown.is_lowered() && self.pace.is_unlimited_now()
    }

    /// Queues what became of delivery `id`, claimed by `me`, for the next group.
    pub(super) fn record(&self, id: DeliveryId, me: &str, ending: Ending) -> Receipt {
        let outcome = DeliveryOutcome {
            id,
            worker: me.to_string(),
            result: ending,
            at: Instant::now(),
        };
        match self.recorder.get() {
            Some(r) => r.record(outcome),
            None => Receipt::closed(),
        }
    }

    /// Records what became of delivery `id` and waits until it is written.
    pub(super) async fn record_now(
        &self,
        id: DeliveryId,
        me: &str,
        ending: Ending,
    ) -> Result<(), RecordError> {
        self.record(id, me, ending).recorded().await.map(|_| ())
    }

    pub(super) fn report_progress(&self) {
        self.progress.advance(
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
        );
    }

    /// Sleeps for `d`, or less when a stop is requested.
    pub(super) async fn nap(&self, d: Duration) {
        self.nap_or(d, std::future::pending()).await;
    }

    /// Sleeps for `d`, or less when a stop is requested or `wake` is ready.
    pub(super) async fn nap_or(&self, d: Duration, wake: impl std::future::Future<Output = ()>) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.until_stopped() => {}
            _ = wake => {}
        }
    }

    /// Runs a database step (one statement), waiting out an outage: nothing is recorded that
    /// did not happen, and what did happen is recorded once the database is back. A statement
    /// PostgreSQL rolled back to break a deadlock or a serialization conflict is run again
    /// at once, a few times: it changed nothing.
    pub(super) async fn db<T, E, F, Fut>(&self, what: &str, mut step: F) -> Result<T, E>
    where
        E: Outage,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut waits = crate::retry::database_outage();
        let mut conflicts = 0;
        loop {
            let e = match step().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if let Some(cause) = e.sql().filter(|e| is_conflict(e))
                && conflicts < CONFLICT_RETRIES
            {
                conflicts += 1;
                tracing::warn!(
                    "the database rolled back a statement while {what} ({cause}); running it again"
                );
                continue;
            }
            let Some(cause) = e.outage() else {
                return Err(e);
            };
            self.outages.fetch_add(1, Ordering::Relaxed);
            let wait = waits.next().unwrap_or(Duration::from_secs(15));
            tracing::warn!("database unavailable while {what} ({cause}); retrying in {wait:?}");
            self.progress.note(&format!(
                "the {} is unavailable: waiting ({cause})",
                self.store.place()
            ));
            tokio::time::sleep(wait).await;
        }
    }
}

/// London midnight that starts the day containing `now`, in UTC: where the daily cap resets.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&London).date_naive();
    London
        .from_local_datetime(&local.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(now, |d| d.with_timezone(&Utc))
}

pub(super) async fn worker(shared: Arc<Shared>, n: u32) -> Result<Outcome, SendError> {
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
    // Whether the batch just worked through may still have outcomes being written: they are
    // waited for (and the others told the batch is through) while the next batch is claimed.
    let mut batch_open = false;
    loop {
        if let Some(outcome) = shared.stopping() {
            if batch_open {
                end_batch(shared, unrecorded).await?;
            }
            return Ok(outcome);
        }
        if !shared.standing.borrow().held {
            if std::mem::take(&mut batch_open) {
                end_batch(shared, unrecorded).await?;
            }
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
                let claim = shared.db("claiming", || store.claim(campaign, who, batch, lease));
                if std::mem::take(&mut batch_open) {
                    // The claim takes only queued rows: those whose outcomes are still on
                    // their way are this worker's, `sending`, and stay out of it. What bounds
                    // a crash's double sends is `Unrecorded::make_room` before each message.
                    let (ended, claimed) = tokio::join!(end_batch(shared, unrecorded), claim);
                    ended?;
                    claimed?
                } else {
                    claim.await?
                }
            }
            Some(cap) => {
                // The cap counts what was sent today: the last batch's outcomes first.
                if std::mem::take(&mut batch_open) {
                    end_batch(shared, unrecorded).await?;
                }
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
        // The message to go after the one in hand, written already when the pace lets it go
        // at once: its envelope goes with the end of the one before (`Connection::send_when`).
        let mut ahead: Option<Written> = None;
        let mut stopped;
        loop {
            // Checked before every message, not every batch: a stop, a pause or a cancel takes
            // effect within the message in hand; a lost lock or an outage leaves the rest of
            // the batch to whoever may have taken it meanwhile.
            stopped = shared.stopping();
            let mut give_back = stopped.is_some() || !shared.still_mine(mark);
            let current = match ahead.take() {
                Some(w) => w,
                None => {
                    let Some(d) = rest.next() else { break };
                    if give_back {
                        give_back_unsent(shared, me, conn, [d.id], &mut rest).await?;
                        break;
                    }
                    match prepare(shared, me, d, false).await? {
                        Some(w) => w,
                        None => continue,
                    }
                }
            };
            if !give_back && shared.may_go_at_once() {
                for d in rest.by_ref() {
                    if let Some(w) = prepare(shared, me, d, true).await? {
                        ahead = Some(w);
                        break;
                    }
                }
                // Readers passed over on the way were recorded, which may have waited out an
                // outage of the database or a stop: asked again before the message goes.
                stopped = shared.stopping();
                give_back = stopped.is_some() || !shared.still_mine(mark);
            }
            if give_back {
                let unsent = std::iter::once(current.id).chain(ahead.take().map(|w| w.id));
                give_back_unsent(shared, me, conn, unsent, &mut rest).await?;
                break;
            }
            let id = current.id;
            match deliver(shared, me, conn, unrecorded, current, ahead.as_ref()).await? {
                Delivery::Done => {}
                Delivery::GaveBack => {
                    stopped = stopped.or_else(|| shared.stopping());
                    let unsent = std::iter::once(id).chain(ahead.take().map(|w| w.id));
                    give_back_unsent(shared, me, conn, unsent, &mut rest).await?;
                    break;
                }
                // The server failed the session: nobody is charged; the rest goes back, and
                // this worker waits for the server before it claims again.
                Delivery::SessionFailed => {
                    let unsent = ahead.take().map(|w| w.id);
                    give_back_unsent(shared, me, conn, unsent, &mut rest).await?;
                    if shared.stopping().is_none() {
                        wait_out_outage(shared, conn).await;
                    }
                    stopped = shared.stopping();
                    break;
                }
            }
        }
        if let Some(outcome) = stopped {
            end_batch(shared, unrecorded).await?;
            return Ok(outcome);
        }
        batch_open = true;
    }
}

/// Gives back the claims of a batch that will not go: `first` (taken from the batch already)
/// and the rest. A session told of one's envelope is closed, so that the server takes nothing.
async fn give_back_unsent(
    shared: &Shared,
    me: &str,
    conn: &mut Option<Connection>,
    first: impl IntoIterator<Item = DeliveryId>,
    rest: &mut impl Iterator<Item = ledger::Claimed>,
) -> Result<(), SendError> {
    forget_envelope_ahead(conn);
    let ids: Vec<DeliveryId> = first.into_iter().chain(rest.map(|d| d.id)).collect();
    shared
        .db("giving back claims", || shared.store.release(&ids, me))
        .await?;
    Ok(())
}

/// Closes a session waiting for a message that will not go (its envelope went ahead with the
/// last message's end): hung up on, without QUIT, the server drops that transaction.
fn forget_envelope_ahead(conn: &mut Option<Connection>) {
    if conn.as_ref().is_some_and(Connection::awaits_message) {
        *conn = None;
    }
}

/// Waits until the batch's outcomes are recorded, then tells the workers waiting on others'
/// claims that it is through: they look again at what is due.
async fn end_batch(shared: &Shared, unrecorded: &mut Unrecorded) -> Result<(), RecordError> {
    unrecorded.drain().await?;
    shared.batch_done.notify_waiters();
    Ok(())
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
