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

mod apply;
mod bulk;
mod lines;
mod read;
mod report;
mod row;
mod staging;
#[cfg(test)]
mod tests;

pub use apply::ImportFailure;
pub use bulk::BULK_MIN_ROWS;
pub use read::{ImportError, ImportFile, Rows};
pub use report::{Activated, ImportReport, KEPT_LISTED, Kept, KeptReason};
pub use row::{CheckedRow, ImportRow, RowIssue, RowProblem};

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
