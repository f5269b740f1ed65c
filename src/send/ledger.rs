//! What `send` does with the delivery ledger beyond single statements (those are in
//! [`crate::store::ledger`]): the group commit of outcomes.
//!
//! Every worker's outcomes go to one [`Recorder`], which writes whatever has arrived while the
//! previous group was being written in one statement: under load, a few milliseconds' worth of
//! messages from every connection of the process share one transaction (and one flush to
//! disk); alone, a message is recorded as soon as it comes. A worker does not wait for its
//! message's record before the next message is made and paced, only before the one after
//! is sent ([`UNRECORDED_PER_CONNECTION`]): that is what bounds the messages a `kill -9` can
//! leave sent but unrecorded, to go again on the next run.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::ledger::{DeliveryId, DeliveryOutcome};

/// Most messages a connection may have accepted by the server and not yet recorded when it
/// starts sending another. A `kill -9` can therefore leave at most this many plus the one in
/// flight per connection sent but not recorded: `(UNRECORDED_PER_CONNECTION + 1) ×
/// concurrency` messages that go twice on the next run.
pub const UNRECORDED_PER_CONNECTION: usize = 1;

/// Most outcomes written by one statement.
const GROUP: usize = 512;

/// A statement that failed for a reason other than an outage, told to every worker whose
/// outcome it carried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot record the outcome of deliveries in the ledger")]
pub struct RecordError(#[source] pub Arc<sqlx::Error>);

struct Pending {
    outcome: DeliveryOutcome,
    done: oneshot::Sender<Result<bool, RecordError>>,
}

/// The process's one writer of delivery outcomes.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Pending>,
}

/// The answer to one outcome: whether it was recorded (false when the claim was no longer the
/// worker's), once its group is committed.
pub struct Receipt(oneshot::Receiver<Result<bool, RecordError>>);

impl Receipt {
    /// A receipt for an outcome nobody will write (the run has no recorder).
    pub fn closed() -> Self {
        Self(oneshot::channel().1)
    }

    pub async fn recorded(self) -> Result<bool, RecordError> {
        self.0.await.unwrap_or_else(|_| {
            Err(RecordError(Arc::new(sqlx::Error::Protocol(
                "the recorder stopped before the outcome was written".into(),
            ))))
        })
    }
}

impl Recorder {
    /// Starts the recorder's task; `write` runs one group's statement (waiting out an outage
    /// of the database as every other step does). The task ends when every `Recorder` clone
    /// is dropped and the queue is empty.
    pub fn start<W, F>(mut write: W) -> (Self, tokio::task::JoinHandle<()>)
    where
        W: FnMut(Vec<DeliveryOutcome>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<DeliveryId>, sqlx::Error>> + Send,
    {
        let (queue, mut incoming) = mpsc::unbounded_channel::<Pending>();
        let task = tokio::spawn(async move {
            let mut group = Vec::with_capacity(GROUP);
            while incoming.recv_many(&mut group, GROUP).await > 0 {
                let (outcomes, waiting): (Vec<_>, Vec<_>) =
                    group.drain(..).map(|p| (p.outcome, p.done)).unzip();
                let ids: Vec<DeliveryId> = outcomes.iter().map(|o| o.id).collect();
                match write(outcomes).await {
                    Ok(recorded) => {
                        for (id, done) in ids.into_iter().zip(waiting) {
                            let _ = done.send(Ok(recorded.contains(&id)));
                        }
                    }
                    Err(e) => {
                        let e = RecordError(Arc::new(e));
                        for done in waiting {
                            let _ = done.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        (Self { queue }, task)
    }

    /// Queues an outcome for the next group.
    pub fn record(&self, outcome: DeliveryOutcome) -> Receipt {
        let (done, answer) = oneshot::channel();
        // A closed queue drops `done`, which the receipt reports as an error.
        let _ = self.queue.send(Pending { outcome, done });
        Receipt(answer)
    }
}

/// One connection's messages accepted but not yet known to be recorded, oldest first.
#[derive(Default)]
pub struct Unrecorded(VecDeque<Receipt>);

impl Unrecorded {
    pub fn push(&mut self, receipt: Receipt) {
        self.0.push_back(receipt);
    }

    /// Waits until no more than `UNRECORDED_PER_CONNECTION` remain: before sending another.
    pub async fn make_room(&mut self) -> Result<(), RecordError> {
        while self.0.len() > UNRECORDED_PER_CONNECTION {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    /// Waits until every one is recorded: at the end of a batch, and before the worker ends.
    pub async fn drain(&mut self) -> Result<(), RecordError> {
        while !self.0.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<(), RecordError> {
        if let Some(r) = self.0.pop_front() {
            r.recorded().await?;
        }
        Ok(())
    }
}
