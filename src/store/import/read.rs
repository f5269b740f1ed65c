//! Reading an import file: the header, then its rows one at a time ([`Rows`], what
//! `import_csv` streams), or all of them at once with duplicates found ([`ImportFile`]); and
//! the [`ImportError`] that refuses a file as a whole.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Progress;
use super::lines::{LineCounter, Seen, Teed};
use super::row::{CheckedRow, Columns, ImportRow, RowIssue, RowProblem, fields, parse_row};
use crate::content::{TopicCatalog, TopicSet};

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

/// A file read and checked, ready to import.
#[derive(Debug)]
pub struct ImportFile {
    pub path: PathBuf,
    pub rows: Vec<ImportRow>,
    pub problems: Vec<RowIssue>,
}

impl ImportFile {
    /// Reads and checks `path`. Rows whose topics cell is empty get `default_topics`.
    ///
    /// Keeps every row in memory: for files of any size, [`Store::import_csv`](crate::store::Store::import_csv) streams instead.
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

pub(super) fn open(path: &Path) -> Result<std::fs::File, ImportError> {
    std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

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
    pub(super) size: u64,
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
