//! Loading and rendering as `compose` and `check` share them, with the diagnostics each finds.

use std::path::Path;

use crate::config::Config;
use crate::content::{Diagnostic, Issue, Loaded, Rule, load_issue};
use crate::render::{Audience, GMAIL_CLIP_BYTES, ReaderLinks, Rendered, Renderer};

/// Loads the issue and, when it has no errors, renders it for `audience`.
pub struct Report {
    pub loaded: Loaded,
    pub rendered: Option<Rendered>,
}

impl Report {
    pub fn build(
        dir: &Path,
        config: &Config,
        templates: Option<&Path>,
        audience: &Audience,
    ) -> anyhow::Result<Self> {
        let catalog = config.topic_catalog()?;
        let mut loaded = load_issue(dir, &catalog);
        let mut rendered = None;
        if let Some(issue) = &loaded.issue {
            let renderer = Renderer::new(templates.or(config.compose.templates.as_deref()))?;
            let links = ReaderLinks::preview(config, issue);
            let r = renderer.render(issue, config, &catalog, audience, &links)?;
            if r.is_clipped_by_gmail() {
                loaded.diagnostics.push(size_warning(issue, &r));
            }
            rendered = Some(r);
        }
        Ok(Self { loaded, rendered })
    }

    pub fn issue(&self) -> Option<&Issue> {
        self.loaded.issue.as_ref()
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.loaded.diagnostics
    }

    pub fn error_count(&self) -> usize {
        self.loaded.errors().count()
    }

    pub fn warning_count(&self) -> usize {
        self.loaded.warnings().count()
    }
}

fn size_warning(issue: &Issue, r: &Rendered) -> Diagnostic {
    Diagnostic::warning(
        Rule::EmailSize,
        &issue.dir,
        format!(
            "the HTML is {}, over Gmail's {} clipping limit: Gmail will hide the end of the email, unsubscribe link included",
            kb(r.html.len()),
            kb(GMAIL_CLIP_BYTES)
        ),
    )
    .hint("shorten the longest sections, or split the issue")
}

pub fn kb(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}
