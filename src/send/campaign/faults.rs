//! When the mail server or the database fails: what ends a run on the server's account, the
//! database outages waited out, and the probes of a server that is down (how long each waits:
//! [`crate::retry`]).

use std::time::{Duration, Instant};

use super::Outcome;
use super::worker::Shared;
use crate::mail::smtp::{Connection, SmtpFailure, SmtpTarget};
use crate::store::StoreError;

/// Why the run ends on the server's account.
#[derive(Debug, Clone)]
pub(super) enum ServerHalt {
    Refused(SmtpFailure),
    Repeated(SmtpFailure),
    GaveUp(SmtpFailure),
}

/// After a server's rate complaint the pace stays lowered this long.
pub(super) const SLOWDOWN_HOLD: Duration = Duration::from_secs(600);

/// The longest wait between two probes of a server that is down.
pub(super) const PROBE_CAP: Duration = Duration::from_secs(300);

/// Waits between probes of a server that is down: from `base`, doubling, at most
/// [`PROBE_CAP`], with the retries' jitter.
pub fn probe_wait(base: Duration, probe: i32) -> Duration {
    crate::retry::delivery(base, probe).min(PROBE_CAP)
}

impl ServerHalt {
    /// What the run reports when it ends for this reason.
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            ServerHalt::Refused(_) => Outcome::Refused,
            ServerHalt::Repeated(_) => Outcome::Paused,
            ServerHalt::GaveUp(_) => Outcome::ServerUnavailable,
        }
    }

    pub(super) fn failure(&self) -> &SmtpFailure {
        match self {
            ServerHalt::Refused(f) | ServerHalt::Repeated(f) | ServerHalt::GaveUp(f) => f,
        }
    }
}

/// An error that may be the database going away, which [`Shared::db`] waits out.
pub(super) trait Outage {
    /// The database's error underneath, when there is one.
    fn sql(&self) -> Option<&sqlx::Error>;

    fn outage(&self) -> Option<&sqlx::Error> {
        self.sql().filter(|e| crate::store::is_outage(e))
    }
}

impl Outage for sqlx::Error {
    fn sql(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

impl Outage for StoreError {
    fn sql(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Sql(e) => Some(e),
            _ => None,
        }
    }
}

/// How many times in a row [`Shared::db`] runs a statement again that PostgreSQL rolled back.
pub(super) const CONFLICT_RETRIES: u32 = 5;

/// A deadlock or a serialization failure (class 40): the statement was rolled back whole, and
/// running it again is safe.
pub(super) fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("40")))
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

/// Counts a permanent refusal that is not about the reader's address; returns it when it is
/// the `max_consecutive_failures`th same refusal in a row.
pub(super) fn count_refusal(shared: &Shared, failure: &SmtpFailure) -> Option<SmtpFailure> {
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
pub(super) async fn wait_out_outage(shared: &Shared, conn: &mut Option<Connection>) {
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
