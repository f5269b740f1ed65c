//! `subscribers import`: a CSV file of practitioners, checked row by row, then written in one
//! transaction with a few set-based statements per few thousand rows.
//!
//! The file has a header line naming its columns: `email` (required), `name`, `organisation`
//! and `topics` (slugs separated by `;`), in any order. A row with a problem (a bad address, an
//! unknown topic, the same address as an earlier row) is reported with its line number and
//! skipped; a file that cannot be read as a whole (no header, an unknown column, bytes that are
//! not UTF-8) imports nothing. Importing is idempotent: someone already there is left as they
//! are, and someone who unsubscribed, bounced, was blocked or was erased is never brought back.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use super::consent::{self, ConsentAction, ConsentSource};
use super::email::{EmailError, SubscriberEmail};
use super::erase;
use super::name::{DisplayName, NameError};
use super::subscriber::{SubscriberStatus, delete_topics_of, insert_topics, slugs};
use super::token::LinkKeys;
use super::{Store, StoreError};
use crate::content::topic::TopicError;
use crate::content::{TopicCatalog, TopicSet};

/// The columns an import file may have; only `email` is required.
pub const COLUMNS: [&str; 4] = ["email", "name", "organisation", "topics"];
/// The further columns of `subscribers export`, so that an export imports back unchanged:
/// `status` decides whether a row is imported (only `active` ones are: the others have not
/// consented, or withdrew), the dates are read past.
pub const EXPORT_COLUMNS: [&str; 3] = ["status", "created_at", "confirmed_at"];
/// A row longer than this is not a practitioner's details (and would flood the report).
pub const MAX_ROW_BYTES: usize = 4096;
/// Rows written per batch of statements; the progress bar moves once a batch.
const BATCH: usize = 5000;

/// Shows how far an import has got. The command line draws a bar; tests stay silent.
pub trait Progress {
    fn begin(&self, stage: &'static str, total: u64);
    fn advance(&self, by: u64);
    fn end(&self);
}

/// No progress shown.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// A file that cannot be imported at all. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is empty: it needs a header line such as `email,name,organisation,topics` \
         (nothing was imported)",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error(
        "{}:1: {message}; the columns are email, name, organisation and topics (only email is \
         required; an export's status, created_at and confirmed_at are accepted too; nothing \
         was imported)",
        path.display()
    )]
    Columns { path: PathBuf, message: String },
    #[error(
        "{}:{line}: the file is not UTF-8 text; save it as \"CSV UTF-8\" and import it again \
         (nothing was imported)",
        path.display()
    )]
    NotUtf8 { path: PathBuf, line: u64 },
}

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

/// A file read and checked, ready to import.
#[derive(Debug)]
pub struct ImportFile {
    pub path: PathBuf,
    pub rows: Vec<ImportRow>,
    pub problems: Vec<RowIssue>,
}

/// Where each column is in the file.
struct Columns {
    count: usize,
    email: usize,
    name: Option<usize>,
    organisation: Option<usize>,
    topics: Option<usize>,
    status: Option<usize>,
}

impl Columns {
    fn from_header(header: &[&str]) -> Result<Self, String> {
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

impl ImportFile {
    /// Reads and checks `path`. Rows whose topics cell is empty get `default_topics`.
    pub fn read(
        path: &Path,
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        progress: &dyn Progress,
    ) -> Result<Self, ImportError> {
        let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes, catalog, default_topics, progress)
    }

    /// Checks the contents of an import file read from `path` (named in messages).
    pub fn parse(
        path: &Path,
        bytes: &[u8],
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        progress: &dyn Progress,
    ) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let not_utf8 = |line| ImportError::NotUtf8 {
            path: path.to_path_buf(),
            line,
        };
        let csv_error = |e: csv::Error| ImportError::Read {
            path: path.to_path_buf(),
            // Reading a slice with byte records and flexible rows cannot fail; kept typed.
            source: std::io::Error::other(format!("{:?}", e.into_kind())),
        };

        let mut record = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut record).map_err(csv_error)? {
            return Err(ImportError::Empty {
                path: path.to_path_buf(),
            });
        }
        let header = fields(&record).ok_or_else(|| not_utf8(1))?;
        let columns = Columns::from_header(&header).map_err(|message| ImportError::Columns {
            path: path.to_path_buf(),
            message,
        })?;

