//! File events to rebuilds: a `notify` watcher on the issue folder, the templates folder and
//! the configuration file's folder; a burst of events (an editor writes a temporary file, then
//! renames it) makes one rebuild.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::server::Preview;
use super::{Sources, build, templates_dir};
use crate::config::Config;

/// How long to wait after an event for the rest of its burst.
pub const DEBOUNCE: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path} for changes")]
pub struct WatchError {
    path: PathBuf,
    #[source]
    source: notify::Error,
}

/// Watches the sources and republishes a build after each change, until the returned watcher
/// is dropped. Must be called inside a tokio runtime.
pub fn start(preview: Preview) -> Result<notify::RecommendedWatcher, WatchError> {
    let sources = preview.sources().clone();
    let paths = Paths::of(&sources);
    let (tx, rx) = mpsc::unbounded_channel();
    let filter = paths.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| filter.is_source(p)) {
            // The receiver is gone only when the preview is stopping.
            let _ = tx.send(());
        }
    })
    .map_err(|source| WatchError {
        path: sources.issue.clone(),
        source,
    })?;
    for (dir, mode) in paths.watched() {
        watcher
            .watch(&dir, mode)
            .map_err(|source| WatchError { path: dir, source })?;
    }
    tokio::spawn(rebuild_on_change(preview, rx));
    Ok(watcher)
}

async fn rebuild_on_change(preview: Preview, mut rx: mpsc::UnboundedReceiver<()>) {
    while rx.recv().await.is_some() {
        preview.building();
        tokio::time::sleep(DEBOUNCE).await;
        while rx.try_recv().is_ok() {}
        let sources = preview.sources().clone();
        // Loading and rendering are CPU work: off the threads that answer the page.
        let Ok(build) = tokio::task::spawn_blocking(move || build(&sources)).await else {
            continue;
        };
        let generation = preview.publish(build);
        tracing::info!(generation, "rebuilt the preview");
    }
}

/// Absolute paths, since the watcher reports absolute ones.
#[derive(Debug, Clone)]
struct Paths {
    issue: PathBuf,
    templates: Option<PathBuf>,
    config: Option<PathBuf>,
}

impl Paths {
    fn of(sources: &Sources) -> Self {
        let config_file = sources.config_file();
        // The templates folder may come from the configuration.
        let templates = Config::load(sources.config.as_deref())
            .ok()
            .and_then(|c| templates_dir(sources, &c))
            .or_else(|| sources.templates.clone());
        Self {
            issue: absolute(&sources.issue),
            templates: templates.as_deref().map(absolute),
            config: config_file.as_deref().map(absolute),
        }
    }

    fn is_source(&self, path: &Path) -> bool {
        super::is_source(
            path,
            &self.issue,
            self.templates.as_deref(),
            self.config.as_deref(),
        )
    }

    /// The configuration's folder, not the file: editors save by renaming a new file over the
    /// old one, which a watch on the file itself would not survive.
    fn watched(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut v = vec![(self.issue.clone(), RecursiveMode::Recursive)];
        if let Some(t) = &self.templates
            && t.is_dir()
        {
            v.push((t.clone(), RecursiveMode::Recursive));
        }
        if let Some(dir) = self.config.as_deref().and_then(Path::parent) {
            v.push((dir.to_path_buf(), RecursiveMode::NonRecursive));
        }
        v
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}
