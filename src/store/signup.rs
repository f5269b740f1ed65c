//! Sign-up confirmation links (`signup_confirmations`): only a SHA-256 of each link's random
//! token is stored, with the topics the form asked for.

use super::subscriber::SubscriberId;
use super::{Store, StoreError};

/// A confirmation link's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct ConfirmationId(i64);

/// Where a stored link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLink {
    pub used: bool,
    pub expired: bool,
}

/// A link just marked used: whose it was and what they asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: ConfirmationId,
    pub subscriber_id: SubscriberId,
    /// Topic slugs, as the form sent them.
    pub topics: Vec<String>,
}

impl Store {
    /// Keeps a new link for `subscriber_id`, good for `hours`.
    pub async fn add_confirmation(
        &self,
        subscriber_id: SubscriberId,
        token_hash: &[u8],
        topics: &[String],
        hours: i32,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO signup_confirmations (subscriber_id, token_hash, topics, expires_at)
             VALUES ($1, $2, $3, now() + make_interval(hours => $4))",
            subscriber_id as SubscriberId,
            token_hash,
            topics,
            hours
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The link with this hash, if there is one.
    pub async fn confirmation(&self, token_hash: &[u8]) -> Result<Option<StoredLink>, StoreError> {
        Ok(sqlx::query_as!(
            StoredLink,
            r#"SELECT used_at IS NOT NULL AS "used!", expires_at <= now() AS "expired!"
               FROM signup_confirmations WHERE token_hash = $1"#,
            token_hash
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks a usable link used, in one statement, so two presses of "Confirm" cannot both
    /// use it.
    pub async fn claim_confirmation(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<Claimed>, StoreError> {
        Ok(sqlx::query_as!(
            Claimed,
            r#"UPDATE signup_confirmations SET used_at = now()
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
               RETURNING id AS "id: ConfirmationId", subscriber_id AS "subscriber_id: SubscriberId",
                         topics"#,
            token_hash
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Makes a claimed link usable again, when confirming failed and changed nothing.
    pub async fn unclaim_confirmation(&self, id: ConfirmationId) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE signup_confirmations SET used_at = NULL WHERE id = $1",
            id as ConfirmationId
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
