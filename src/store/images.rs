//! An issue's published images, stored with its campaign for `serve`.

use sqlx::{PgConnection, Postgres, Transaction};

use super::ledger::CampaignId;
use super::{Store, StoreError};
use crate::content::IssueId;

/// One image as `serve` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Store {
    /// The image `name` of the issue `issue`, if a campaign for it stored one.
    pub async fn issue_image(
        &self,
        issue: IssueId,
        name: &str,
    ) -> Result<Option<StoredImage>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        issue_image(&mut conn, issue, name).await
    }
}

/// Stores an image with the campaign; one already stored under its name is kept (the name is a
/// hash of its content, so it is the same image).
pub async fn save_campaign_image(
    tx: &mut Transaction<'_, Postgres>,
    campaign_id: CampaignId,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO campaign_images (campaign_id, name, content_type, bytes)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (campaign_id, name) DO NOTHING",
        campaign_id.get(),
        name,
        content_type,
        bytes
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn issue_image(
    conn: &mut PgConnection,
    issue: IssueId,
    name: &str,
) -> Result<Option<StoredImage>, StoreError> {
    let row = sqlx::query_as!(
        StoredImage,
        "SELECT i.content_type, i.bytes
           FROM campaign_images i JOIN campaigns c ON c.id = i.campaign_id
          WHERE c.issue_id = $1 AND i.name = $2",
        issue.to_string(),
        name
    )
    .fetch_optional(conn)
    .await?;
    Ok(row)
}
