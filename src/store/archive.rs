//! Which issues the public archive may show.

use super::{Store, StoreError};
use crate::content::IssueId;

impl Store {
    /// The issues that have been sent, newest first: those with a campaign that was not
    /// cancelled, or was cancelled after some readers were sent it.
    pub async fn sent_issues(&self) -> Result<Vec<IssueId>, StoreError> {
        let ids = sqlx::query_scalar!(
            "SELECT c.issue_id FROM campaigns c
             WHERE c.status <> 'cancelled'
                OR EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = c.id AND d.status = 'sent')
             ORDER BY c.issue_id DESC"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids
            .iter()
            .filter_map(|id| IssueId::parse(id).ok())
            .collect())
    }
}
