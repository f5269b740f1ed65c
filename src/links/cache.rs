//! The answers of earlier link checks, kept for a day so that a second `check --links` asks
//! only about new addresses. Only working addresses (and permanent redirects) are kept: a
//! failure is asked again every time, since it is the thing the editor is fixing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::probe::Outcome;

/// How long an answer is trusted.
pub const LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// `$XDG_CACHE_HOME/lscp-mail/links.json`, else `~/.cache/lscp-mail/links.json`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("lscp-mail").join("links.json"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// Seconds since the Unix epoch.
    checked: u64,
    outcome: Outcome,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Cache {
    /// An unreadable or missing cache is an empty one: it only makes the check slower.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cache>(&bytes).ok())
            .map(|mut c| {
                let oldest = now().saturating_sub(LIFETIME.as_secs());
                c.entries.retain(|_, e| e.checked >= oldest);
                c
            })
            .unwrap_or_default()
    }

    pub fn get(&self, url: &str) -> Option<&Outcome> {
        self.entries.get(url).map(|e| &e.outcome)
    }

    pub fn put(&mut self, url: &str, outcome: &Outcome) {
        if matches!(outcome, Outcome::Fine | Outcome::Moved { .. }) {
            self.entries.insert(
                url.to_string(),
                Entry {
                    checked: now(),
                    outcome: outcome.clone(),
                },
            );
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }
}
