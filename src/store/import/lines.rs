//! Line numbers as an editor counts them, for the report: the bytes csv reads are kept (a
//! short tail of them) so that each record's byte offset can be turned into its line.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// The bytes csv has read whose lines are not counted yet. csv reads ahead into a buffer of
/// its own and reports where each record began, so the count follows it from a short tail
/// (a few kilobytes) rather than from the whole file.
#[derive(Clone, Default)]
pub(super) struct Seen(Arc<Mutex<VecDeque<u8>>>);

impl Seen {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u8>> {
        // Only this module touches it, and never while panicking with it held.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A reader that keeps what it reads in `seen` for the line count.
pub(super) struct Teed<R> {
    pub(super) inner: R,
    pub(super) seen: Seen,
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
pub(super) struct LineCounter {
    seen: Seen,
    /// The offset in the file of the first byte in `seen`.
    at: u64,
    line: u64,
}

impl LineCounter {
    pub(super) fn new(seen: Seen) -> Self {
        Self {
            seen,
            at: 0,
            line: 1,
        }
    }

    /// The line of the record whose position csv gives as `byte`: that position may be on
    /// the previous record's line ending, so the record starts at the first byte after it
    /// that ends no line (csv skips empty lines).
    pub(super) fn line_at(&mut self, byte: u64) -> u64 {
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
