//! The staging table: `import_rows`, a temporary table of the import's transaction, and the
//! checked rows streamed into it with COPY, a buffer at a time, each with its new link key and
//! erasure tombstone.

use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, Postgres, Transaction};

use super::{ImportRow, MAX_ROW_BYTES};
use crate::store::StoreError;
use crate::store::erase::ErasureKey;
use crate::store::subscriber::slugs;
use crate::store::token::{LINK_ID_LEN, LINK_KEY_LEN, random};

/// Rows checked and on their way into the staging table through COPY, a buffer at a time.
pub(super) struct Staging<'c> {
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
    pub(super) async fn start(
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
    pub(super) async fn push(&mut self, row: &ImportRow) -> Result<(), StoreError> {
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

    pub(super) async fn finish(mut self) -> Result<(), StoreError> {
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

// The statements below work on `import_rows`, a temporary table of this transaction: sqlx's
// macros cannot check them against the schema, so they are plain queries.

pub(super) async fn create_staging(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
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
/// would be planned for a handful of rows. Only the columns joined on are analysed (with the
/// row count, which is what matters most): the text arrays and random keys took three times as
/// long to sample, for statistics no statement uses.
pub(super) async fn index_staging(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE INDEX ON import_rows (normalised);
         CREATE UNIQUE INDEX ON import_rows (line);
         ANALYZE import_rows (line, normalised, tombstone)",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
