//! `lscp-mail bounces`: reads what comes back after the relay accepted a message, and acts on
//! it. Each message goes through three steps: [`recognise`] (what it is, from its bytes),
//! identify (which delivery and reader: the VERP tag first, else the report's own recipient
//! matched with the Message-ID of a delivery we made, never an address alone), and record (in
//! `store::bounce`, once per report).

pub mod imap;
pub mod recognise;
mod report_fields;
pub mod source;

use chrono::Utc;

use crate::config::Config;
use crate::render::message::message_id_from_tag;
use crate::store::bounce::{Bounce, Delivered, ReportKey, SoftLimit, Taken};
use crate::store::{LinkToken, Store, StoreError, SubscriberStatus};
use recognise::{Addresses, Recognised, Report};
use source::Item;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 5.x.x failure: the delivery records it; `bounced` when the reader was active.
    HardBounce {
        status: String,
        bounced: bool,
    },
    /// A 4.x.x failure or a delay, counted; `bounced` when it reached the limit.
    SoftBounce {
        status: String,
        bounced: bool,
    },
    /// An ARF report: the reader unsubscribed (`changed` false when they had already left).
    Complaint {
        changed: bool,
    },
    /// A mail to the reader's unsubscribe address.
    Unsubscribed {
        changed: bool,
    },
    /// This report took effect before.
    AlreadyRead,
    /// An out-of-office or other automatic answer: counted, nothing else.
    AutoReply,
    /// A report that needs nothing done (a success or relay notice).
    NothingToDo,
    /// A report or a mailto request, but whose it is cannot be established.
    NotIdentified(&'static str),
    Unrecognised,
    Unreadable(String),
}

impl Outcome {
    /// Outcomes a person should look at: listed with where the message is.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            Self::NotIdentified(_) | Self::Unrecognised | Self::Unreadable(_)
        )
    }
}

/// How a run went, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: usize,
    pub hard: usize,
    pub soft: usize,
    pub bounced: usize,
    pub complaints: usize,
    pub unsubscribed: usize,
    pub already_read: usize,
    pub auto_replies: usize,
    pub nothing_to_do: usize,
    pub not_identified: usize,
    pub unrecognised: usize,
    pub unreadable: usize,
}

impl Summary {
    pub fn add(&mut self, outcome: &Outcome) {
        self.read += 1;
        match outcome {
            Outcome::HardBounce { bounced, .. } => {
                self.hard += 1;
                self.bounced += usize::from(*bounced);
            }
            Outcome::SoftBounce { bounced, .. } => {
                self.soft += 1;
                self.bounced += usize::from(*bounced);
            }
            Outcome::Complaint { .. } => self.complaints += 1,
            Outcome::Unsubscribed { .. } => self.unsubscribed += 1,
            Outcome::AlreadyRead => self.already_read += 1,
            Outcome::AutoReply => self.auto_replies += 1,
            Outcome::NothingToDo => self.nothing_to_do += 1,
            Outcome::NotIdentified(_) => self.not_identified += 1,
            Outcome::Unrecognised => self.unrecognised += 1,
            Outcome::Unreadable(_) => self.unreadable += 1,
        }
    }
}

/// Why a source could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Imap(#[from] imap::ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads every message of an IMAP mailbox; those processed (everything but the unreadable,
/// the unrecognised and the unidentified) are moved to `bounce.processed_folder`, the rest
/// stay untouched. Should the database fail half-way, nothing is moved: the next run reads
/// them again, and what took effect does not take effect twice.
pub async fn read_imap(
    store: &Store,
    config: &Config,
    source: &imap::ImapSource,
    mut seen: impl FnMut(&Item, &Outcome),
) -> Result<(), RunError> {
    let mut mailbox = source.open().await?;
    let mut processed = Vec::new();
    for (uid, item) in mailbox.messages().await? {
        let outcome = process(store, config, &item).await?;
        seen(&item, &outcome);
        if !outcome.needs_attention() {
            processed.push(uid);
        }
    }
    mailbox
        .move_to(&processed, &config.bounce.processed_folder)
        .await?;
    mailbox.close().await;
    Ok(())
}

