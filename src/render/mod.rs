//! From an [`Issue`] to an email: handlebars templates make MJML, `mrml` makes responsive HTML,
//! and [`text`] makes the plain-text part from the same content.

pub mod cut;
pub mod images;
pub mod markdown;
pub mod message;
pub mod templates;
pub mod text;
pub mod view;

use std::path::{Path, PathBuf};

use handlebars::Handlebars;

use crate::config::Config;
use crate::content::{Diagnostic, Issue, Rule, Section, Topic, TopicCatalog, TopicSet};
pub use view::ReaderLinks;

/// Gmail clips a message whose HTML is larger than about 102 KB, hiding the footer and with it
/// the unsubscribe link.
pub const GMAIL_CLIP_BYTES: usize = 102_000;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the templates folder {0} does not exist")]
    TemplateDir(PathBuf),
    #[error("cannot read the template {path}")]
    ReadTemplate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the template {origin} does not parse")]
    Template {
        origin: String,
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    #[error("rendering the templates failed")]
    Render(#[source] Box<handlebars::RenderError>),
    #[error("the templates produced MJML that mrml cannot parse")]
    MjmlParse(#[source] mrml::prelude::parser::Error),
    #[error("the templates produced MJML that mrml cannot render")]
    MjmlRender(#[source] mrml::prelude::render::Error),
}

impl From<handlebars::RenderError> for RenderError {
    fn from(e: handlebars::RenderError) -> Self {
        Self::Render(Box::new(e))
    }
}

/// Who the email is for: everyone (the full issue), or a reader with these topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Topics(TopicSet),
}

impl Audience {
    /// Untagged sections go to every reader; tagged ones to readers of that topic.
    pub fn includes(&self, section: &Section) -> bool {
        self.includes_topic(section.topic.as_ref())
    }

    /// Whether a section with this topic (`None`: untagged) is for this audience.
    pub fn includes_topic(&self, topic: Option<&Topic>) -> bool {
        match (self, topic) {
            (Self::Everyone, _) | (_, None) => true,
            (Self::Topics(set), Some(t)) => set.contains(t),
        }
    }
}

/// Every distinct email an issue can become: one per non-empty subset of the topics its
/// sections use. A reader's topics map onto exactly one of these (their intersection with the
/// issue's topics), so `send` renders each once per campaign, not once per reader.
pub fn variants(issue: &Issue) -> Vec<TopicSet> {
    let topics: Vec<_> = issue.topics().into_iter().collect();
    let n = topics.len().min(16);
    (1u32..(1 << n))
        .map(|mask| {
            topics
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, t)| t.clone())
                .collect()
        })
        .collect()
}

/// An issue rendered for everyone and for each topic variant.
#[derive(Debug, Clone)]
pub struct Variants {
    pub full: Rendered,
    pub by_topics: Vec<(TopicSet, Rendered)>,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub mjml: String,
    pub html: String,
    pub text: String,
}

impl Rendered {
    pub fn is_clipped_by_gmail(&self) -> bool {
        self.html.len() > GMAIL_CLIP_BYTES
    }

    /// The distinct http(s) links a reader can follow in the HTML.
    pub fn links(&self) -> Vec<&str> {
        let mut links: Vec<&str> = self
            .html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|l| l.starts_with("http") || l.starts_with("mailto:"))
            .collect();
        links.sort_unstable();
        links.dedup();
        links
    }
}

pub struct Renderer {
    hb: Handlebars<'static>,
    mrml_options: mrml::prelude::render::RenderOptions,
}

impl Renderer {
    /// The built-in templates, each replaced by `overrides/<same path>` when that file exists.
    pub fn new(overrides: Option<&Path>) -> Result<Self, RenderError> {
        let mrml_options = mrml::prelude::render::RenderOptions {
            disable_comments: true,
            ..Default::default()
        };
        Ok(Self {
            hb: templates::registry(overrides)?,
            mrml_options,
        })
    }

    pub fn render(
        &self,
        issue: &Issue,
        config: &Config,
        catalog: &TopicCatalog,
        audience: &Audience,
        links: &ReaderLinks,
    ) -> Result<Rendered, RenderError> {
        let view = view::EmailView::new(issue, config, catalog, audience, links);
        let mjml = self.hb.render("email", &view)?;
        let html = cut::strip(&self.mjml_to_html(&mjml)?);
        let text = text::render(issue, config, catalog, audience, links);
        Ok(Rendered {
            mjml: cut::strip(&mjml),
            html,
            text,
        })
    }

    /// The whole issue and every topic variant of it (see [`variants`]). mrml runs once, on the
    /// whole issue; each variant is assembled from its pieces at the templates' cut marks, and
    /// its text from the sections' texts, written once. Templates without cut marks are
    /// rendered once per variant instead.
    pub fn render_variants(
        &self,
        issue: &Issue,
        config: &Config,
        catalog: &TopicCatalog,
        links: &ReaderLinks,
    ) -> Result<Variants, RenderError> {
        let view = view::EmailView::new(issue, config, catalog, &Audience::Everyone, links);
        let mjml = self.hb.render("email", &view)?;
        let html = self.mjml_to_html(&mjml)?;
        let (mjml_pieces, html_pieces) = (cut::Pieces::split(&mjml), cut::Pieces::split(&html));
        // Every section's block must carry its own mark (an "In this issue" entry's mark is not
        // enough), and mrml must have kept the marks. The marks name sections by anchor, so
        // they are only followed when no two sections share one (the loader makes them
        // unique; an `Issue` built some other way might not be).
        let blocks_marked = issue
            .sections
            .iter()
            .all(|s| mjml.contains(&cut::block_mark(&s.anchor)));
        let anchors = || issue.sections.iter().map(|s| s.anchor.as_str());
        let distinct = anchors().collect::<std::collections::HashSet<_>>().len();
        if !(blocks_marked && distinct == issue.sections.len() && html_pieces.covers(anchors())) {
            let full = self.render(issue, config, catalog, &Audience::Everyone, links)?;
            let by_topics = variants(issue)
                .into_iter()
                .map(|set| {
                    let r = self.render(
                        issue,
                        config,
                        catalog,
                        &Audience::Topics(set.clone()),
                        links,
                    )?;
                    Ok((set, r))
                })
                .collect::<Result<_, RenderError>>()?;
            return Ok(Variants { full, by_topics });
        }
        let text = text::parts(issue, config, catalog, links);
        let assemble = |audience: &Audience| {
            let included: std::collections::HashSet<&str> = issue
                .sections
                .iter()
                .filter(|s| audience.includes(s))
                .map(|s| s.anchor.as_str())
                .collect();
            let keep = |a: &str| included.contains(a);
            Rendered {
                mjml: mjml_pieces.assemble(keep),
                html: html_pieces.assemble(keep),
                text: text.assemble(audience),
            }
        };
        let full = assemble(&Audience::Everyone);
        let by_topics = variants(issue)
            .into_iter()
            .map(|set| {
                let r = assemble(&Audience::Topics(set.clone()));
                (set, r)
            })
            .collect();
        Ok(Variants { full, by_topics })
    }

    pub fn mjml_to_html(&self, mjml: &str) -> Result<String, RenderError> {
        let parsed = mrml::parse(mjml).map_err(RenderError::MjmlParse)?;
        parsed
            .element
            .render(&self.mrml_options)
            .map_err(RenderError::MjmlRender)
    }
}

/// The warning for an email Gmail would clip, as `check`, `compose` and `preview` give it.
pub fn size_warning(issue: &Issue, r: &Rendered) -> Diagnostic {
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
