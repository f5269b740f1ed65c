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

/// How many rows of each of "already subscribed" and "has left" a report lists; the rest are
/// counted, not listed, so that re-importing a large file takes no more memory than importing
/// it (a million rows already there would otherwise be a hundred megabytes of report). Erased
/// rows are always listed: each is an erasure someone asked for, made one at a time.
pub const KEPT_LISTED: usize = 1000;

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
    /// Rows left as they were, in file order: every erased one, and the first [`KEPT_LISTED`]
    /// (by line) of those already subscribed and of those who had left.
    pub kept: Vec<Kept>,
    /// How many more rows were left as they were than `kept` lists, by reason.
    pub unlisted: Vec<(KeptReason, u64)>,
}

impl ImportReport {
    /// The rows left as they were for a reason `f` accepts, listed or not.
    pub fn count(&self, f: impl Fn(&KeptReason) -> bool) -> usize {
        self.kept.iter().filter(|k| f(&k.reason)).count() + self.count_unlisted(f) as usize
    }

    /// The rows left as they were for a reason `f` accepts that `kept` does not list.
    pub fn count_unlisted(&self, f: impl Fn(&KeptReason) -> bool) -> u64 {
        self.unlisted
            .iter()
            .filter(|(reason, _)| f(reason))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The kept rows as the statements find them, in any order: lists the first `limit` by line
/// of those already subscribed and of those who had left (every erased one), counts the rest.
#[derive(Debug)]
pub(super) struct KeptRows {
    limit: usize,
    already: Vec<Kept>,
    left: Vec<Kept>,
    erased: Vec<Kept>,
    unlisted: Vec<(KeptReason, u64)>,
}

impl KeptRows {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            already: Vec::new(),
            left: Vec::new(),
            erased: Vec::new(),
            unlisted: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, kept: Kept) {
        let list = match kept.reason {
            KeptReason::AlreadySubscribed(_) => &mut self.already,
            KeptReason::HasLeft(_) => &mut self.left,
            KeptReason::Erased(_) => {
                self.erased.push(kept);
                return;
            }
        };
        list.push(kept);
        // Trimmed at twice the limit, not at it, so that sorting happens once per `limit` rows.
        if list.len() >= 2 * self.limit.max(1) {
            keep_first(list, self.limit, &mut self.unlisted);
        }
    }

    /// The listed rows in file order, and the counts of the others.
    pub(super) fn finish(mut self) -> (Vec<Kept>, Vec<(KeptReason, u64)>) {
        keep_first(&mut self.already, self.limit, &mut self.unlisted);
        keep_first(&mut self.left, self.limit, &mut self.unlisted);
        let mut kept = self.erased;
        kept.append(&mut self.already);
        kept.append(&mut self.left);
        kept.sort_by_key(|k| k.line);
        (kept, self.unlisted)
    }
}

/// Sorts `list` by line and moves all but its first `limit` rows into the counts.
fn keep_first(list: &mut Vec<Kept>, limit: usize, unlisted: &mut Vec<(KeptReason, u64)>) {
    list.sort_by_key(|k| k.line);
    for Kept { reason, .. } in list.drain(limit.min(list.len())..) {
        match unlisted.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => unlisted.push((reason, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, reason: KeptReason) -> Kept {
        Kept {
            line,
            email: format!("p{line}@example.org"),
            reason,
        }
    }

    const ACTIVE: KeptReason = KeptReason::AlreadySubscribed(SubscriberStatus::Active);
    const PENDING: KeptReason = KeptReason::AlreadySubscribed(SubscriberStatus::Pending);
    const UNSUBSCRIBED: KeptReason = KeptReason::HasLeft(SubscriberStatus::Unsubscribed);

    #[test]
    fn past_the_limit_rows_are_counted_by_reason_and_the_first_by_line_are_listed() {
        let mut rows = KeptRows::new(3);
        // Out of order, as the rows kept by the adding statement (a race) arrive after the rest.
        for line in (10..30).rev() {
            rows.push(row(line, if line % 2 == 0 { ACTIVE } else { PENDING }));
        }
        rows.push(row(2, UNSUBSCRIBED));
        let erased = KeptReason::Erased(DateTime::UNIX_EPOCH);
        for line in 100..110 {
            rows.push(row(line, erased.clone()));
        }
        let (kept, unlisted) = rows.finish();
        let report = ImportReport {
            kept,
            unlisted,
            ..ImportReport::default()
        };

        let lines: Vec<_> = report.kept.iter().map(|k| k.line).collect();
        assert_eq!(
            lines,
            [
                2, 10, 11, 12, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109
            ]
        );
        assert_eq!(report.count(|r| *r == ACTIVE), 10);
        assert_eq!(report.count(|r| *r == PENDING), 10);
        assert_eq!(report.count_unlisted(|r| *r == ACTIVE), 8);
        assert_eq!(report.count_unlisted(|r| *r == PENDING), 9);
        assert_eq!(report.count(|r| *r == UNSUBSCRIBED), 1);
        assert_eq!(report.count(|r| matches!(r, KeptReason::Erased(_))), 10);
        assert_eq!(report.count_unlisted(|_| true), 17);
    }

    #[test]
    fn under_the_limit_every_row_is_listed_in_file_order() {
        let mut rows = KeptRows::new(KEPT_LISTED);
        for line in [7, 3, 5] {
            rows.push(row(line, ACTIVE));
        }
        let (kept, unlisted) = rows.finish();
        assert_eq!(kept.iter().map(|k| k.line).collect::<Vec<_>>(), [3, 5, 7]);
        assert!(unlisted.is_empty());
    }
}
