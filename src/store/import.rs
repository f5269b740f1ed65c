//! `subscribers import`: a CSV file of practitioners, checked row by row as it is read and
//! streamed with COPY into a temporary table, then applied with a few set-based statements,
//! all in one transaction. Memory stays flat however many rows the file has.
//!
//! The file has a header line naming its columns: `email` (required), `name`, `organisation`
//! and `topics` (slugs separated by `;`), in any order. A row with a problem (a bad address, an
//! unknown topic, the same address as an earlier row) is reported with its line number and
//! skipped; a file that cannot be read as a whole (no header, an unknown column, bytes that are
//! not UTF-8) imports nothing. Importing is idempotent: someone already there is left as they
//! are, and someone who unsubscribed, bounced, was blocked or was erased is never brought back.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, Postgres, Transaction};

use super::consent::ConsentSource;
use super::email::{EmailError, SubscriberEmail};
use super::erase::{self, ErasureKey};
use super::name::{DisplayName, NameError};
use super::subscriber::{SubscriberStatus, slugs};
use super::token::{LINK_ID_LEN, LINK_KEY_LEN, random};
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
    ///
    /// Keeps every row in memory: for files of any size, [`Store::import_csv`] streams instead.
    pub fn read(
        path: &Path,
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        progress: &dyn Progress,
    ) -> Result<Self, ImportError> {
        let file = open(path)?;
        Self::collect(Rows::new(path, file, catalog, default_topics)?, progress)
    }

    /// Checks the contents of an import file read from `path` (named in messages).
    pub fn parse(
        path: &Path,
        bytes: &[u8],
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        progress: &dyn Progress,
    ) -> Result<Self, ImportError> {
        Self::collect(Rows::new(path, bytes, catalog, default_topics)?, progress)
    }

    fn collect<R: Read>(
        mut rows: Rows<'_, R>,
        progress: &dyn Progress,
    ) -> Result<Self, ImportError> {
        progress.begin("reading", rows.size);
        let mut file = ImportFile {
            path: rows.path.clone(),
            rows: Vec::new(),
            problems: Vec::new(),
        };
        let mut first_line: HashMap<String, u64> = HashMap::new();
        while let Some((line, checked)) = rows.next_row(progress)? {
            match checked {
                Ok(row) => match first_line.get(&row.email.normalised()) {
                    Some(&first_line) => file.problems.push(RowIssue {
                        line,
                        problem: RowProblem::Duplicate { first_line },
                    }),
                    None => {
                        first_line.insert(row.email.normalised(), line);
                        file.rows.push(row);
                    }
                },
                Err(problem) => file.problems.push(RowIssue { line, problem }),
            }
        }
        progress.end();
        Ok(file)
    }
}

fn open(path: &Path) -> Result<std::fs::File, ImportError> {
    std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A row that passed every check, or why it did not.
pub type CheckedRow = Result<ImportRow, RowProblem>;

/// The rows of an import file, read and checked one at a time: memory stays flat however long
/// the file is. Duplicates are not looked for here (that needs every address seen so far).
pub struct Rows<'a, R: Read> {
    path: PathBuf,
    reader: csv::Reader<Teed<R>>,
    record: csv::ByteRecord,
    columns: Columns,
    lines: LineCounter,
    catalog: &'a TopicCatalog,
    default_topics: &'a TopicSet,
    /// The file's length when known, for the progress bar.
    size: u64,
    done: u64,
}

