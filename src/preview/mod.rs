//! `lscp-mail preview`: the editor's loop. A local web server shows the issue as the email,
//! rebuilds it whenever a file of the issue, of the templates in use or the configuration is
//! saved, and tells the open page to reload through server-sent events.
//!
//! [`build`] is one load-and-render of everything (the same load, checks and renderer as
//! `compose`); [`server`] holds the latest build and answers the page; [`watch`] turns file
//! events into rebuilds; [`page`] writes the preview page, the only one with script.

pub mod page;
pub mod server;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;

use crate::config::{Config, DEFAULT_CONFIG_FILE, Mail};
use crate::content::{Diagnostic, TopicCatalog, TopicSet, load_issue};
use crate::render::images::{self, PublishedImage};
use crate::render::{Audience, ReaderLinks, Rendered, Renderer, templates};

/// What the preview is built from; the configuration and templates are read again on every
/// build, so that saving them shows at once.
#[derive(Debug, Clone)]
pub struct Sources {
    pub issue: PathBuf,
    /// `--config`, as given; `None` reads `./lscp-mail.toml` when present, as every command does.
    pub config: Option<PathBuf>,
    /// `--templates`; `None` uses `compose.templates` from the configuration.
    pub templates: Option<PathBuf>,
}

impl Sources {
    /// The configuration file a build reads, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        match &self.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        }
    }
}

/// One build of the issue: the email in every variant, or why there is none.
#[derive(Debug)]
pub enum Build {
    Ready(Box<Ready>),
    /// The issue has errors: every diagnostic, errors and warnings, as `check` prints them.
    Broken {
        diagnostics: Vec<Diagnostic>,
    },
    /// Not the issue's fault: the configuration or a template is broken.
    Failed {
        error: String,
    },
}

#[derive(Debug)]
pub struct Ready {
    pub id: String,
    pub title: String,
    pub subject: String,
    pub warnings: Vec<Diagnostic>,
    /// The topics the issue's sections use, for the variant switch.
    pub topics: TopicSet,
    pub catalog: TopicCatalog,
    pub mail: Mail,
    pub full: Rendered,
    /// Every non-empty subset of `topics`, as `send` renders them.
    pub variants: Vec<(TopicSet, Rendered)>,
    /// What a reader whose topics the issue does not use receives: the untagged sections.
    pub untagged: Rendered,
    /// The issue's local images as `compose` writes them, served beside `/email`.
    pub images: Vec<PublishedImage>,
}

impl Ready {
    /// The email for a reader of `topics` (`None`: the full issue). Like `send`, a reader gets
    /// the sections of the topics they chose that the issue has.
    pub fn email(&self, topics: Option<&TopicSet>) -> &Rendered {
        let Some(wanted) = topics else {
            return &self.full;
        };
        let kept: TopicSet = wanted.intersection(&self.topics).cloned().collect();
        if kept.is_empty() {
            return &self.untagged;
        }
        self.variants
            .iter()
            .find(|(set, _)| *set == kept)
            .map_or(&self.full, |(_, r)| r)
    }
}

impl Build {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }
}

/// Loads, checks and renders the issue from scratch.
pub fn build(sources: &Sources) -> Build {
    let config = match Config::load(sources.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return failed(anyhow::Error::new(e).context("the configuration does not load")),
    };
    match build_with(sources, &config) {
        Ok(b) => b,
        Err(e) => failed(e),
    }
}

fn failed(e: anyhow::Error) -> Build {
    Build::Failed {
        error: format!("{e:#}"),
    }
}

/// The templates folder a build uses: `--templates`, else the configuration's.
pub fn templates_dir(sources: &Sources, config: &Config) -> Option<PathBuf> {
    sources
        .templates
        .clone()
        .or_else(|| config.compose.templates.clone())
}

fn build_with(sources: &Sources, config: &Config) -> anyhow::Result<Build> {
    let catalog = config.topic_catalog()?;
    let mut loaded = load_issue(&sources.issue, &catalog);
    loaded.diagnostics.extend(config.contrast_diagnostics());
    let templates = templates_dir(sources, config);
    if let Some(dir) = &templates {
        loaded
            .diagnostics
            .extend(templates::unused_override_warnings(dir));
    }
    let Some(issue) = loaded.issue.take() else {
        let mut diagnostics = loaded.diagnostics;
        // Errors first: they are why there is no email.
        diagnostics.sort_by_key(|d| !d.is_error());
        return Ok(Build::Broken { diagnostics });
    };
    let renderer = Renderer::new(templates.as_deref())?;
    let links = ReaderLinks::preview(config, &issue).with_relative_images();
    let all = renderer.render_variants(&issue, config, &catalog, &links)?;
    let untagged = renderer.render(
        &issue,
        config,
        &catalog,
        &Audience::Topics(TopicSet::new()),
        &links,
    )?;
    let images = images::publish(&issue)?;
    let mut warnings = loaded.diagnostics;
    if all.full.is_clipped_by_gmail() {
        warnings.push(crate::render::size_warning(&issue, &all.full));
    }
    Ok(Build::Ready(Box::new(Ready {
        id: issue.id.to_string(),
        title: issue.title.clone(),
        subject: issue.subject.clone(),
        warnings,
        topics: issue.topics(),
        catalog,
        mail: config.mail.clone(),
        full: all.full,
        variants: all.by_topics,
        untagged,
        images,
    })))
}

/// Whether a changed path is one a build reads: anything in the issue folder or the templates
/// folder, or the configuration file.
pub fn is_source(
    path: &Path,
    issue: &Path,
    templates: Option<&Path>,
    config: Option<&Path>,
) -> bool {
    let under = |dir: &Path| path.starts_with(dir);
    under(issue) || templates.is_some_and(under) || config.is_some_and(|c| path == c)
}

/// Ports tried after the one asked for, when it is taken.
const MORE_PORTS: u16 = 20;

/// Listens on `addr`, or on the next free port after it when it is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for port in addr.port()..=addr.port().saturating_add(MORE_PORTS) {
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 => {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

/// Builds the issue, watches its files and serves the preview on `listener` until `shutdown`.
pub async fn serve(
    sources: Sources,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let first = {
        let sources = sources.clone();
        tokio::task::spawn_blocking(move || build(&sources)).await?
    };
    let preview = server::Preview::new(sources, first);
    // Dropping the watcher stops it: keep it for as long as the server runs.
    let _watcher = watch::start(preview.clone())?;
    let closing = preview.clone();
    axum::serve(listener, server::router(preview))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.close();
        })
        .await?;
    Ok(())
}
