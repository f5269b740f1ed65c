//! The key `serve` signs form tokens with (table `web_key`): made once and kept in the
//! database, like the erasure key, so that it never sits in a configuration file and every
//! server process shares it.

use sqlx::PgConnection;

use super::{Store, StoreError};

impl Store {
    /// The installation's form key: `fresh` the first time, the stored one after that, so
    /// tokens in open pages stay good across restarts.
    pub async fn form_key(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_key(&mut conn, fresh).await?;
        key(&mut conn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the form key vanished".into()))
    }
}

/// Keeps the existing key when there is one.
async fn insert_key(conn: &mut PgConnection, key: &[u8]) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO web_key (key) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
        key
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn key(conn: &mut PgConnection) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT key FROM web_key")
        .fetch_optional(conn)
        .await?)
}
