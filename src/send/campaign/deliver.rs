//! One claimed delivery, from the reader's message to its recorded outcome: written
//! ([`prepare`]), paced, sent over the worker's connection (opened again when it is gone), and
//! what the server said recorded, with what a refusal means for the reader, the worker and the
//! campaign ([`deliver`]).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::super::ledger::Unrecorded;
use super::SendError;
use super::faults::{SLOWDOWN_HOLD, ServerHalt, count_refusal};
use super::worker::Shared;
use crate::mail::outgoing::Outgoing;
use crate::mail::smtp::{Connection, Scope, redact};
use crate::store::ledger::{CampaignStatus, Claimed, DeliveryId, Ending, FinalStatus};
use crate::store::{LinkToken, SubscriberId};

/// What became of a claimed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Sent, failed, skipped or scheduled for a retry: recorded.
    Done,
    /// The run was stopped before it went: the claim is to be given back.
    GaveBack,
    /// The session failed: this claim went back as it was; the rest of the batch goes back
    /// too, and the worker waits out the outage.
    SessionFailed,
}

/// A claimed delivery with its message written, ready to go.
pub(super) struct Written {
    pub(super) id: DeliveryId,
    attempts: i32,
    subscriber_id: SubscriberId,
    out: Outgoing,
    /// Whether its turn in the campaign's pace is taken already: written while the pace let
    /// every message go at once, it goes without asking again, its envelope out already. (A
    /// slowdown begun meanwhile, after another connection's rate complaint, holds the messages
    /// after it: one a connection goes at the old pace.)
    paced: bool,
}

impl Written {
    /// Its envelope and bytes, to go ahead with the end of the message before it.
    pub(super) fn as_next(&self) -> (&lettre::address::Envelope, &[u8]) {
        (&self.out.envelope, &self.out.bytes)
    }
}

/// Writes the reader's message for claimed delivery `d`. A delivery that cannot go (the reader
/// left, or their message cannot be written) is recorded here, and there is nothing to send.
pub(super) async fn prepare(
    shared: &Shared,
    me: &str,
    d: Claimed,
    paced: bool,
) -> Result<Option<Written>, SendError> {
    let Some(r) = &d.recipient else {
        let reply = "the reader unsubscribed, bounced or was erased before their turn".into();
        shared
            .record_now(d.id, me, final_status(FinalStatus::Skipped, reply))
            .await?;
        return Ok(None);
    };
    let token = LinkToken::new(r.link_id.clone(), r.link_secret.clone());
    match shared
        .personaliser
        .message(&r.email, r.name.as_ref(), Some(&d.topics), &token)
    {
        Ok(out) => Ok(Some(Written {
            id: d.id,
            attempts: d.attempts,
            subscriber_id: r.subscriber_id,
            out,
            paced,
        })),
        Err(e) => {
            shared
                .record_now(d.id, me, final_status(FinalStatus::Failed, e.to_string()))
                .await?;
            shared.failed.fetch_add(1, Ordering::Relaxed);
            shared.report_progress();
            Ok(None)
        }
    }
}

/// Sends one written delivery and records how it went. `next`, the message to go after it
/// on this connection, has its envelope sent with this one's end where the server pipelines
/// (see [`Connection::send_when`]).
pub(super) async fn deliver(
    shared: &Shared,
    me: &str,
    conn: &mut Option<Connection>,
    unrecorded: &mut Unrecorded,
    written: Written,
    next: Option<&Written>,
) -> Result<Delivery, SendError> {
    let store = &shared.store;
    let Written {
        id,
        attempts,
        subscriber_id,
        out,
        paced,
    } = written;
    if !paced {
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
    }
    let next = next.map(Written::as_next);
    // At most so many of this connection's messages may be unrecorded when the server takes
    // another: the message goes meanwhile, and only its end waits for room.
    let result = match conn {
        Some(c) if c.is_usable() => {
            c.send_when(&out.envelope, &out.bytes, unrecorded.make_room(), next)
                .await?
        }
        _ => match Connection::open(
            &shared.target,
            shared.personaliser.hello_name(),
            shared.options.smtp_timeout,
        )
        .await
        {
            Ok(mut c) => {
                let r = c
                    .send_when(&out.envelope, &out.bytes, unrecorded.make_room(), next)
                    .await?;
                *conn = Some(c);
                r
            }
            Err(f) => Err(f),
        },
    };
    let failure = match result {
        Ok(reply) => {
            unrecorded.push(shared.record(
                id,
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
            let id = [id];
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
            if attempts >= shared.options.max_attempts as i32 {
                let why = format!("gave up after {} attempts: {reply}", attempts);
                shared
                    .record_now(id, me, final_status(FinalStatus::Failed, why))
                    .await?;
                shared.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                let wait = crate::retry::delivery(shared.options.retry_after, attempts);
                let retry = Ending::Retry {
                    reply,
                    retry_in_seconds: wait.as_secs_f64(),
                };
                shared.record_now(id, me, retry).await?;
                shared.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
        (Scope::Recipient | Scope::Message, true) => {
            shared
                .record_now(
                    id,
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
                        store.bounce_after_reply(subscriber_id, &code)
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
