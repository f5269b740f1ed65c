//! A running sender's presence in the database, and what the database tells it.
//!
//! Each run registers in `senders` and holds a session-level advisory lock on a connection of
//! its own for as long as it runs. PostgreSQL releases the lock when that connection goes away,
//! so a sender that crashes or is killed is known to be gone at once and its claims are taken
//! by the next `send` without waiting for their lease. The same connection `LISTEN`s for
//! campaign status changes, so `pause` and `cancel` reach the workers within the message in
//! hand.
//!
//! Should the connection be lost (a database outage, a network cut), the lock is presumed
//! lost: the run's standing changes epoch, workers stop using the claims they hold (others may
//! take them), and the lock is taken again once the database is back.

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::store::Store;
use crate::store::ledger::{CampaignId, CampaignStatus, SenderInfo};
use crate::store::sender::SenderSession;

/// How long a lease renewal or a check of the lock's connection may take before the database
/// is taken to be out of reach.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the run holds its lock now, and how many times it has lost it. A claim made under
/// one epoch is not acted on under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub held: bool,
    pub epoch: u64,
}

/// Someone asked the campaign to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    Paused,
    Cancelled,
}

pub struct Presence {
    pub id: i32,
    pub standing: watch::Receiver<Standing>,
    pub halt: watch::Receiver<Option<Halt>>,
    end: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Presence {
    /// Registers the run and takes its lock; the workers start after this. While it runs, the
    /// leases of its claims are renewed every third of `lease`.
    pub async fn start(
        store: &Store,
        info: SenderInfo,
        lease: Duration,
    ) -> Result<Self, sqlx::Error> {
        let mut session = store.sender_session().await?;
        store.forget_departed_senders().await?;
        let id = session.register(&info).await?;
        let pid = session.backend_pid().await?;
        let (standing_tx, standing) = watch::channel(Standing {
            held: true,
            epoch: 0,
        });
        let (halt_tx, halt) = watch::channel(None);
        // A pause may have come between the campaign's preparation and our LISTEN.
        read_status(&mut session, info.campaign_id, &halt_tx).await?;
        let (end_tx, end_rx) = oneshot::channel();
        let keeper = Keeper {
            id,
            pid,
            campaign_id: info.campaign_id,
            store: store.clone(),
            lease,
            standing: standing_tx,
            halt: halt_tx,
        };
        let task = tokio::spawn(keeper.run(session, end_rx));
        Ok(Self {
            id,
            standing,
            halt,
            end: Some(end_tx),
            task: Some(task),
        })
    }

    /// Ends the run's presence: the lock is released and, when no claims are left, the row goes.
    pub async fn finish(mut self, store: &Store) -> Result<(), sqlx::Error> {
        if let Some(end) = self.end.take() {
            let _ = end.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        store.forget_sender(self.id).await
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        // A run that ends by an error still lets go of its lock.
        if let Some(end) = self.end.take() {
            let _ = end.send(());
        }
    }
}

async fn read_status(
    session: &mut SenderSession,
    campaign_id: CampaignId,
    halt: &watch::Sender<Option<Halt>>,
) -> Result<(), sqlx::Error> {
    match session.campaign_status(campaign_id).await? {
        Some(CampaignStatus::Paused) => {
            halt.send_replace(Some(Halt::Paused));
        }
        Some(CampaignStatus::Cancelled) | None => {
            halt.send_replace(Some(Halt::Cancelled));
        }
        Some(CampaignStatus::Sending | CampaignStatus::Finished) => {}
    }
    Ok(())
}

/// The task that holds the lock, listens, and takes the lock again after losing it.
struct Keeper {
    id: i32,
    /// The backend that holds (or last held) the lock.
    pid: i32,
    campaign_id: CampaignId,
    /// The run's store, for renewing leases (not the lock's connection, which is listening) and
    /// for opening that connection again.
    store: Store,
    lease: Duration,
    standing: watch::Sender<Standing>,
    halt: watch::Sender<Option<Halt>>,
}

impl Keeper {
    async fn run(mut self, session: SenderSession, mut end: oneshot::Receiver<()>) {
        let mut session = Some(session);
        let mut waits = crate::retry::sender_lock();
        let mut renew = tokio::time::interval(
            (self.lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(5)),
        );
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(s) = session.as_mut() else {
                tokio::select! {
                    _ = &mut end => return,
                    _ = tokio::time::sleep(waits.next().unwrap_or(Duration::from_secs(5))) => {}
                }
                // No renewing without the lock: the claims may be another's by now.
                match self.reattach().await {
                    Ok(s) => {
                        session = Some(s);
                        self.standing.send_modify(|s| s.held = true);
                        tracing::info!(sender = self.id, "sender lock taken again");
                        waits = crate::retry::sender_lock();
                    }
                    Err(e) => {
                        tracing::warn!(sender = self.id, "cannot take the sender lock again: {e}");
                    }
                }
                continue;
            };
            let lost = tokio::select! {
                _ = renew.tick() => {
                    let renewed = tokio::time::timeout(
                        CHECK_TIMEOUT,
                        self.store.renew_leases(
                            self.campaign_id,
                            self.id,
                            self.lease.as_secs_f64(),
                        ),
                    )
                    .await;
                    if !matches!(renewed, Ok(Ok(_))) {
                        tracing::warn!(sender = self.id, "cannot renew the leases now");
                    }
                    // Across a cut network no reset arrives, and the connection would look
                    // alive while the server has dropped it and its lock: ask it.
                    let alive =
                        tokio::time::timeout(CHECK_TIMEOUT, s.backend_pid())
                            .await;
                    !matches!(alive, Ok(Ok(_)))
                }
                _ = &mut end => {
                    if let Some(s) = session.take() {
                        s.close().await;
                    }
                    return;
                }
                n = s.next_notice() => match n {
                    Ok(Some(n)) if n.is_about(self.campaign_id) => {
                        read_status(s, self.campaign_id, &self.halt).await.is_err()
                    }
                    Ok(Some(_)) => false,
                    Ok(None) | Err(_) => true,
                }
            };
            if lost {
                tracing::warn!(
                    sender = self.id,
                    "lost the connection holding the sender lock"
                );
                self.standing.send_modify(|s| {
                    s.held = false;
                    s.epoch += 1;
                });
                // The connection is gone already; dropping the session lets go of the rest.
                session = None;
            }
        }
    }

    /// A new connection, the lock taken on it, and the campaign's status read afresh (a pause
    /// may have been missed while away).
    async fn reattach(&mut self) -> Result<SenderSession, sqlx::Error> {
        let mut s = self.store.sender_session().await?;
        for _ in 0..20 {
            if let Some(pid) = s.relock(self.id).await? {
                self.pid = pid;
                read_status(&mut s, self.campaign_id, &self.halt).await?;
                return Ok(s);
            }
            // Our former session still holds it: the server has not noticed yet that it is
            // gone. End it, rather than wait for TCP keepalive.
            s.end_stale_session(self.id, self.pid).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(sqlx::Error::Protocol(format!(
            "another session holds the lock of sender {}",
            self.id
        )))
    }
}
