//! `lscp-mail.toml` and the environment. Without `--config`, `./lscp-mail.toml` is read when
//! present, else the built-in defaults stand. The environment overrides the file:
//! `DATABASE_URL`, `SMTP_URL`, and `LSCP_MAIL_<SECTION>__<KEY>` for any other setting.
//!
//! This file holds [`Config`] itself and names the parts: `sections.rs` the settings of each
//! section, `brand.rs` the brand and its colours' contrast, `value.rs` the typed values a
//! setting's text is parsed into, `load.rs` reading the file and the environment and checking
//! what serde cannot, `error.rs` what is wrong and where it was set, `redact.rs` URLs shown
//! without their secrets, `rate.rs` the sending rate.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::content::{TopicCatalog, TopicInfo};

mod brand;
mod error;
mod load;
mod rate;
mod redact;
mod sections;
mod value;

pub use brand::{Brand, Colour, ContrastWarning, MIN_TEXT_CONTRAST};
pub use error::{ConfigError, Origin};
pub use rate::{Rate, RateError};
pub use redact::redact_url;
pub use sections::{
    Bounce, Compose, Dkim, DkimAlgorithm, GiveUpAfter, Mail, SendSettings, Serve, Site, Smtp,
};
pub use value::{HttpUrl, TaggedAddress, ValueProblem};

pub const DEFAULT_CONFIG_FILE: &str = "lscp-mail.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub brand: Brand,
    /// The topics readers choose from, in the order the sign-up box lists them.
    pub topics: Vec<TopicInfo>,
    pub site: Site,
    pub mail: Mail,
    pub compose: Compose,
    /// `DATABASE_URL` overrides it.
    pub database_url: Option<SecretString>,
    pub smtp: Smtp,
    pub serve: Serve,
    pub send: SendSettings,
    pub bounce: Bounce,
    /// Sign every message with DKIM when set.
    pub dkim: Option<Dkim>,
    /// The file the settings were read from, for diagnostics about them.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            brand: Brand::default(),
            topics: TopicCatalog::builtin().info().to_vec(),
            site: Site::default(),
            mail: Mail::default(),
            compose: Compose::default(),
            database_url: None,
            smtp: Smtp::default(),
            serve: Serve::default(),
            send: SendSettings::default(),
            bounce: Bounce::default(),
            dkim: None,
            file: None,
        }
    }
}

#[cfg(test)]
mod tests;
