//! Loading: the file (its TOML syntax checked first), then the environment through figment,
//! then the checks serde cannot make; figment's errors turned into a [`ConfigError`] that
//! names each setting at fault and where it was set.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::error::BoxError;
use super::value::setting_problem;
use super::{Config, ConfigError, DEFAULT_CONFIG_FILE, Origin};
use crate::content::TopicCatalog;

pub(super) const ENV_PREFIX: &str = "LSCP_MAIL_";

impl Config {
    /// Reads `path`, or `./lscp-mail.toml` when there is one, then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let mut figment = Figment::new();
        if let Some(file) = &file {
            check_syntax(file)?;
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut config = Self::extract(figment, file.as_deref())?;
        config.file = file;
        Ok(config)
    }

    /// The built-in defaults with the environment's overrides: for tests and embedding.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        Self::extract(figment, None)
    }

    /// `figment` (holding `file`, if any) with the environment's overrides.
    fn extract(figment: Figment, file: Option<&Path>) -> Result<Self, ConfigError> {
        let figment = figment
            // LSCP_MAIL_LOG sets the log filter (main.rs); it is not a setting.
            .merge(Env::prefixed(ENV_PREFIX).filter(|k| k != "log").split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Env::raw().only(&["SMTP_URL"]).map(|_| "smtp.url".into()));
        let config: Config = figment
            .extract()
            .map_err(|source| settings_error(source, &figment, file))?;
        config.validate(&|key| {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            Origin::of(figment.find_metadata(key), &path, file)
        })?;
        Ok(config)
    }

    /// Checks what serde cannot; `origin` says where a setting (`send.batch`) was set.
    fn validate(&self, origin: &dyn Fn(&str) -> Origin) -> Result<(), ConfigError> {
        self.topic_catalog()?;
        let bad =
            |key: &'static str, value: &dyn fmt::Display, problem, source: Option<BoxError>| {
                ConfigError::Value {
                    key,
                    value: value.to_string(),
                    origin: origin(key),
                    problem,
                    source,
                }
            };
        let s = &self.send;
        for (key, value) in [
            ("send.burst", u64::from(s.burst)),
            ("send.batch", u64::from(s.batch)),
            ("send.concurrency", u64::from(s.concurrency)),
            ("send.max_attempts", u64::from(s.max_attempts)),
            (
                "send.max_consecutive_failures",
                u64::from(s.max_consecutive_failures),
            ),
        ] {
            if value == 0 {
                return Err(bad(key, &value, "must be at least 1", None));
            }
        }
        // A claim must outlast the longest SMTP conversation, or a slow send would be taken over
        // by another process and go twice.
        if s.lease_seconds < 3 * s.smtp_timeout_seconds {
            return Err(ConfigError::Inconsistent(format!(
                "`send.lease_seconds` ({}){} must be at least three times `send.smtp_timeout_seconds` ({}){}",
                s.lease_seconds,
                origin("send.lease_seconds"),
                s.smtp_timeout_seconds,
                origin("send.smtp_timeout_seconds"),
            )));
        }
        Ok(())
    }

    pub fn topic_catalog(&self) -> Result<TopicCatalog, ConfigError> {
        TopicCatalog::new(self.topics.clone()).map_err(ConfigError::Topics)
    }
}

fn check_syntax(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        let (line, column) = e
            .span()
            .map(|s| crate::content::diagnostic::Source { path, text: &text }.position(s.start))
            .unwrap_or((1, 1));
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        });
    }
    Ok(())
}

/// Figment's error, naming each setting at fault and where its value came from: the file as
/// given, or the environment variable as the user spelt it. A setting read as text that does
/// not parse into its type (a URL, an address) is said with its value and the parser's reason.
fn settings_error(source: figment::Error, figment: &Figment, file: Option<&Path>) -> ConfigError {
    if source.count() == 1 && matches!(source.kind, figment::error::Kind::Message(_)) {
        let key = source.path.join(".");
        if let Some(text) = figment.find_value(&key).ok().and_then(|v| v.into_string())
            && let Some((key, problem)) = setting_problem(&key, &text)
        {
            return ConfigError::Value {
                key,
                value: text,
                origin: Origin::of(figment.find_metadata(key), &source.path, file),
                problem: problem.problem,
                source: problem.source,
            };
        }
    }
    let settings = source
        .clone()
        .into_iter()
        .map(|e| {
            let mut path = e.path.clone();
            // An unknown key's error may be reported at its table: name the key itself.
            if let figment::error::Kind::UnknownField(field, _) = &e.kind
                && path.last() != Some(field)
            {
                path.push(field.clone());
            }
            let origin = Origin::of(e.metadata.as_ref(), &path, file);
            format!("`{}`{origin}", path.join("."))
        })
        .collect();
    ConfigError::Settings {
        settings,
        source: Box::new(source),
    }
}
