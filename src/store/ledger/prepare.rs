//! Preparing a campaign: created with its audience frozen, or resumed, with its images, in
//! one transaction.

use super::{Campaign, CampaignStatus, campaign, counts, create_campaign, enqueue, set_status};
use crate::content::IssueId;
use crate::store::{Store, StoreError};

/// A new campaign as `send` asks for it: the issue, what was hashed, and its audience's topics.
#[derive(Debug, Clone, Copy)]
pub struct NewCampaign<'a> {
    pub issue: IssueId,
    pub subject: &'a str,
    pub content_hash: &'a str,
    pub topics: &'a [String],
    /// Go on although the content hash differs from the campaign's.
    pub allow_changed: bool,
    /// On a resumed campaign, add who became active since the audience was frozen.
    pub include_new: bool,
}

/// One image stored with the campaign, for `serve`.
#[derive(Debug, Clone, Copy)]
pub struct CampaignImage<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// What [`Store::prepare_campaign`] found.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Created (with its audience frozen) or resumed, its images stored.
    Ready(Campaign),
    /// The campaign was cancelled: nothing was changed.
    Cancelled,
    /// The issue's content hash differs from the campaign's: nothing was changed.
    Changed(Campaign),
}

impl Store {
    /// The campaign for an issue, in one transaction: created with its audience frozen on the
    /// first run; on later runs resumed (set sending again when there is work), with newcomers
    /// added only when asked; its images stored with it, before any message links to them.
    pub async fn prepare_campaign(
        &self,
        new: NewCampaign<'_>,
        images: &[CampaignImage<'_>],
    ) -> Result<Prepared, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(id) = create_campaign(
            &mut *tx,
            new.issue,
            new.subject,
            new.content_hash,
            new.topics,
        )
        .await?
        {
            let n = enqueue(&mut *tx, id).await?;
            tracing::info!(campaign = %id, recipients = n, "audience frozen");
        } else {
            let existing = campaign(&mut *tx, new.issue)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            if existing.status == CampaignStatus::Cancelled {
                return Ok(Prepared::Cancelled);
            }
            if existing.content_hash != new.content_hash && !new.allow_changed {
                return Ok(Prepared::Changed(existing));
            }
            let added = if new.include_new {
                enqueue(&mut *tx, existing.id).await?
            } else {
                0
            };
            let has_work = added > 0 || counts(&mut *tx, existing.id).await?.remaining() > 0;
            if existing.status != CampaignStatus::Sending && has_work {
                set_status(&mut *tx, existing.id, CampaignStatus::Sending).await?;
            }
        }
        let campaign = campaign(&mut *tx, new.issue)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        // On a resumed run, again: a changed issue's new images have new names.
        for img in images {
            crate::store::images::save_campaign_image(
                &mut tx,
                campaign.id,
                img.name,
                img.content_type,
                img.bytes,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Prepared::Ready(campaign))
    }
}