impl<'a, R: Read> Rows<'a, R> {
    /// Reads the header line; a file without one, or with unknown columns, is refused.
    pub fn new(
        path: &Path,
        input: R,
        catalog: &'a TopicCatalog,
        default_topics: &'a TopicSet,
    ) -> Result<Self, ImportError> {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let seen = Seen::default();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Teed {
                inner: input,
                seen: seen.clone(),
            });
        let mut record = csv::ByteRecord::new();
        if !reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, e))?
        {
            return Err(ImportError::Empty {
                path: path.to_path_buf(),
            });
        }
        let header = fields(&record).ok_or_else(|| ImportError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1,
        })?;
        let columns = Columns::from_header(&header).map_err(|message| ImportError::Columns {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            record,
            columns,
            lines: LineCounter::new(seen),
            catalog,
            default_topics,
            size,
            done: 0,
        })
    }

    /// The next row's line and the row or what is wrong with it; `None` at the end.
    pub fn next_row(
        &mut self,
        progress: &dyn Progress,
    ) -> Result<Option<(u64, CheckedRow)>, ImportError> {
        if !self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| csv_error(&self.path, e))?
        {
            return Ok(None);
        }
        let byte = self.record.position().map_or(self.done, |p| p.byte());
        let line = self.lines.line_at(byte);
        let row = fields(&self.record).ok_or_else(|| ImportError::NotUtf8 {
            path: self.path.clone(),
            line,
        })?;
        let checked = parse_row(
            &row,
            self.record.as_slice().len(),
            &self.columns,
            self.catalog,
            self.default_topics,
        )
        .map(|parsed| ImportRow { line, ..parsed });
        if byte - self.done > 1 << 16 {
            progress.advance(byte - self.done);
            self.done = byte;
        }
        Ok(Some((line, checked)))
    }
}

fn csv_error(path: &Path, e: csv::Error) -> ImportError {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        // Byte records with flexible rows fail only on reading; kept typed all the same.
        other => std::io::Error::other(format!("{other:?}")),
    };
    ImportError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The bytes csv has read whose lines are not counted yet. csv reads ahead into a buffer of
/// its own and reports where each record began, so the count follows it from a short tail
/// (a few kilobytes) rather than from the whole file.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<VecDeque<u8>>>);

impl Seen {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u8>> {
        // Only this module touches it, and never while panicking with it held.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A reader that keeps what it reads in `seen` for the line count.
struct Teed<R> {
    inner: R,
    seen: Seen,
}

impl<R: Read> Read for Teed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.lock().extend(&buf[..n]);
        Ok(n)
    }
}

/// The line a byte offset is on, counted as an editor counts them: `\n`, `\r\n` and a lone
/// `\r` each end one line. (The csv crate's own count is one short per record in a file
/// with CRLF endings.) Offsets must be asked for in increasing order.
struct LineCounter {
    seen: Seen,
    /// The offset in the file of the first byte in `seen`.
    at: u64,
    line: u64,
}

impl LineCounter {
    fn new(seen: Seen) -> Self {
        Self {
            seen,
            at: 0,
            line: 1,
        }
    }

