//! Erasure (the right to be forgotten) with a tombstone, so that an erased address is never
//! silently added again by a later import.
//!
//! The tombstone is an HMAC-SHA256 of the normalised address under a random 256-bit key made
//! once per installation and kept in the `erasure_key` table. A plain SHA-256 of an address can
//! be reversed by hashing guesses (addresses are guessable: `first.last@leeds.gov.uk`), and can
//! be matched against any other list hashed the same way; the keyed hash can be matched only
//! by someone holding this installation's key. The key lives beside the tombstones rather than
//! in `lscp-mail.toml` on purpose: a key lost or changed with the configuration would make
//! every tombstone unrecognisable, and the erased practitioners would be re-added silently,
//! which is the one failure the tombstone exists to prevent.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::{PgConnection, Postgres, Transaction};

use super::consent::{self, ConsentAction, ConsentEntry, ConsentSource};
use super::email::{SubscriberEmail, redact_addresses};
use super::subscriber::{self, SubscriberId};
use super::token::random;
use super::{Store, StoreError};

const KEY_LEN: usize = 32;

/// The installation's key for tombstones.
pub(crate) struct ErasureKey(Vec<u8>);

impl ErasureKey {
    /// The tombstone of an address.
    pub fn tombstone(&self, email: &SubscriberEmail) -> Vec<u8> {
        self.tombstone_of_normalised(&email.normalised())
    }

    pub fn tombstone_of_normalised(&self, normalised: &str) -> Vec<u8> {
        // new_from_slice only fails for key sizes HMAC cannot take; any length is fine for it.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// An erasure as the data-protection officer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    pub erased_at: DateTime<Utc>,
    /// The history kept from before, with no personal data in it.
    pub history: Vec<ConsentEntry>,
}

impl Store {
    /// Removes the subscriber's personal data (address, name, organisation, topics, link
    /// secret), keeping a tombstone and their consent history detached from them.
    pub async fn forget(
        &self,
        email: &SubscriberEmail,
        source: &ConsentSource,
    ) -> Result<DateTime<Utc>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let subscriber = subscriber::locked(&mut tx, email).await?;
        let key = key_creating(&mut tx).await?;
        let erasure = insert_tombstone(&mut tx, &key.tombstone(email)).await?;
        detach_history(&mut tx, subscriber.id, erasure.0).await?;
        let detail = json!({ "previous_status": subscriber.status.as_str() });
        record_erasure(&mut tx, erasure.0, source, detail).await?;
        redact_replies(&mut tx, subscriber.id, email).await?;
        delete_subscriber(&mut tx, subscriber.id).await?;
        tx.commit().await?;
        Ok(erasure.1)
    }

    /// When the address was erased, with the history kept, if it was.
    pub async fn erasure(&self, email: &SubscriberEmail) -> Result<Option<Erasure>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(key) = key(&mut conn).await? else {
            return Ok(None);
        };
        let Some((id, erased_at)) = tombstone(&mut conn, &key.tombstone(email)).await? else {
            return Ok(None);
        };
        let history = erased_history(&mut conn, id).await?;
        Ok(Some(Erasure { erased_at, history }))
    }
}

/// When the address was erased, if it was.
pub(crate) async fn erased_at(
    conn: &mut PgConnection,
    email: &SubscriberEmail,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let Some(key) = key(conn).await? else {
        return Ok(None);
    };
    Ok(tombstone(conn, &key.tombstone(email)).await?.map(|t| t.1))
}

/// The key, made on the first erasure. `None` before then, when there are no tombstones.
pub(crate) async fn key(conn: &mut PgConnection) -> Result<Option<ErasureKey>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT key FROM erasure_key")
        .fetch_optional(conn)
        .await?
        .map(ErasureKey))
}

async fn key_creating(tx: &mut Transaction<'_, Postgres>) -> Result<ErasureKey, StoreError> {
    insert_key(tx, &random(KEY_LEN)?).await?;
    key(tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the erasure key vanished".into()))
}

/// Keeps the existing key when there is one: tombstones must stay recognisable.
async fn insert_key(tx: &mut Transaction<'_, Postgres>, key: &[u8]) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO erasure_key (key) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
        key
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn tombstone(
    conn: &mut PgConnection,
    hmac: &[u8],
) -> Result<Option<(i64, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query!(
        "SELECT id, erased_at FROM erasures WHERE email_hmac = $1",
        hmac
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.erased_at)))
}

/// A second erasure of the same address (after they came back) reuses the tombstone.
async fn insert_tombstone(
    tx: &mut Transaction<'_, Postgres>,
    hmac: &[u8],
) -> Result<(i64, DateTime<Utc>), StoreError> {
    let row = sqlx::query!(
        "INSERT INTO erasures (email_hmac) VALUES ($1)
         ON CONFLICT (email_hmac) DO UPDATE SET erased_at = now()
         RETURNING id, erased_at",
        hmac
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((row.id, row.erased_at))
}

async fn detach_history(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
    erasure_id: i64,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE consent_log SET erasure_id = $2 WHERE subscriber_id = $1",
        subscriber_id as SubscriberId,
        erasure_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_erasure(
    tx: &mut Transaction<'_, Postgres>,
    erasure_id: i64,
    source: &ConsentSource,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO consent_log (erasure_id, action, source, detail) VALUES ($1, $2, $3, $4)",
        erasure_id,
        ConsentAction::Erased.as_str(),
        source.to_string(),
        detail
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Their deliveries stay (the campaign's counts), detached by the delete; the servers' replies
/// recorded there, and the diagnostics of bounce reports, lose any address they quote. Replies are stored redacted already; this also
/// covers replies stored before that, and a server quoting the address in a form the
/// redaction missed.
async fn redact_replies(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
    email: &SubscriberEmail,
) -> Result<(), StoreError> {
    let rows = sqlx::query!(
        r#"SELECT id, last_reply, bounce_diagnostic FROM deliveries
           WHERE subscriber_id = $1
             AND (last_reply IS NOT NULL OR bounce_diagnostic IS NOT NULL)"#,
        subscriber_id as SubscriberId
    )
    .fetch_all(&mut **tx)
    .await?;
    let address = email.normalised();
    let clean = |text: Option<String>| {
        text.map(|t| {
            let t = redact_addresses(&t).into_owned();
            if t.to_lowercase().contains(&address) {
                "(reply removed at erasure)".to_string()
            } else {
                t
            }
        })
    };
    let mut ids = Vec::with_capacity(rows.len());
    let mut replies = Vec::with_capacity(rows.len());
    let mut diagnostics = Vec::with_capacity(rows.len());
    for r in rows {
        ids.push(r.id);
        replies.push(clean(r.last_reply));
        diagnostics.push(clean(r.bounce_diagnostic));
    }
    sqlx::query!(
        "UPDATE deliveries d SET last_reply = r.reply, bounce_diagnostic = r.diagnostic
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS r(id, reply, diagnostic)
         WHERE d.id = r.id",
        &ids,
        &replies as &[Option<String>],
        &diagnostics as &[Option<String>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deleting the row takes the topics with it and detaches the (already tombstoned) history.
async fn delete_subscriber(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM subscribers WHERE id = $1",
        subscriber_id as SubscriberId
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn erased_history(
    conn: &mut PgConnection,
    erasure_id: i64,
) -> Result<Vec<ConsentEntry>, StoreError> {
    let rows = sqlx::query!(
        "SELECT at, action, source, detail FROM consent_log WHERE erasure_id = $1 ORDER BY id",
        erasure_id
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| consent::entry(r.at, &r.action, &r.source, r.detail))
        .collect()
}
