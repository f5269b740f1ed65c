//! [`ConfigError`], what is wrong with the configuration, and [`Origin`], where a setting's
//! value came from: the file as given or the environment variable as the user spelt it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::load::ENV_PREFIX;

/// What is wrong with the configuration, naming the setting and where it was set: the file
/// as it was given, or the environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read the configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Settings that do not exist or whose values do not read; the source (figment's error,
    /// from serde) says what is wrong with each.
    #[error("invalid configuration: {}", .settings.join(", "))]
    Settings {
        /// Each setting at fault with its origin: "`send.rate` (LSCP_MAIL_SEND__RATE)".
        settings: Vec<String>,
        #[source]
        source: Box<figment::Error>,
    },
    /// A value that reads but cannot be used.
    #[error("invalid configuration: `{key}` = \"{value}\"{origin} {problem}")]
    Value {
        key: &'static str,
        value: String,
        origin: Origin,
        problem: &'static str,
        #[source]
        source: Option<BoxError>,
    },
    #[error("invalid configuration: the topics")]
    Topics(#[source] crate::content::topic::TopicError),
    /// Two settings that do not fit together.
    #[error("invalid configuration: {0}")]
    Inconsistent(String),
}

/// Where a setting's value came from, as " (in FILE)" or " (LSCP_MAIL_…)"; empty for a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin(Option<String>);

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(o) => write!(f, " ({o})"),
            None => Ok(()),
        }
    }
}

impl Origin {
    /// From figment's metadata for the setting at `path`: the environment variable spelt as
    /// the user set it (figment only says "`LSCP_MAIL_` environment variable(s)"), or `file`
    /// as it was given (figment shortens it to a path relative to the current directory).
    pub(super) fn of(
        md: Option<&figment::Metadata>,
        path: &[String],
        file: Option<&Path>,
    ) -> Origin {
        let Some(md) = md else {
            return Origin(None);
        };
        let name = md.name.as_ref();
        let origin = if name.contains(ENV_PREFIX) {
            format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase())
        } else if name.contains("environment") {
            // DATABASE_URL and SMTP_URL, the only other variables read.
            match path.first().map(String::as_str) {
                Some("database_url") => "DATABASE_URL".to_owned(),
                _ => "SMTP_URL".to_owned(),
            }
        } else if let (Some(figment::Source::File(_)), Some(file)) = (&md.source, file) {
            format!("in {}", file.display())
        } else if name == "Default" {
            return Origin(None);
        } else {
            match &md.source {
                Some(source) => format!("in {source}"),
                None => name.to_owned(),
            }
        };
        Origin(Some(origin))
    }
}

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