    /// The line of the record whose position csv gives as `byte`: that position may be on
    /// the previous record's line ending, so the record starts at the first byte after it
    /// that ends no line (csv skips empty lines).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut seen = self.seen.lock();
        let mut to =
            usize::try_from(byte.saturating_sub(self.at)).map_or(seen.len(), |b| b.min(seen.len()));
        while matches!(seen.get(to), Some(b'\r' | b'\n')) {
            to += 1;
        }
        for i in 0..to {
            match seen[i] {
                b'\n' => self.line += 1,
                b'\r' if seen.get(i + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
        }
        seen.drain(..to);
        self.at += to as u64;
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

impl Store {
    /// Writes the checked rows of `file` in one transaction: all of them or, on failure, none.
    pub async fn import(
        &self,
        file: &ImportFile,
        status: SubscriberStatus,
        progress: &dyn Progress,
    ) -> Result<ImportReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let key = erase::key(&mut tx).await?;
        create_staging(&mut tx).await?;
        let mut staging = Staging::start(&mut tx, key).await?;
        for row in &file.rows {
            staging.push(row).await?;
        }
        staging.finish().await?;
        let rows = (file.rows.len() + file.problems.len()) as u64;
        let report = apply(&mut tx, status, &file.path, rows, Vec::new(), progress).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Streams the CSV file at `path` into PostgreSQL (COPY into a temporary table) and applies
    /// it with a few set-based statements, in one transaction: all of it or, on failure,
    /// nothing. The rows' problems, duplicates included, are in the report's `problems`.
    pub async fn import_csv(
        &self,
        path: &Path,
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        status: SubscriberStatus,
        progress: &dyn Progress,
    ) -> Result<ImportReport, ImportFailure> {
        let mut rows = Rows::new(path, open(path)?, catalog, default_topics)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let key = erase::key(&mut tx).await?;
        create_staging(&mut tx).await?;
        let mut staging = Staging::start(&mut tx, key).await?;
        let (mut count, mut problems) = (0, Vec::new());
        progress.begin("reading", rows.size);
        // An unreadable row ends the import here: the transaction is dropped, nothing written.
        while let Some((line, checked)) = rows.next_row(progress)? {
            count += 1;
            match checked {
                Ok(row) => staging.push(&row).await?,
                Err(problem) => problems.push(RowIssue { line, problem }),
            }
        }
        staging.finish().await?;
        progress.end();
        let report = apply(&mut tx, status, path, count, problems, progress).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(report)
    }
}

/// Why `import_csv` imported nothing: the file, or the database.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows checked and on their way into the staging table through COPY, a buffer at a time.
struct Staging<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buffer: Vec<u8>,
    key: Option<ErasureKey>,
    /// Random bytes for new subscribers' link keys, drawn a few thousand rows at a time.
    random: Vec<u8>,
}

/// COPY's buffer is sent when it holds this much.
const COPY_CHUNK: usize = 1 << 18;
/// Link keys drawn from the system at a time.
const KEYS_AT_ONCE: usize = 4096;

impl<'c> Staging<'c> {
    async fn start(
        tx: &'c mut Transaction<'_, Postgres>,
        key: Option<ErasureKey>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            copy: copy_into_staging(tx).await?,
            buffer: Vec::with_capacity(COPY_CHUNK + MAX_ROW_BYTES * 2),
            key,
            random: Vec::new(),
        })
    }

    /// One row in COPY's text format: tab-separated, `\N` for none, bytea as `\\x…`.
    async fn push(&mut self, row: &ImportRow) -> Result<(), StoreError> {
        let normalised = row.email.normalised();
        let b = &mut self.buffer;
        b.extend_from_slice(row.line.to_string().as_bytes());
        b.push(b'\t');
        copy_text(b, row.email.as_str());
        b.push(b'\t');
        copy_text(b, &normalised);
        for text in [&row.name, &row.organisation] {
            b.push(b'\t');
            match text {
                Some(t) => copy_text(b, t.as_str()),
                None => b.extend_from_slice(b"\\N"),
            }
        }
        b.extend_from_slice(b"\t{");
        // Topic slugs are [a-z0-9-]: nothing to quote in an array literal.
        b.extend_from_slice(slugs(&row.topics).join(",").as_bytes());
        b.push(b'}');
        if self.random.len() < LINK_KEY_LEN {
            self.random = random(LINK_KEY_LEN * KEYS_AT_ONCE)?;
        }
        let keys = self.random.split_off(self.random.len() - LINK_KEY_LEN);
        let (id, secret) = keys.split_at(LINK_ID_LEN);
        b.push(b'\t');
        copy_bytea(b, id);
        b.push(b'\t');
        copy_bytea(b, secret);
        b.push(b'\t');
        match &self.key {
            Some(k) => copy_bytea(b, &k.tombstone_of_normalised(&normalised)),
            None => b.extend_from_slice(b"\\N"),
        }
        b.push(b'\n');
        if self.buffer.len() >= COPY_CHUNK {
            self.copy.send(self.buffer.as_slice()).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            self.copy.send(self.buffer.as_slice()).await?;
        }
        self.copy.finish().await?;
        Ok(())
    }
}

/// Text in COPY's text format: backslash, tab and line endings escaped.
fn copy_text(out: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}

/// bytea in COPY's text format: `\x` and hex, its backslash escaped.
fn copy_bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\\\x");
    for &byte in bytes {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 15)]);
    }
}

