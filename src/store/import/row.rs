//! One row of an import file checked on its own: where each column is (from the header), the
//! row's fields parsed into an [`ImportRow`], or the [`RowProblem`] that skips it.

use std::collections::HashMap;
use std::fmt;

use super::{COLUMNS, EXPORT_COLUMNS, MAX_ROW_BYTES};
use crate::content::topic::TopicError;
use crate::content::{TopicCatalog, TopicSet};
use crate::store::email::{EmailError, SubscriberEmail};
use crate::store::name::{DisplayName, NameError};
use crate::store::subscriber::SubscriberStatus;

/// Why a row was skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum RowProblem {
    BadEmail(EmailError),
    UnknownTopic(TopicError),
    /// The same address (ignoring case) as an earlier row of the file.
    Duplicate {
        first_line: u64,
    },
    FieldCount {
        found: usize,
        expected: usize,
    },
    RowTooLong {
        bytes: usize,
    },
    /// A name or organisation that is not one line of printable text of a sensible length.
    BadText {
        column: &'static str,
        problem: NameError,
    },
    /// A row of an export whose subscriber was not active there (pending, unsubscribed,
    /// bounced, blocked): importing them would subscribe someone who has not consented.
    NotActive {
        status: String,
    },
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEmail(e) => e.fmt(f),
            Self::UnknownTopic(e) => e.fmt(f),
            Self::Duplicate { first_line } => {
                write!(f, "the same address as line {first_line}")
            }
            Self::FieldCount { found, expected } => {
                write!(f, "{found} fields where the header has {expected}")
            }
            Self::RowTooLong { bytes } => {
                write!(
                    f,
                    "the row is {bytes} bytes long; a row may have at most {MAX_ROW_BYTES}"
                )
            }
            Self::BadText { column, problem } => write!(f, "the {column} {problem}"),
            Self::NotActive { status } => write!(
                f,
                "the status is `{status}`; only active subscribers are imported from an export"
            ),
        }
    }
}

/// A skipped row and why.
#[derive(Debug, PartialEq, Eq)]
pub struct RowIssue {
    pub line: u64,
    pub problem: RowProblem,
}

/// A row that passed every check.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub email: SubscriberEmail,
    pub name: Option<DisplayName>,
    pub organisation: Option<DisplayName>,
    pub topics: TopicSet,
}

/// A row that passed every check, or why it did not.
pub type CheckedRow = Result<ImportRow, RowProblem>;

/// Where each column is in the file.
pub(super) struct Columns {
    pub(super) count: usize,
    pub(super) email: usize,
    pub(super) name: Option<usize>,
    pub(super) organisation: Option<usize>,
    pub(super) topics: Option<usize>,
    pub(super) status: Option<usize>,
}

impl Columns {
    pub(super) fn from_header(header: &[&str]) -> Result<Self, String> {
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let name = raw.trim().trim_start_matches('\u{feff}').trim();
            let known = COLUMNS
                .iter()
                .chain(&EXPORT_COLUMNS)
                .find(|c| c.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("unknown column `{}`", shorten(name)))?;
            if at.insert(known, i).is_some() {
                return Err(format!("the column `{known}` appears twice"));
            }
        }
        Ok(Self {
            count: header.len(),
            email: *at.get("email").ok_or("there is no `email` column")?,
            name: at.get("name").copied(),
            organisation: at.get("organisation").copied(),
            topics: at.get("topics").copied(),
            status: at.get("status").copied(),
        })
    }
}

/// The record's fields as text, or `None` when any is not UTF-8.
pub(super) fn fields(record: &csv::ByteRecord) -> Option<Vec<&str>> {
    record.iter().map(|f| std::str::from_utf8(f).ok()).collect()
}

pub(super) fn parse_row(
    row: &[&str],
    bytes: usize,
    columns: &Columns,
    catalog: &TopicCatalog,
    default_topics: &TopicSet,
) -> Result<ImportRow, RowProblem> {
    if bytes > MAX_ROW_BYTES {
        return Err(RowProblem::RowTooLong { bytes });
    }
    if row.len() != columns.count {
        return Err(RowProblem::FieldCount {
            found: row.len(),
            expected: columns.count,
        });
    }
    let email = SubscriberEmail::parse(row[columns.email]).map_err(RowProblem::BadEmail)?;
    if let Some(status) = columns.status.map(|i| row[i].trim())
        && !status.is_empty()
        && status != SubscriberStatus::Active.as_str()
    {
        return Err(RowProblem::NotActive {
            status: shorten(status),
        });
    }
    let text = |at: Option<usize>, column| {
        DisplayName::parse(at.map_or("", |i| row[i]))
            .map_err(|problem| RowProblem::BadText { column, problem })
    };
    let name = text(columns.name, "name")?;
    let organisation = text(columns.organisation, "organisation")?;
    let cell = columns.topics.map(|i| row[i]).unwrap_or("");
    let topics: TopicSet = cell
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| catalog.parse(s))
        .collect::<Result<_, _>>()
        .map_err(RowProblem::UnknownTopic)?;
    Ok(ImportRow {
        line: 0,
        email,
        name,
        organisation,
        topics: if topics.is_empty() {
            default_topics.clone()
        } else {
            topics
        },
    })
}

/// At most 60 characters of something the user wrote, for a message.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(59).collect::<String>())
    }
}
