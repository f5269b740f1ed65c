//! Preparing a campaign: the issue's content hash, its images published, and the campaign
//! created with its audience frozen (or resumed) in one unit of work of the store.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{SendError, SendOptions};
use crate::config::Config;
use crate::content::Issue;
use crate::store::Store;
use crate::store::ledger::{Campaign, CampaignImage, NewCampaign, Prepared};

/// SHA-256 over the issue's files (TOML and images; names and contents, in name order): a
/// changed issue is not sent on silently.
pub fn content_hash(dir: &Path) -> Result<String, SendError> {
    let read_err = |source| SendError::ReadIssue {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| {
                ["toml", "png", "jpg", "jpeg", "gif"]
                    .iter()
                    .any(|x| e.eq_ignore_ascii_case(x))
            })
        })
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(read_err)?;
        hash.update(
            f.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(hash.finalize()))
}

/// An issue with local images is sent only when readers can fetch them: from an https
/// `site.base_url` (mail clients and their image proxies refuse or warn on http).
pub fn check_image_site(issue: &Issue, config: &Config) -> Result<(), SendError> {
    let https = config.site.base_url.is_https();
    if issue.local_images().is_empty() || https {
        Ok(())
    } else {
        Err(SendError::ImagesNeedHttps(config.site.base_url.to_string()))
    }
}

/// The campaign for `issue`: created with its audience frozen on the first run; on later runs
/// resumed (set sending again when there is work), with newcomers added only when asked.
pub async fn prepare(
    store: &Store,
    issue: &Issue,
    options: &SendOptions,
) -> Result<Campaign, SendError> {
    let hash = content_hash(&issue.dir)?;
    // Resized before the transaction: it takes a while, and needs no row.
    let images = crate::render::images::publish(issue)?;
    let topics: Vec<String> = issue
        .topics()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let images: Vec<CampaignImage> = images
        .iter()
        .map(|img| CampaignImage {
            name: &img.name,
            content_type: img.content_type,
            bytes: &img.bytes,
        })
        .collect();
    let new = NewCampaign {
        issue: issue.id,
        subject: &issue.subject,
        content_hash: &hash,
        topics: &topics,
        allow_changed: options.allow_changed,
        include_new: options.include_new,
    };
    match store.prepare_campaign(new, &images).await? {
        Prepared::Ready(campaign) => Ok(campaign),
        Prepared::Cancelled => Err(SendError::Cancelled(issue.id.to_string())),
        Prepared::Changed(existing) => Err(SendError::Changed {
            began: existing.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            was: existing.content_hash,
            now: hash,
        }),
    }
}
