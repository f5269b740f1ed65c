//! What `send` does with the delivery ledger beyond single statements (those are in
//! [`crate::store::ledger`]): the group commit of outcomes.
//!
//! Every worker's outcomes go to one [`Recorder`], which writes them in groups, one statement
//! and one transaction (one flush to disk) each, on a connection it keeps. A group is written
//! once it holds one outcome per connection, once a worker waits for one of its outcomes, or
//! after [`LINGER`]: under load, a few milliseconds' worth of messages from every connection
//! of the process; over one connection, each message as it comes. (A worker waiting for an
//! outcome whose group is being written already hurries nothing: the next group fills.) A worker does not wait for
//! its message's record before the next message is made, paced and sent, only before the
//! server is asked to take the one after (the end of its `DATA`; [`UNRECORDED_PER_CONNECTION`]):
//! that is what bounds the messages a `kill -9` can leave sent but unrecorded, to go again on
//! the next run, and it is also when a group is written at the latest, so filling groups never
//! holds a connection back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::ledger::{DeliveryId, DeliveryOutcome};

/// Most messages a connection may have accepted by the server and not yet recorded when it
/// starts sending another. A `kill -9` can therefore leave at most this many plus the one in
/// flight per connection sent but not recorded: `(UNRECORDED_PER_CONNECTION + 1) ×
/// concurrency` messages that go twice on the next run.
pub const UNRECORDED_PER_CONNECTION: usize = 1;

/// Most outcomes written by one statement.
const GROUP: usize = 512;

/// Longest a group waits to fill before it is written though nobody needs it yet.
const LINGER: Duration = Duration::from_millis(5);

/// A statement that failed for a reason other than an outage, told to every worker whose
/// outcome it carried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot record the outcome of deliveries in the ledger")]
pub struct RecordError(#[source] pub Arc<sqlx::Error>);

struct Pending {
    outcome: DeliveryOutcome,
    done: oneshot::Sender<Result<bool, RecordError>>,
    /// Set once its group is being written, shared with the receipt.
    taken: Arc<AtomicBool>,
}

/// The process's one writer of delivery outcomes.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Pending>,
    hurry: Arc<Notify>,
}

/// The answer to one outcome: whether it was recorded (false when the claim was no longer the
/// worker's), once its group is committed.
pub struct Receipt {
    answer: oneshot::Receiver<Result<bool, RecordError>>,
    hurry: Option<Arc<Notify>>,
    /// Whether its outcome's group is being written already: nothing to hurry then.
    taken: Arc<AtomicBool>,
}

impl Receipt {
    /// A receipt for an outcome nobody will write (the run has no recorder).
    pub fn closed() -> Self {
        Self {
            answer: oneshot::channel().1,
            hurry: None,
            taken: Arc::default(),
        }
    }

    /// Waits for the outcome's group to be committed; a group still filling is written now.
    /// Dropped before it is done, it leaves the receipt as it was; once it has answered, the
    /// receipt is spent.
    pub async fn recorded(&mut self) -> Result<bool, RecordError> {
        if let Ok(answer) = self.answer.try_recv() {
            return answer;
        }
        // Hurried only while its group is still filling: a word to hurry the group being
        // written would be kept, and write the next one before it filled.
        if let Some(hurry) = &self.hurry
            && !self.taken.load(Ordering::Acquire)
        {
            hurry.notify_one();
        }
        (&mut self.answer).await.unwrap_or_else(|_| {
            Err(RecordError(Arc::new(sqlx::Error::Protocol(
                "the recorder stopped before the outcome was written".into(),
            ))))
        })
    }
}