/// Applies the staged rows: drops duplicates, reports who is kept and why, activates pending
/// sign-ups (when importing as active) and adds the rest, each with topics and a log entry.
async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    path: &Path,
    rows: u64,
    mut problems: Vec<RowIssue>,
    progress: &dyn Progress,
) -> Result<ImportReport, StoreError> {
    progress.begin("writing", rows);
    let source = ConsentSource::import(path);
    index_staging(tx).await?;
    for (line, first_line) in drop_duplicates(tx).await? {
        problems.push(RowIssue {
            line: line as u64,
            problem: RowProblem::Duplicate {
                first_line: first_line as u64,
            },
        });
    }
    problems.sort_by_key(|p| p.line);
    let mut report = ImportReport {
        rows,
        problems,
        kept: kept(tx, status).await?,
        ..ImportReport::default()
    };
    if status == SubscriberStatus::Active {
        report.activated = activate(tx, &source).await?;
    }
    insert(tx, status, &source, &mut report).await?;
    progress.advance(rows);
    progress.end();
    report.kept.sort_by_key(|k| k.line);
    Ok(report)
}

// The statements below work on `import_rows`, a temporary table of this transaction: sqlx's
// macros cannot check them against the schema, so they are plain queries, typed by hand.

async fn create_staging(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TEMPORARY TABLE import_rows (
             line bigint NOT NULL,
             email text NOT NULL,
             normalised text NOT NULL,
             name text,
             organisation text,
             topics text[] NOT NULL,
             link_id bytea NOT NULL,
             link_secret bytea NOT NULL,
             tombstone bytea
         ) ON COMMIT DROP",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn copy_into_staging<'c>(
    tx: &'c mut Transaction<'_, Postgres>,
) -> Result<PgCopyIn<&'c mut PgConnection>, StoreError> {
    Ok(tx
        .copy_in_raw(
            "COPY import_rows (line, email, normalised, name, organisation, topics, link_id, \
             link_secret, tombstone) FROM STDIN",
        )
        .await?)
}

/// Temporary tables are never analysed on their own: without statistics the joins below
/// would be planned for a handful of rows.
async fn index_staging(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE INDEX ON import_rows (normalised);
         CREATE UNIQUE INDEX ON import_rows (line);
         ANALYZE import_rows",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes every row whose address (ignoring case) an earlier line has; returns (line, first
/// line) of each.
async fn drop_duplicates(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "WITH firsts AS (
             SELECT line, min(line) OVER (PARTITION BY normalised) AS first_line FROM import_rows
         )
         DELETE FROM import_rows r USING firsts f
         WHERE r.line = f.line AND f.first_line <> f.line
         RETURNING r.line, f.first_line",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The rows left as they are: on record already (other than a pending sign-up an active
/// import confirms), or erased.
async fn kept(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
) -> Result<Vec<Kept>, StoreError> {
    let mut rows = sqlx::query_as::<_, (i64, String, Option<String>, Option<DateTime<Utc>>)>(
        "SELECT r.line, r.email, s.status, NULL::timestamptz
         FROM import_rows r JOIN subscribers s ON s.email_normalised = r.normalised
         WHERE NOT (s.status = 'pending' AND $1 = 'active')
         UNION ALL
         SELECT r.line, r.email, NULL, e.erased_at
         FROM import_rows r JOIN erasures e ON e.email_hmac = r.tombstone
         WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email_normalised = r.normalised)",
    )
    .bind(status.as_str())
    .fetch(&mut **tx);
    let mut kept = Vec::new();
    while let Some((line, email, on_record, erased_at)) = rows.try_next().await? {
        let reason = match (on_record, erased_at) {
            (Some(s), _) => match SubscriberStatus::from_store(&s)? {
                s if s.has_left() => KeptReason::HasLeft(s),
                s => KeptReason::AlreadySubscribed(s),
            },
            (None, Some(at)) => KeptReason::Erased(at),
            (None, None) => return Err(StoreError::Corrupt("a kept row without a reason".into())),
        };
        kept.push(Kept {
            line: line as u64,
            email,
            reason,
        });
    }
    Ok(kept)
}