        progress.begin("reading", bytes.len() as u64);
        let mut done = 0;
        let mut lines = LineCounter::new(bytes);
        let mut file = ImportFile {
            path: path.to_path_buf(),
            rows: Vec::new(),
            problems: Vec::new(),
        };
        let mut first_line: HashMap<String, u64> = HashMap::new();
        while reader.read_byte_record(&mut record).map_err(csv_error)? {
            let byte = record.position().map_or(done, |p| p.byte());
            let line = lines.line_at(byte);
            let row = fields(&record).ok_or_else(|| not_utf8(line))?;
            match parse_row(
                &row,
                record.as_slice().len(),
                &columns,
                catalog,
                default_topics,
            ) {
                Ok(parsed) => match first_line.get(&parsed.email.normalised()) {
                    Some(&first_line) => file.problems.push(RowIssue {
                        line,
                        problem: RowProblem::Duplicate { first_line },
                    }),
                    None => {
                        first_line.insert(parsed.email.normalised(), line);
                        file.rows.push(ImportRow { line, ..parsed });
                    }
                },
                Err(problem) => file.problems.push(RowIssue { line, problem }),
            }
            if byte - done > 1 << 16 {
                progress.advance(byte - done);
                done = byte;
            }
        }
        progress.end();
        Ok(file)
    }
}

/// The line a byte offset is on, counted as an editor counts them: `\n`, `\r\n` and a lone
/// `\r` each end one line. (The csv crate's own count is one short per record in a file
/// with CRLF endings.) Offsets must be asked for in increasing order; the whole file is
/// scanned once.
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The line of the record whose position csv gives as `byte`: that position may be on
    /// the previous record's line ending, so the record starts at the first byte after it
    /// that ends no line (csv skips empty lines).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut to = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while matches!(self.bytes.get(to), Some(b'\r' | b'\n')) {
            to += 1;
        }
        while self.at < to {
            match self.bytes[self.at] {
                b'\n' => self.line += 1,
                b'\r' if self.bytes.get(self.at + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
            self.at += 1;
        }
        self.line
    }
}

/// The record's fields as text, or `None` when any is not UTF-8.
fn fields(record: &csv::ByteRecord) -> Option<Vec<&str>> {
    record.iter().map(|f| std::str::from_utf8(f).ok()).collect()
}

fn parse_row(
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

impl Store {
    /// Writes the checked rows of `file` in one transaction: all of them or, on failure, none.
    pub async fn import(
        &self,
        file: &ImportFile,
        status: SubscriberStatus,
        progress: &dyn Progress,
    ) -> Result<ImportReport, StoreError> {
        let source = ConsentSource::import(&file.path);
        let mut tx = self.pool.begin().await?;
        let mut report = ImportReport::default();
        let (fresh, pending) = classify(&mut tx, &file.rows, status, &mut report).await?;
        for batch in pending.chunks(BATCH) {
            activate_batch(&mut tx, batch, &source, &mut report).await?;
        }

        progress.begin("writing", fresh.len() as u64);
        for batch in fresh.chunks(BATCH) {
            let inserted = insert_batch(&mut tx, batch, status).await?;
            let by_email: HashMap<&str, i64> =
                inserted.iter().map(|(id, e)| (e.as_str(), *id)).collect();
            let mut subscribed = Subscribed::default();
            for row in batch {
                let normalised = row.email.normalised();
                let Some(&id) = by_email.get(normalised.as_str()) else {
                    // Added by someone else since `classify` looked.
                    report.kept.push(Kept {
                        line: row.line,
                        email: row.email.to_string(),
                        reason: KeptReason::AlreadySubscribed(status),
                    });
                    continue;
                };
                subscribed.push(id, row, json!({ "status": status.as_str() }));
                report.added.push(row.line);
            }
            subscribed.write(&mut tx, &source).await?;
            progress.advance(batch.len() as u64);
        }
        tx.commit().await?;
        progress.end();
        report.kept.sort_by_key(|k| k.line);
        Ok(report)
    }
}

/// Sorts the rows into those already known (recorded in `report`), those to add, and (when
/// importing as active) those awaiting confirmation, to make active.
async fn classify<'r>(
    tx: &mut Transaction<'_, Postgres>,
    rows: &'r [ImportRow],
    status: SubscriberStatus,
    report: &mut ImportReport,
) -> Result<(Vec<&'r ImportRow>, Vec<&'r ImportRow>), StoreError> {
    let normalised: Vec<String> = rows.iter().map(|r| r.email.normalised()).collect();
    let existing: HashMap<String, SubscriberStatus> = existing(tx, &normalised)
        .await?
        .into_iter()
        .map(|(e, s)| Ok((e, SubscriberStatus::from_store(&s)?)))
        .collect::<Result<_, StoreError>>()?;

    // The tombstone of each address not on record, computed once: an HMAC a row.
    let key = erase::key(tx).await?;
    let tombstones: Vec<Option<Vec<u8>>> = normalised
        .iter()
        .map(|n| match (&key, existing.contains_key(n)) {
            (Some(k), false) => Some(k.tombstone_of_normalised(n)),
            _ => None,
        })
        .collect();
    let candidates: Vec<Vec<u8>> = tombstones.iter().flatten().cloned().collect();
    let erased: HashMap<Vec<u8>, DateTime<Utc>> = if candidates.is_empty() {
        HashMap::new()
    } else {
        erase::existing_tombstones(tx, &candidates)
            .await?
            .into_iter()
            .collect()
    };

    let (mut fresh, mut pending) = (Vec::new(), Vec::new());
    for ((row, normalised), tombstone) in rows.iter().zip(&normalised).zip(&tombstones) {
        let reason = match existing.get(normalised) {
            Some(SubscriberStatus::Pending) if status == SubscriberStatus::Active => {
                pending.push(row);
                continue;
            }
            Some(&status) if status.has_left() => Some(KeptReason::HasLeft(status)),
            Some(&status) => Some(KeptReason::AlreadySubscribed(status)),
            None => tombstone
                .as_ref()
                .and_then(|t| erased.get(t).copied())
                .map(KeptReason::Erased),
        };
        match reason {
            Some(reason) => report.kept.push(Kept {
                line: row.line,
                email: row.email.to_string(),
                reason,
            }),
            None => fresh.push(row),
        }
    }
    Ok((fresh, pending))
}