impl Recorder {
    /// Starts the recorder's task; `write` runs one group's statement (waiting out an outage
    /// of the database as every other step does). A group is written once it holds `fill`
    /// outcomes (one per connection), once a worker waits for one of them, or after
    /// [`LINGER`], whichever comes first. The task ends when every `Recorder` clone is dropped
    /// and the queue is empty.
    pub fn start<W, F>(fill: usize, mut write: W) -> (Self, tokio::task::JoinHandle<()>)
    where
        W: FnMut(Vec<DeliveryOutcome>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<DeliveryId>, sqlx::Error>> + Send,
    {
        let (queue, mut incoming) = mpsc::unbounded_channel::<Pending>();
        let hurry = Arc::new(Notify::new());
        let fill = fill.clamp(1, GROUP);
        let wanted = hurry.clone();
        let task = tokio::spawn(async move {
            let mut group = Vec::with_capacity(GROUP);
            while incoming.recv_many(&mut group, GROUP).await > 0 {
                let until = tokio::time::Instant::now() + LINGER;
                while group.len() < fill {
                    let room = GROUP - group.len();
                    tokio::select! {
                        biased;
                        _ = wanted.notified() => break,
                        n = incoming.recv_many(&mut group, room) => if n == 0 { break },
                        _ = tokio::time::sleep_until(until) => break,
                    }
                }
                let (outcomes, waiting): (Vec<_>, Vec<_>) = group
                    .drain(..)
                    .map(|p| {
                        p.taken.store(true, Ordering::Release);
                        (p.outcome, p.done)
                    })
                    .unzip();
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
        (Self { queue, hurry }, task)
    }

    /// Queues an outcome for the next group.
    pub fn record(&self, outcome: DeliveryOutcome) -> Receipt {
        let (done, answer) = oneshot::channel();
        let taken = Arc::new(AtomicBool::new(false));
        // A closed queue drops `done`, which the receipt reports as an error.
        let _ = self.queue.send(Pending {
            outcome,
            done,
            taken: taken.clone(),
        });
        Receipt {
            answer,
            hurry: Some(self.hurry.clone()),
            taken,
        }
    }
}

/// One connection's messages accepted but not yet known to be recorded, oldest first.
#[derive(Default)]
pub struct Unrecorded(VecDeque<Receipt>);

impl Unrecorded {
    pub fn push(&mut self, receipt: Receipt) {
        self.0.push_back(receipt);
    }

    /// Waits until no more than `UNRECORDED_PER_CONNECTION` remain: before the server is asked
    /// to take another. Dropped unfinished (the message failed first), it forgets no receipt.
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
        if let Some(r) = self.0.front_mut() {
            // Out of the queue once answered, well or not, and only then.
            let answer = r.recorded().await;
            self.0.pop_front();
            answer?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::sync::mpsc;
    use tokio::time;

    use super::*;
    use crate::store::ledger::Ending;

    /// A recorder whose groups are told to the test: when each was written (in the paused
    /// clock's time) and which outcomes it held.
    fn recorder(fill: usize) -> (Recorder, mpsc::UnboundedReceiver<(time::Instant, Vec<i64>)>) {
        let (tx, groups) = mpsc::unbounded_channel();
        let (recorder, _task) = Recorder::start(fill, move |group: Vec<DeliveryOutcome>| {
            let tx = tx.clone();
            async move {
                let ids: Vec<DeliveryId> = group.iter().map(|o| o.id).collect();
                let _ = tx.send((time::Instant::now(), ids.iter().map(|i| i.get()).collect()));
                Ok(ids)
            }
        });
        (recorder, groups)
    }

    fn sent(n: i64) -> DeliveryOutcome {
        DeliveryOutcome {
            id: DeliveryId::for_test(n),
            worker: "host:1:0".into(),
            result: Ending::Sent {
                reply: "250 2.0.0 Ok".into(),
                message_id: format!("<{n}@example.org>"),
            },
            at: Instant::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_is_written_once_it_holds_one_outcome_per_connection() {
        let (recorder, mut groups) = recorder(3);
        let began = time::Instant::now();
        let receipts: Vec<Receipt> = (1..=3).map(|n| recorder.record(sent(n))).collect();
        let (at, ids) = groups.recv().await.expect("a group");
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(at, began, "written at once, without waiting out the linger");
        for mut r in receipts {
            assert!(r.recorded().await.expect("recorded"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_waiting_for_its_outcome_has_the_group_written_at_once() {
        let (recorder, mut groups) = recorder(8);
        let began = time::Instant::now();
        let mut first = recorder.record(sent(1));
        let _second = recorder.record(sent(2));
        tokio::task::yield_now().await;
        assert!(first.recorded().await.expect("recorded"));
        let (at, ids) = groups.recv().await.expect("a group");
        assert_eq!(ids, [1, 2], "what had come is written with it");
        assert_eq!(at, began);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_nobody_waits_for_is_written_after_the_linger() {
        let (recorder, mut groups) = recorder(8);
        let began = time::Instant::now();
        let _receipt = recorder.record(sent(1));
        let (at, ids) = groups.recv().await.expect("a group");
        assert_eq!(ids, [1]);
        assert_eq!(at - began, LINGER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_room_given_up_leaves_the_connections_receipts_as_they_were() {
        // Writes held until the test lets them go: the database is slow.
        let (let_go, held) = tokio::sync::watch::channel(false);
        let (recorder, _task) = Recorder::start(8, move |group: Vec<DeliveryOutcome>| {
            let mut held = held.clone();
            async move {
                let _ = held.wait_for(|go| *go).await;
                Ok(group.iter().map(|o| o.id).collect())
            }
        });
        let mut unrecorded = Unrecorded::default();
        unrecorded.push(recorder.record(sent(1)));
        unrecorded.push(recorder.record(sent(2)));
        let wait = Duration::from_millis(50);
        // A message's transaction fails while its end waits for room: the wait is dropped.
        assert!(time::timeout(wait, unrecorded.make_room()).await.is_err());
        // The next message still waits for the first outcome, not yet recorded.
        assert!(
            time::timeout(wait, unrecorded.make_room()).await.is_err(),
            "the first outcome's receipt was forgotten"
        );
        let_go.send_replace(true);
        time::timeout(wait, unrecorded.make_room())
            .await
            .expect("room once the group is written")
            .expect("recorded");
        assert_eq!(unrecorded.0.len(), UNRECORDED_PER_CONNECTION);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_an_outcome_being_written_does_not_hurry_the_next_group() {
        // Writes held until the test lets them go, each told to the test when it begins.
        let (let_go, held) = tokio::sync::watch::channel(false);
        let (tx, mut groups) = mpsc::unbounded_channel();
        let (recorder, _task) = Recorder::start(8, move |group: Vec<DeliveryOutcome>| {
            let mut held = held.clone();
            let tx = tx.clone();
            async move {
                let ids: Vec<DeliveryId> = group.iter().map(|o| o.id).collect();
                let _ = tx.send((
                    time::Instant::now(),
                    ids.iter().map(|i| i.get()).collect::<Vec<i64>>(),
                ));
                let _ = held.wait_for(|go| *go).await;
                Ok::<_, sqlx::Error>(ids)
            }
        });
        let (mut first, mut second) = (recorder.record(sent(1)), recorder.record(sent(2)));
        // One connection needs the first: the group is written at once, and held.
        let one = tokio::spawn(async move { first.recorded().await.map(|_| ()) });
        let (_, ids) = groups.recv().await.expect("the first group");
        assert_eq!(ids, [1, 2]);
        // Another needs the second, already being written: there is nothing to hurry.
        let other = tokio::spawn(async move { second.recorded().await.map(|_| ()) });
        tokio::task::yield_now().await;
        let _third = recorder.record(sent(3));
        let released = time::Instant::now();
        let_go.send_replace(true);
        one.await.expect("joined").expect("recorded");
        other.await.expect("joined").expect("recorded");
        let (at, ids) = groups.recv().await.expect("the next group");
        assert_eq!(ids, [3]);
        assert_eq!(
            at - released,
            LINGER,
            "the next group waited to fill: nobody needs it yet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn over_one_connection_each_outcome_is_written_as_it_comes() {
        let (recorder, mut groups) = recorder(1);
        let began = time::Instant::now();
        let _receipt = recorder.record(sent(1));
        let (at, ids) = groups.recv().await.expect("a group");
        assert_eq!((at, ids), (began, vec![1]));
    }
}