/// Makes the staged addresses that signed up without confirming active, with the file's
/// topics (and its name and organisation where it has them), each logged as subscribed by
/// this import; returns them in file order.
async fn activate(
    tx: &mut Transaction<'_, Postgres>,
    source: &ConsentSource,
) -> Result<Vec<Activated>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "WITH act AS (
             UPDATE subscribers s
             SET status = 'active', updated_at = now(),
                 name = COALESCE(r.name, s.name),
                 organisation = COALESCE(r.organisation, s.organisation)
             FROM import_rows r
             WHERE s.email_normalised = r.normalised AND s.status = 'pending'
             RETURNING s.id, r.line, r.email, r.topics
         ), gone AS (
             DELETE FROM subscriber_topics t USING act
             WHERE t.subscriber_id = act.id AND t.topic <> ALL (act.topics)
         ), topics AS (
             INSERT INTO subscriber_topics (subscriber_id, topic)
             SELECT act.id, unnest(act.topics) FROM act
             ON CONFLICT DO NOTHING
         ), logged AS (
             INSERT INTO consent_log (subscriber_id, action, source, detail)
             SELECT id, 'subscribed', $1,
                    jsonb_build_object('status', 'active', 'previous_status', 'pending',
                                       'topics', to_jsonb(topics), 'line', line)
             FROM act ORDER BY line
         )
         SELECT line, email FROM act ORDER BY line",
    )
    .bind(source.to_string())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(line, email)| Activated {
            line: line as u64,
            email,
        })
        .collect())
}

/// Adds the staged rows nobody has on record and no tombstone matches, with their topics and
/// a log entry each. One added meanwhile by someone else is kept as already subscribed.
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    source: &ConsentSource,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let mut rows = sqlx::query_as::<_, (i64, Option<String>)>(
        "WITH candidates AS MATERIALIZED (
             SELECT r.* FROM import_rows r
             WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email_normalised = r.normalised)
               AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.email_hmac = r.tombstone)
         ), added AS (
             INSERT INTO subscribers
                 (email, email_normalised, name, organisation, status, link_id, link_secret)
             SELECT email, normalised, name, organisation, $1, link_id, link_secret
             FROM candidates ORDER BY line
             ON CONFLICT (email_normalised) DO NOTHING
             RETURNING id, email_normalised
         ), joined AS (
             SELECT a.id, c.line, c.topics
             FROM added a JOIN candidates c ON c.normalised = a.email_normalised
         ), topics AS (
             INSERT INTO subscriber_topics (subscriber_id, topic)
             SELECT id, unnest(topics) FROM joined
         ), logged AS (
             INSERT INTO consent_log (subscriber_id, action, source, detail)
             SELECT id, 'subscribed', $2,
                    jsonb_build_object('status', $1::text, 'topics', to_jsonb(topics), 'line', line)
             FROM joined ORDER BY line
         )
         SELECT c.line, CASE WHEN a.id IS NULL THEN c.email END
         FROM candidates c LEFT JOIN added a ON a.email_normalised = c.normalised
         ORDER BY c.line",
    )
    .bind(status.as_str())
    .bind(source.to_string())
    .fetch(&mut **tx);
    while let Some((line, not_added)) = rows.try_next().await? {
        match not_added {
            None => report.added.push(line as u64),
            Some(email) => report.kept.push(Kept {
                line: line as u64,
                email,
                reason: KeptReason::AlreadySubscribed(status),
            }),
        }
    }
    Ok(())
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

    /// Hands over a few bytes a read, as a slow disk or pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn line_numbers_are_right_when_the_file_arrives_a_few_bytes_at_a_time() {
        let text = "email,name\r\nann@example.org,Ann\r\n\r\nnot-an-address,Bob\r\n\"cy@example.org\",\"Cy\r\nTwo\"\r\ndi@example.org,Di\r";
        let catalog = TopicCatalog::builtin();
        let all = catalog.all();
        let mut rows = Rows::new(Path::new("t.csv"), Trickle(text.as_bytes()), &catalog, &all)
            .expect("header");
        let mut lines = Vec::new();
        while let Some((line, _)) = rows.next_row(&Silent).expect("readable") {
            lines.push(line);
        }
        assert_eq!(lines, [2, 4, 5, 7]);
        assert_eq!(lines, {
            let (mut ok, bad) = super::tests::lines(&parsed(text.as_bytes()));
            ok.extend(bad);
            ok.sort_unstable();
            ok
        });
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
