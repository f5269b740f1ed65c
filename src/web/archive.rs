//! The archive: the issues that have been sent, as web pages with the same content as the
//! email (the same [`EmailView`], laid out for a browser), loaded from the issues folder.
//!
//! "Sent" means `lscp-mail send` has begun a campaign for the issue that was not cancelled, or
//! was cancelled after some readers were sent it (their "view in browser" links must work): an
//! issue in the folder but not sent is not shown, so nothing is public before its email goes
//! out.

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::content::when::format_date;
use crate::content::{Issue, IssueId, TopicCatalog, load_issue};
use crate::render::view::EmailView;
use crate::render::{Audience, ReaderLinks};
use crate::store::{Store, StoreError};

/// The sent issues, newest first.
pub async fn sent_issues(store: &Store) -> Result<Vec<IssueId>, StoreError> {
    store.sent_issues().await
}

/// One campaign a month: the list is short.
pub async fn is_sent(store: &Store, id: IssueId) -> Result<bool, StoreError> {
    Ok(sent_issues(store).await?.contains(&id))
}

/// The issue `issues_dir/YYYY-MM`, if it is there and has no errors (a broken one is logged).
pub fn load(issues_dir: &Path, id: IssueId, catalog: &TopicCatalog) -> Option<Issue> {
    let dir = issues_dir.join(id.to_string());
    if !dir.is_dir() {
        tracing::warn!("issue {id} was sent but {} is missing", dir.display());
        return None;
    }
    let loaded = load_issue(&dir, catalog);
    if loaded.issue.is_none() {
        let first = loaded.errors().next().map(ToString::to_string);
        tracing::warn!(
            "issue {id} was sent but {} has errors now: {}",
            dir.display(),
            first.unwrap_or_default()
        );
    }
    loaded.issue
}

/// The page's address, which every email's "view in browser" link points at.
pub fn issue_url(config: &Config, id: IssueId) -> String {
    config.site.url(&format!("/issues/{id}"))
}

/// What the archive page's template sees: the email's view of the whole issue.
#[derive(Serialize)]
pub struct IssuePage<'a> {
    #[serde(flatten)]
    pub view: EmailView<'a>,
    pub published: String,
}

impl<'a> IssuePage<'a> {
    pub fn new(
        issue: &'a Issue,
        config: &'a Config,
        catalog: &'a TopicCatalog,
        links: &'a ReaderLinks,
    ) -> Self {
        Self {
            view: EmailView::new(issue, config, catalog, &Audience::Everyone, links),
            published: format_date(issue.published),
        }
    }
}

/// The email's Markdown gives links an inline colour for mail clients; the site's CSP forbids
/// inline styles, and its stylesheet colours links anyway.
pub fn without_inline_link_styles(html: &str, config: &Config) -> String {
    html.replace(
        &format!(
            " style=\"color:{};text-decoration:underline\"",
            config.brand.primary_colour
        ),
        "",
    )
}