/// Reads one message and records what it says. An error is the database failing: the message
/// is then as unread, and reading it again later does what this run could not.
pub async fn process(store: &Store, config: &Config, item: &Item) -> Result<Outcome, StoreError> {
    let bytes = match &item.bytes {
        Ok(b) => b,
        Err(e) => return Ok(Outcome::Unreadable(e.clone())),
    };
    let ours = Addresses {
        bounces: config.mail.bounce_address.as_ref(),
        unsubscribe: config.mail.unsubscribe_mailto.as_ref(),
    };
    let Some(seen) = recognise::recognise(bytes, &ours) else {
        return Ok(Outcome::Unreadable("not an email message".into()));
    };
    let key = ReportKey {
        key: seen.key,
        reported_at: seen.date.unwrap_or_else(Utc::now),
    };
    let soft = SoftLimit {
        limit: config.bounce.soft_limit.max(1),
        days: config.bounce.soft_days,
    };
    match &seen.report {
        Report::Unrecognised => Ok(Outcome::Unrecognised),
        Report::AutoReply => Ok(Outcome::AutoReply),
        Report::Unsubscribe { token } => {
            let Ok(link) = LinkToken::parse(token) else {
                return Ok(Outcome::NotIdentified(
                    "the unsubscribe address's token is not valid",
                ));
            };
            match store.record_emailed_unsubscribe(&key, &link).await {
                Ok(taken) => Ok(taken_as(taken, |changed| Outcome::Unsubscribed { changed })),
                Err(StoreError::BadLink(_)) => Ok(Outcome::NotIdentified(
                    "the unsubscribe address's token is not current",
                )),
                Err(e) => Err(e),
            }
        }
        Report::Dsn(dsn) => {
            let Some(r) = dsn
                .recipients
                .iter()
                .find(|r| r.is_hard())
                .or_else(|| dsn.recipients.iter().find(|r| r.is_soft()))
            else {
                return Ok(Outcome::NothingToDo);
            };
            let Some(delivered) = identify(store, config, &seen).await? else {
                return Ok(Outcome::NotIdentified(
                    "no delivery of ours has this report's tag, or its Message-ID and recipient",
                ));
            };
            let diagnostic = r.diagnostic.clone().unwrap_or_default();
            bounce(
                store,
                &key,
                &delivered,
                kind_of(r.is_hard(), &r.status),
                &r.status,
                &diagnostic,
                soft,
            )
            .await
        }
        Report::TextBounce { status } => {
            // Without a machine-readable part only our own tag says whose it is.
            let Some(delivered) = by_tag(store, config, &seen).await? else {
                return Ok(Outcome::NotIdentified(
                    "a bounce without a delivery-status part and without our VERP tag",
                ));
            };
            let status = status.clone().unwrap_or_else(|| "5.0.0".into());
            let kind = kind_of(!status.starts_with('4'), &status);
            bounce(store, &key, &delivered, kind, &status, "", soft).await
        }
        Report::Complaint(c) => {
            let Some(delivered) = identify(store, config, &seen).await? else {
                return Ok(Outcome::NotIdentified(
                    "no delivery of ours has this complaint's tag, or its Message-ID and recipient",
                ));
            };
            let kind = if c.feedback_type.is_empty() {
                "abuse"
            } else {
                &c.feedback_type
            };
            // A reader's complaint; not a "not spam" report, nor a DMARC failure report
            // (auth-failure) that a forwarded copy set off.
            if !COMPLAINTS.contains(&kind) {
                return Ok(Outcome::NothingToDo);
            }
            let taken = store.record_complaint(&key, &delivered, kind).await?;
            Ok(taken_as(taken, |changed| Outcome::Complaint { changed }))
        }
    }
}

/// ARF feedback types (RFC 5965) that are a reader's complaint.
const COMPLAINTS: [&str; 4] = ["abuse", "fraud", "other", "virus"];

/// A hard failure bounces the reader only when it is about the address itself.
fn kind_of(hard: bool, status: &str) -> Bounce {
    match (hard, recognise::is_dead_mailbox_status(status)) {
        (false, _) => Bounce::Soft,
        (true, true) => Bounce::DeadMailbox,
        (true, false) => Bounce::Hard,
    }
}

async fn bounce(
    store: &Store,
    key: &ReportKey,
    delivered: &Delivered,
    kind: Bounce,
    status: &str,
    diagnostic: &str,
    soft: SoftLimit,
) -> Result<Outcome, StoreError> {
    let taken = store
        .record_bounce(key, delivered, kind, status, diagnostic, soft)
        .await?;
    let status = status.to_string();
    Ok(taken_as(taken, |bounced| match kind {
        Bounce::Soft => Outcome::SoftBounce { status, bounced },
        Bounce::Hard | Bounce::DeadMailbox => Outcome::HardBounce { status, bounced },
    }))
}

fn taken_as(taken: Taken, outcome: impl FnOnce(bool) -> Outcome) -> Outcome {
    match taken {
        Taken::AlreadyRead => Outcome::AlreadyRead,
        Taken::Recorded { status } => outcome(status.is_some_and(|c| {
            c.changed()
                && matches!(
                    c.after,
                    SubscriberStatus::Bounced | SubscriberStatus::Unsubscribed
                )
        })),
    }
}

/// The delivery a report is about: by our VERP tag, else by the Message-ID it quotes when the
/// recipient it names is that delivery's reader.
async fn identify(
    store: &Store,
    config: &Config,
    seen: &Recognised,
) -> Result<Option<Delivered>, StoreError> {
    if let Some(d) = by_tag(store, config, seen).await? {
        return Ok(Some(d));
    }
    let Some(id) = seen.report.returned_message_id() else {
        return Ok(None);
    };
    let Some(d) = store.delivery_by_message_id(id).await? else {
        return Ok(None);
    };
    let named = seen.report.recipients();
    let matches = d
        .email_normalised
        .as_deref()
        .is_some_and(|ours| named.iter().any(|a| a.trim().eq_ignore_ascii_case(ours)));
    Ok(matches.then_some(d))
}

async fn by_tag(
    store: &Store,
    config: &Config,
    seen: &Recognised,
) -> Result<Option<Delivered>, StoreError> {
    match seen
        .verp_tag
        .as_deref()
        .and_then(|t| message_id_from_tag(&config.mail, t))
    {
        Some(id) => store.delivery_by_message_id(&id).await,
        None => Ok(None),
    }
}