/// Makes the rows' pending subscribers active with the file's topics (and its name and
/// organisation where the file has them), logging each as subscribed by this import.
async fn activate_batch(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[&ImportRow],
    source: &ConsentSource,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let normalised: Vec<String> = rows.iter().map(|r| r.email.normalised()).collect();
    let names: Vec<String> = rows.iter().map(|r| text_of(&r.name)).collect();
    let organisations: Vec<String> = rows.iter().map(|r| text_of(&r.organisation)).collect();
    let activated: HashMap<String, i64> = activate(tx, &normalised, &names, &organisations)
        .await?
        .into_iter()
        .map(|(id, e)| (e, id))
        .collect();
    let ids: Vec<i64> = activated.values().copied().collect();
    delete_topics_of(tx, &ids).await?;
    let mut subscribed = Subscribed::default();
    for (row, normalised) in rows.iter().zip(&normalised) {
        // Changed by someone else since `classify` looked: left as it now is.
        let Some(&id) = activated.get(normalised) else {
            continue;
        };
        let detail = json!({
            "status": SubscriberStatus::Active.as_str(),
            "previous_status": SubscriberStatus::Pending.as_str(),
        });
        subscribed.push(id, row, detail);
        report.activated.push(Activated {
            line: row.line,
            email: row.email.to_string(),
        });
    }
    subscribed.write(tx, source).await
}

/// Rows subscribed by an import: their topics and their consent log entries, written together.
#[derive(Default)]
struct Subscribed {
    topic_ids: Vec<i64>,
    topic_slugs: Vec<String>,
    log_ids: Vec<i64>,
    log_details: Vec<serde_json::Value>,
}

impl Subscribed {
    /// Subscriber `id` gets the row's topics; the log entry is `detail` with the topics and line.
    fn push(&mut self, id: i64, row: &ImportRow, mut detail: serde_json::Value) {
        let slugs = slugs(&row.topics);
        for slug in &slugs {
            self.topic_ids.push(id);
            self.topic_slugs.push(slug.clone());
        }
        detail["topics"] = json!(slugs);
        detail["line"] = json!(row.line);
        self.log_ids.push(id);
        self.log_details.push(detail);
    }

    async fn write(
        self,
        tx: &mut Transaction<'_, Postgres>,
        source: &ConsentSource,
    ) -> Result<(), StoreError> {
        insert_topics(tx, &self.topic_ids, &self.topic_slugs).await?;
        consent::record_many(
            tx,
            &self.log_ids,
            ConsentAction::Subscribed,
            source,
            &self.log_details,
        )
        .await
    }
}

