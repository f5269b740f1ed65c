//! What an import did: the rows added, activated, kept as they were (and why) and skipped.

use std::fmt;

use chrono::{DateTime, Utc};

use super::RowIssue;
use crate::store::subscriber::SubscriberStatus;

/// A row that was left alone on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub line: u64,
    pub email: String,
    pub reason: KeptReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptReason {
    /// Already subscribed (active or pending): left as they are.
    AlreadySubscribed(SubscriberStatus),
    /// Unsubscribed, bounced or blocked: an import never brings them back.
    HasLeft(SubscriberStatus),
    /// Erased at their request: an import never brings them back.
    Erased(DateTime<Utc>),
}

impl fmt::Display for KeptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadySubscribed(status) => write!(f, "already subscribed ({status})"),
            Self::HasLeft(status) => write!(f, "{status}, so not resubscribed"),
            Self::Erased(at) => write!(
                f,
                "previously erased (on {}), so not added again",
                at.format("%Y-%m-%d")
            ),
        }
    }
}

/// A row whose address had signed up on the web without confirming: the import, being the
/// administrator's record of consent, made it active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    pub line: u64,
    pub email: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Rows read (after the header), whatever became of them.
    pub rows: u64,
    /// Rows skipped, in file order: those found wrong in reading, and repeated addresses.
    pub problems: Vec<RowIssue>,
    /// Rows added, in file order of their lines.
    pub added: Vec<u64>,
    /// Pending addresses made active, in file order.
    pub activated: Vec<Activated>,
    pub kept: Vec<Kept>,
}

impl ImportReport {
    pub fn count(&self, f: impl Fn(&KeptReason) -> bool) -> usize {
        self.kept.iter().filter(|k| f(&k.reason)).count()
    }
}
