//! Loading and rendering as `compose` and `check` share them, with the diagnostics each finds.

use std::path::Path;

use crate::config::Config;
use crate::content::{Diagnostic, Issue, Loaded, load_issue};
pub use crate::render::kb;
use crate::render::{Audience, ReaderLinks, Rendered, Renderer, size_warning, templates};

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
        loaded.diagnostics.extend(config.contrast_diagnostics());
        let overrides = templates.or(config.compose.templates.as_deref());
        if let Some(dir) = overrides {
            loaded
                .diagnostics
                .extend(templates::unused_override_warnings(dir));
        }
        let mut rendered = None;
        if let Some(issue) = &loaded.issue {
            let renderer = Renderer::new(overrides)?;
            let links = ReaderLinks::preview(config, issue).with_relative_images();
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