/// Empty means none: UNNEST cannot take arrays of NULLs as simply.
fn text_of(name: &Option<DisplayName>) -> String {
    name.as_ref()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

/// Sets these pending subscribers active, the name and organisation given (non-empty)
/// replacing theirs; returns (id, normalised address) of those changed.
async fn activate(
    tx: &mut Transaction<'_, Postgres>,
    normalised: &[String],
    names: &[String],
    organisations: &[String],
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(sqlx::query!(
        "UPDATE subscribers s
         SET status = 'active', updated_at = now(),
             name = COALESCE(NULLIF(r.name, ''), s.name),
             organisation = COALESCE(NULLIF(r.organisation, ''), s.organisation)
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS r (normalised, name, organisation)
         WHERE s.email_normalised = r.normalised AND s.status = 'pending'
         RETURNING s.id, s.email_normalised",
        normalised,
        names,
        organisations
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.id, r.email_normalised))
    .collect())
}

async fn existing(
    conn: &mut PgConnection,
    normalised: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query!(
        "SELECT email_normalised, status FROM subscribers WHERE email_normalised = ANY($1)",
        normalised
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| (r.email_normalised, r.status))
    .collect())
}

/// Inserts the rows, skipping any address added meanwhile; returns the new ids.
async fn insert_batch(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[&ImportRow],
    status: SubscriberStatus,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut emails = Vec::with_capacity(rows.len());
    let mut normalised = Vec::with_capacity(rows.len());
    let mut names = Vec::with_capacity(rows.len());
    let mut organisations = Vec::with_capacity(rows.len());
    let mut link_ids = Vec::with_capacity(rows.len());
    let mut link_secrets = Vec::with_capacity(rows.len());
    for row in rows {
        let keys = LinkKeys::generate()?;
        emails.push(row.email.as_str().to_string());
        normalised.push(row.email.normalised());
        names.push(text_of(&row.name));
        organisations.push(text_of(&row.organisation));
        link_ids.push(keys.id);
        link_secrets.push(keys.secret);
    }
    let inserted = sqlx::query!(
        "INSERT INTO subscribers (email, email_normalised, name, organisation, status, link_id, link_secret)
         SELECT email, normalised, NULLIF(name, ''), NULLIF(organisation, ''), $7, link_id, link_secret
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[])
              AS r (email, normalised, name, organisation, link_id, link_secret)
         ON CONFLICT (email_normalised) DO NOTHING
         RETURNING id, email_normalised",
        &emails,
        &normalised,
        &names,
        &organisations,
        &link_ids,
        &link_secrets,
        status.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted
        .into_iter()
        .map(|r| (r.id, r.email_normalised))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_may_come_in_any_order_and_any_case() {
        let c = Columns::from_header(&["Topics", "EMAIL", "name"]).expect("valid");
        assert_eq!(
            (c.email, c.topics, c.name, c.organisation),
            (1, Some(0), Some(2), None)
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_first_column_is_ignored() {
        assert!(Columns::from_header(&["\u{feff}email", "name"]).is_ok());
    }

    #[test]
    fn a_header_without_email_or_with_an_unknown_column_is_refused() {
        let e = |h: &[&str]| Columns::from_header(h).err().unwrap_or_default();
        assert_eq!(e(&["name", "topics"]), "there is no `email` column");
        assert_eq!(e(&["email", "phone"]), "unknown column `phone`");
        assert_eq!(e(&["email", "Email"]), "the column `email` appears twice");
    }

    fn parsed(bytes: &[u8]) -> ImportFile {
        let catalog = TopicCatalog::builtin();
        ImportFile::parse(Path::new("t.csv"), bytes, &catalog, &catalog.all(), &Silent)
            .expect("readable")
    }

    fn lines(file: &ImportFile) -> (Vec<u64>, Vec<u64>) {
        (
            file.rows.iter().map(|r| r.line).collect(),
            file.problems.iter().map(|p| p.line).collect(),
        )
    }

    #[test]
    fn line_numbers_are_the_same_whatever_the_line_endings() {
        let text = "email,name\nann@example.org,Ann\nnot-an-address,Bob\n\"cy@example.org\",\"Cy\nTwo\"\ndi@example.org,Di\n";
        let unix = parsed(text.as_bytes());
        let windows = parsed(text.replace('\n', "\r\n").as_bytes());
        let old_mac = parsed(text.replace('\n', "\r").as_bytes());
        assert_eq!(lines(&unix), (vec![2, 6], vec![3, 4]));
        assert_eq!(lines(&windows), lines(&unix));
        assert_eq!(lines(&old_mac), lines(&unix));
    }

    #[test]
    fn only_the_active_rows_of_an_export_are_imported() {
        let file = parsed(
            b"email,name,organisation,topics,status,created_at,confirmed_at\n\
              ann@example.org,Ann,,training,active,2026-01-01T00:00:00+00:00,\n\
              bob@example.org,Bob,,training,unsubscribed,2026-01-01T00:00:00+00:00,\n",
        );
        assert_eq!(lines(&file), (vec![2], vec![3]));
        assert_eq!(
            file.problems[0].problem,
            RowProblem::NotActive {
                status: "unsubscribed".into()
            }
        );
    }

    #[test]
    fn a_control_character_in_a_name_or_organisation_is_a_row_error() {
        let file = parsed(
            b"email,name,organisation\nann@example.org,\"Ann\x1b[2J\",\nbob@example.org,Bob,\"Leeds\nCouncil\"\ncy@example.org,Cy,Leeds\n",
        );
        let problems: Vec<(u64, &RowProblem)> =
            file.problems.iter().map(|p| (p.line, &p.problem)).collect();
        assert_eq!(
            problems,
            [
                (
                    2,
                    &RowProblem::BadText {
                        column: "name",
                        problem: NameError::Control("U+001B".into())
                    }
                ),
                (
                    3,
                    &RowProblem::BadText {
                        column: "organisation",
                        problem: NameError::LineBreak
                    }
                ),
            ]
        );
        assert_eq!(lines(&file).0, [5]);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// A row an attacker or a careless export might hold.
        fn hostile_field() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z]{1,8}@example\\.org",
                "\\PC{0,20}",
                "[\"\r\n,;\u{1b}\u{feff}\u{0}a-z@=+-]{0,30}",
                Just("x".repeat(5000)),
                Just("\"unterminated".into()),
                Just("\u{feff}email".into()),
            ]
        }

        fn hostile_file() -> impl Strategy<Value = Vec<u8>> {
            let row = prop::collection::vec(hostile_field(), 0..5);
            let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
            (prop::collection::vec((row, ending), 0..12), any::<bool>()).prop_map(|(rows, bom)| {
                let mut text = String::from(if bom { "\u{feff}" } else { "" });
                text.push_str("email,name,organisation,topics\n");
                for (fields, ending) in rows {
                    text.push_str(&fields.join(","));
                    text.push_str(ending);
                }
                text.into_bytes()
            })
        }

        /// Every row of a parsed file is either to be imported or reported, each once, on a
        /// line that exists, in file order.
        fn check_accounted_for(bytes: &[u8], file: &ImportFile) {
            let physical_lines = 1 + bytes
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                .count() as u64;
            let (mut seen, _) = lines(file);
            seen.extend(file.problems.iter().map(|p| p.line));
            seen.sort_unstable();
            let mut unique = seen.clone();
            unique.dedup();
            assert_eq!(seen, unique, "a line reported twice");
            assert!(
                seen.iter().all(|&l| (2..=physical_lines).contains(&l)),
                "{seen:?}"
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_bytes_never_panic_the_importer(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
                let catalog = TopicCatalog::builtin();
                if let Ok(file) = ImportFile::parse(Path::new("t.csv"), &bytes, &catalog, &catalog.all(), &Silent) {
                    check_accounted_for(&bytes, &file);
                }
            }

            #[test]
            fn hostile_rows_are_imported_or_reported_on_their_own_line(bytes in hostile_file()) {
                let file = parsed(&bytes);
                check_accounted_for(&bytes, &file);
                // Without quotes, every non-empty line after the header is one row, reported
                // or imported under its own number.
                let text = String::from_utf8_lossy(&bytes);
                if !text.contains('"') {
                    let expected: Vec<u64> = text
                        .replace("\r\n", "\n")
                        .replace('\r', "\n")
                        .split('\n')
                        .zip(1..)
                        .skip(1)
                        .filter(|(l, _)| !l.is_empty())
                        .map(|(_, n)| n)
                        .collect();
                    let (mut seen, _) = lines(&file);
                    seen.extend(file.problems.iter().map(|p| p.line));
                    seen.sort_unstable();
                    prop_assert_eq!(seen, expected);
                }
            }
        }
    }
}
