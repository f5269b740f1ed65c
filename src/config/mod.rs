//! `lscp-mail.toml` and the environment. Without `--config`, `./lscp-mail.toml` is read when
//! present, else the built-in defaults stand. The environment overrides the file:
//! `DATABASE_URL`, `SMTP_URL`, and `LSCP_MAIL_<SECTION>__<KEY>` for any other setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lettre::message::Mailbox;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::content::{Diagnostic, Rule, TopicCatalog, TopicInfo};

mod rate;

pub use rate::{Rate, RateError};

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

/// How the email looks and who it says it is from. Colours are `#rrggbb`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Brand {
    pub organisation: String,
    pub short_name: String,
    pub website: HttpUrl,
    /// An absolute URL of the logo image; without one the header shows the organisation name.
    pub logo_url: Option<String>,
    pub logo_alt: String,
    pub primary_colour: Colour,
    pub accent_colour: Colour,
    pub background_colour: Colour,
    pub text_colour: Colour,
    pub postal_address: String,
    pub contact_email: String,
    pub signup_heading: String,
    pub signup_intro: String,
    pub signup_closing: String,
    pub footer_reason: String,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            organisation: "Leeds Safeguarding Children Partnership".into(),
            short_name: "LSCP".into(),
            website: HttpUrl::builtin("https://www.leedsscp.org.uk"),
            logo_url: None,
            logo_alt: "Leeds Safeguarding Children Partnership".into(),
            primary_colour: Colour("#4b2e83".into()),
            accent_colour: Colour("#00757f".into()),
            background_colour: Colour("#f3f1f6".into()),
            text_colour: Colour("#1f1f1f".into()),
            postal_address: "LSCP Business Unit, Leeds City Council, Merrion House, 110 Merrion Centre, Leeds LS2 8BB".into(),
            contact_email: "lscp.info@leeds.gov.uk".into(),
            signup_heading: "Register for your copy of our newsletter delivered direct to your inbox".into(),
            signup_intro: "Sign up to receive email updates on:".into(),
            signup_closing: "Our monthly newsletter contains all the latest information that practitioners need to safeguard children and young people in Leeds. Registration is simple. Just add your email address.".into(),
            footer_reason: "You are receiving this because you signed up for the LSCP newsletter for practitioners who work with children and families in Leeds.".into(),
        }
    }
}

/// A CSS colour `#rgb` or `#rrggbb`: it goes into style attributes, so nothing else may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Colour(String);

impl Colour {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix('#').unwrap_or("");
        if (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(format!("`{s}` is not a colour like \"#4b2e83\""))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Red, green and blue, 0 to 255 (`#rgb` is `#rrggbb` with each digit doubled).
    fn rgb(&self) -> [u8; 3] {
        let hex = self.0.trim_start_matches('#');
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).unwrap_or(0);
        let channel = |i: usize| match hex.len() {
            3 => digit(i) * 17,
            _ => digit(2 * i) * 16 + digit(2 * i + 1),
        };
        [channel(0), channel(1), channel(2)]
    }

    /// WCAG 2's relative luminance (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance).
    fn luminance(&self) -> f64 {
        let [r, g, b] = self.rgb().map(|c| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        });
        0.2126 * r + 0.7152 * g + 0.0722 * b
    }

    /// WCAG 2's contrast ratio with `other`, from 1 (none) to 21 (black on white).
    pub fn contrast_ratio(&self, other: &Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

/// WCAG AA's least contrast for body text.
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// A text colour and the background the built-in templates set it on, below WCAG AA.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastWarning {
    /// The configuration key of the text's colour, or `white` for the templates' own white.
    pub text: &'static str,
    pub background: &'static str,
    pub ratio: f64,
}

impl fmt::Display for ContrastWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |key: &str| {
            if key == WHITE {
                "white (#ffffff)".to_string()
            } else {
                format!("`{key}`")
            }
        };
        write!(
            f,
            "text in {} on {} has a contrast of {:.2}:1, below WCAG AA's {MIN_TEXT_CONTRAST}:1; some readers will not be able to read it",
            name(self.text),
            name(self.background),
            self.ratio
        )
    }
}

const WHITE: &str = "white";

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Colour::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The public site behind the email's links (`lscp-mail serve`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Site {
    /// Links in messages start with this: `LSCP_MAIL_SITE__BASE_URL` overrides it.
    pub base_url: HttpUrl,
    /// Where every page's "Quick leave" button goes: a neutral site that reveals nothing.
    pub quick_leave_url: HttpUrl,
}

impl Default for Site {
    fn default() -> Self {
        Self {
            base_url: HttpUrl::builtin("https://news.leedsscp.org.uk"),
            quick_leave_url: HttpUrl::builtin("https://www.bbc.co.uk/weather"),
        }
    }
}

impl Site {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }
}

/// What is wrong with a setting's text that does not parse into its type, and why.
#[derive(Debug)]
pub struct ValueProblem {
    problem: &'static str,
    source: Option<BoxError>,
}

/// A setting parsed into its type once, as the configuration loads, and written back as text.
trait Setting: Sized + fmt::Display {
    fn parse_setting(text: &str) -> Result<Self, ValueProblem>;
}

/// The settings held as a [`Setting`] type: what a value of one that does not parse says is
/// wrong with it, for [`ConfigError::Value`].
fn setting_problem(key: &str, text: &str) -> Option<(&'static str, ValueProblem)> {
    let (key, parsed) = match key {
        "site.base_url" => ("site.base_url", HttpUrl::parse_setting(text).map(drop)),
        "site.quick_leave_url" => (
            "site.quick_leave_url",
            HttpUrl::parse_setting(text).map(drop),
        ),
        "brand.website" => ("brand.website", HttpUrl::parse_setting(text).map(drop)),
        "serve.listen" => ("serve.listen", SocketAddr::parse_setting(text).map(drop)),
        "mail.from" => ("mail.from", Mailbox::parse_setting(text).map(drop)),
        "mail.reply_to" => ("mail.reply_to", Mailbox::parse_setting(text).map(drop)),
        _ => return None,
    };
    parsed.err().map(|problem| (key, problem))
}

/// `#[serde(with)]` for a [`Setting`] of a crate's type: read from its text, written as it.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<T: super::Setting, S: Serializer>(
        v: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, T: super::Setting, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        T::parse_setting(&text).map_err(|p| serde::de::Error::custom(p.problem))
    }

    /// The same for an optional setting.
    pub(super) mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in super::super) fn serialize<T: super::super::Setting, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        pub(in super::super) fn deserialize<'de, T: super::super::Setting, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    T::parse_setting(&text).map_err(|p| serde::de::Error::custom(p.problem))
                })
                .transpose()
        }
    }
}

/// An http(s) URL, kept with the text it was written as: shown and put into links as written
/// (`url::Url` would add a `/` to `https://example.org`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    url: url::Url,
}

impl HttpUrl {
    /// The URL as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// One of the defaults above, which are http(s) URLs.
    fn builtin(text: &str) -> Self {
        Self::parse_setting(text).unwrap_or_else(|_| unreachable!("a built-in URL parses"))
    }
}

impl Setting for HttpUrl {
    fn parse_setting(text: &str) -> Result<Self, ValueProblem> {
        let problem = "is not an http(s) URL";
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Self {
                text: text.to_owned(),
                url,
            }),
            Ok(_) => Err(ValueProblem {
                problem,
                source: None,
            }),
            Err(e) => Err(ValueProblem {
                problem,
                source: Some(e.into()),
            }),
        }
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = ValueProblem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_setting(s)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.problem)
    }
}

impl std::error::Error for ValueProblem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_text::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        as_text::deserialize(d)
    }
}

impl Setting for SocketAddr {
    fn parse_setting(text: &str) -> Result<Self, ValueProblem> {
        text.parse()
            .map_err(|e: std::net::AddrParseError| ValueProblem {
                problem: "is not an address and port like \"127.0.0.1:8080\"",
                source: Some(e.into()),
            })
    }
}

impl Setting for Mailbox {
    fn parse_setting(text: &str) -> Result<Self, ValueProblem> {
        text.parse()
            .map_err(|e: lettre::address::AddressError| ValueProblem {
                problem: "is not an address like \"Name <name@example.org>\"",
                source: Some(e.into()),
            })
    }
}

/// Headers of every message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    #[serde(with = "as_text")]
    pub from: Mailbox,
    #[serde(with = "as_text::option")]
    pub reply_to: Option<Mailbox>,
    /// `Message-ID`s are made on this domain.
    pub message_id_domain: String,
    /// The `List-Id` header: `<name.domain>` without the angle brackets.
    pub list_id: String,
    /// Also offer unsubscribing by email in `List-Unsubscribe` (RFC 2369), e.g.
    /// `unsubscribe@news.leedsscp.org.uk`: each reader's mailto is
    /// `unsubscribe+TOKEN@…?subject=unsubscribe`, so `lscp-mail bounces` knows who asked
    /// without trusting the `From` header.
    pub unsubscribe_mailto: Option<TaggedAddress>,
    /// Where delivery reports go, e.g. `bounces@news.leedsscp.org.uk`: each message's envelope
    /// sender becomes `bounces+TAG@…` (VERP), TAG naming the delivery, not the reader. Unset:
    /// the envelope sender is `from`.
    pub bounce_address: Option<TaggedAddress>,
}

/// An address that mail can reach with a tag after a `+` (Postfix's `recipient_delimiter`,
/// Exim's `local_part_suffix`): `bounces@example.org` reached as `bounces+TAG@example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct TaggedAddress {
    local: String,
    domain: String,
}

impl TaggedAddress {
    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("`{s}` {why}: write a plain address like \"bounces@news.example.org\"")
        };
        let (local, domain) = s
            .trim()
            .rsplit_once('@')
            .ok_or_else(|| bad("is not an address"))?;
        if local.is_empty() || domain.is_empty() {
            return Err(bad("is not an address"));
        }
        if local.contains('+') {
            return Err(bad("already has a `+` tag"));
        }
        if s.contains(['<', '>', ' ', '"', ',', '?']) {
            return Err(bad("is not a bare address"));
        }
        if s.parse::<lettre::Address>().is_err() {
            return Err(bad("is not an address"));
        }
        Ok(Self {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    /// `local+tag@domain`.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{}+{tag}@{}", self.local, self.domain)
    }

    /// The tag of `address` when it is this address with one (local part and domain compared
    /// without regard to case, the tag as it is); `None` for anything else.
    pub fn tag_of<'a>(&self, address: &'a str) -> Option<&'a str> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        let (base, tag) = local.split_once('+')?;
        (base.eq_ignore_ascii_case(&self.local)
            && domain.eq_ignore_ascii_case(&self.domain)
            && !tag.is_empty())
        .then_some(tag)
    }
}

impl fmt::Display for TaggedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl From<TaggedAddress> for String {
    fn from(a: TaggedAddress) -> Self {
        a.to_string()
    }
}

impl<'de> Deserialize<'de> for TaggedAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaggedAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `lscp-mail bounces`: what comes back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bounce {
    /// Soft bounces (a 4.x.x status, a delay) within `soft_days` that make a reader bounced.
    pub soft_limit: u32,
    pub soft_days: u32,
    /// The IMAP folder processed reports are moved to.
    pub processed_folder: String,
}

impl Default for Bounce {
    fn default() -> Self {
        Self {
            soft_limit: 3,
            soft_days: 30,
            processed_folder: "Processed".into(),
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            from: Mailbox::new(
                Some("Leeds Safeguarding Children Partnership".into()),
                lettre::Address::new("lscp.info", "leeds.gov.uk")
                    .unwrap_or_else(|_| unreachable!("the built-in address parses")),
            ),
            reply_to: None,
            message_id_domain: "news.leedsscp.org.uk".into(),
            list_id: "practitioners.news.leedsscp.org.uk".into(),
            unsubscribe_mailto: None,
            bounce_address: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compose {
    /// Previews go in `<out_dir>/<YYYY-MM>/`.
    pub out_dir: PathBuf,
    /// A folder whose templates replace the built-in ones of the same name.
    pub templates: Option<PathBuf>,
}

impl Default for Compose {
    fn default() -> Self {
        Self {
            out_dir: "out".into(),
            templates: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://…` (TLS), `smtp://127.0.0.1:2525`
    /// (plain, local). `SMTP_URL` overrides it.
    pub url: Option<SecretString>,
    /// A PEM file of the CA that signed the relay's certificate, trusted besides the usual
    /// ones: for a relay with a private CA. `LSCP_MAIL_SMTP__CA_FILE` overrides it.
    pub ca_file: Option<PathBuf>,
}

/// `lscp-mail serve`: the web server behind the links.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    /// The address and port to listen on; `--listen` overrides it.
    #[serde(with = "as_text")]
    pub listen: SocketAddr,
    /// The folder of issues the archive pages are made from.
    pub issues_dir: PathBuf,
    /// Sign-up form posts one client may make an hour.
    pub signup_per_hour: u32,
    /// Requests one client may make a minute to pages with a link token in their address.
    pub link_requests_per_minute: u32,
    /// Behind a reverse proxy, count requests by the address the proxy appended to
    /// `X-Forwarded-For` instead of the connection's. Only when a proxy you run sets it: anyone
    /// can send the header.
    pub trust_forwarded_for: bool,
}

impl Default for Serve {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issues_dir: "issues".into(),
            signup_per_hour: 10,
            link_requests_per_minute: 30,
            trust_forwarded_for: false,
        }
    }
}

/// How `send` paces and retries. Each can be overridden on the command line.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendSettings {
    /// `20/s`, `600/min`, `0` for no limit: across all of one process's connections.
    pub rate: Rate,
    /// How many messages may go at once after a pause (the token bucket's size).
    pub burst: u32,
    /// Deliveries claimed from the ledger at a time by one connection.
    pub batch: u32,
    /// SMTP connections at once.
    pub concurrency: u32,
    /// Recipients a day (since midnight, Europe/London) across every campaign and process;
    /// e.g. 10000 for a Microsoft 365 mailbox.
    pub daily_cap: Option<u32>,
    /// Tries per recipient for temporary (4xx) failures before giving up.
    pub max_attempts: u32,
    /// The first retry waits this long; each later one twice as long, with jitter.
    pub retry_after_seconds: u64,
    /// Limit on each SMTP exchange (connect, greeting, each command, the message).
    pub smtp_timeout_seconds: u64,
    /// A claim of a sender alive but hung or cut off from the database returns to the queue
    /// after this time; a crashed sender's claims are taken at once, a live one renews its own.
    pub lease_seconds: u64,
    /// The same permanent refusal of this many different readers' messages in a row pauses
    /// the run: something about the message or the account is wrong, not about the readers.
    pub max_consecutive_failures: u32,
    /// How long the mail server may stay unreachable (or keep deferring everyone) before
    /// `send` stops with everything still queued: "3d", "12h", "90m", "45s".
    pub give_up_after: GiveUpAfter,
}

/// A length of time written as people do ("3d", "12h 30m", "45s"); bare numbers are seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveUpAfter(pub std::time::Duration);

impl Serialize for GiveUpAfter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for GiveUpAfter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(n) => Ok(Self(std::time::Duration::from_secs(n))),
            Raw::Text(t) => match t.trim().parse::<u64>() {
                Ok(n) => Ok(Self(std::time::Duration::from_secs(n))),
                Err(_) => humantime::parse_duration(t.trim()).map(Self).map_err(|e| {
                    serde::de::Error::custom(format!(
                        "`{t}` is not a length of time like \"3d\", \"12h\", \"90m\" or \"45s\" ({e})"
                    ))
                }),
            },
        }
    }
}

impl Default for SendSettings {
    fn default() -> Self {
        Self {
            rate: "10/s".parse().unwrap_or(Rate::Unlimited),
            burst: 1,
            batch: 50,
            concurrency: 4,
            daily_cap: None,
            max_attempts: 5,
            retry_after_seconds: 60,
            smtp_timeout_seconds: 60,
            lease_seconds: 600,
            max_consecutive_failures: 10,
            // As long as Postfix keeps a deferred message (maximal_queue_lifetime is 5 days),
            // less a margin for the operator to act.
            give_up_after: GiveUpAfter(std::time::Duration::from_secs(3 * 24 * 3600)),
        }
    }
}

/// DKIM signing of every message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dkim {
    /// The `d=` domain, usually the From address's.
    pub domain: String,
    /// The `s=` selector: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// A PEM key, PKCS#8 or PKCS#1 for `rsa-sha256`, PKCS#8 or a base64 seed for
    /// `ed25519-sha256` (docs/sending.md, DKIM).
    pub key_file: PathBuf,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum DkimAlgorithm {
    #[default]
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

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
    fn of(md: Option<&figment::Metadata>, path: &[String], file: Option<&Path>) -> Origin {
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

const ENV_PREFIX: &str = "LSCP_MAIL_";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    /// Every pair of colours the built-in templates set text in, on its background, whose
    /// contrast is below WCAG AA: the reading text on white sections and on the footer, headings
    /// and links on white, the header's and buttons' white on the primary colour, and the
    /// topic labels' accent on white.
    pub fn contrast_warnings(&self) -> Vec<ContrastWarning> {
        let b = &self.brand;
        let white = Colour("#ffffff".into());
        let pairs = [
            ("brand.text_colour", &b.text_colour, WHITE, &white),
            (
                "brand.text_colour",
                &b.text_colour,
                "brand.background_colour",
                &b.background_colour,
            ),
            ("brand.primary_colour", &b.primary_colour, WHITE, &white),
            (WHITE, &white, "brand.primary_colour", &b.primary_colour),
            ("brand.accent_colour", &b.accent_colour, WHITE, &white),
        ];
        pairs
            .into_iter()
            .map(|(text, fg, background, bg)| ContrastWarning {
                text,
                background,
                ratio: fg.contrast_ratio(bg),
            })
            .filter(|w| w.ratio < MIN_TEXT_CONTRAST)
            .collect()
    }

    /// [`Self::contrast_warnings`] as `check` reports them: at the colour's line in the
    /// configuration file when it was set there.
    pub fn contrast_diagnostics(&self) -> Vec<Diagnostic> {
        let warnings = self.contrast_warnings();
        if warnings.is_empty() {
            return Vec::new();
        }
        let file = self
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("(configuration)"));
        let text = self
            .file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        warnings
            .into_iter()
            .map(|w| {
                let key = if w.text == WHITE { w.background } else { w.text };
                let name = key.trim_start_matches("brand.");
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with(name))
                    .map(|i| (i + 1, 1));
                Diagnostic::warning(Rule::LowContrast, &file, w.to_string())
                    .at(line)
                    .field(key)
                    .hint("darken the text colour or lighten its background; WebAIM's contrast checker shows the ratio as you change them")
            })
            .collect()
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

/// A URL for messages and logs with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "(unparseable URL)".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    // libpq and sqlx also take the password as a parameter: `?password=…`, `?sslpassword=…`.
    if u.query_pairs().any(|(k, _)| is_secret_parameter(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_parameter(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// A URL parameter that holds a secret (`password`, `sslpassword`, `pass`, `secret`, `token`).
fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|s| key.contains(s))
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
// figment's Jail fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_only_because_they_go_into_style_attributes() {
        assert!(Colour::parse("#4B2E83").is_ok());
        assert!(Colour::parse("#fff").is_ok());
        assert!(Colour::parse("red;background:url(x)").is_err());
        assert!(Colour::parse("#12345").is_err());
    }

    #[test]
    fn contrast_ratios_are_wcags() {
        let c = |s: &str| Colour::parse(s).expect("colour");
        let ratio = |a: &str, b: &str| (c(a).contrast_ratio(&c(b)) * 100.0).round() / 100.0;
        assert_eq!(ratio("#000", "#ffffff"), 21.0);
        assert_eq!(ratio("#ffffff", "#ffffff"), 1.0);
        // WebAIM's checker: #777777 on white is 4.48:1, just short of AA.
        assert_eq!(ratio("#777777", "#fff"), 4.48);
        assert_eq!(ratio("#fff", "#777777"), 4.48);
    }

    #[test]
    fn the_default_brand_meets_wcag_aa() {
        assert_eq!(Config::default().contrast_warnings(), vec![]);
    }

    #[test]
    fn the_shipped_example_file_says_exactly_the_defaults() {
        figment::Jail::expect_with(|_| {
            let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
            let config = Config::load(Some(&example)).map_err(|e| e.to_string())?;
            let defaults = Config::default();
            assert_eq!(
                serde_json::to_value(&config.brand).ok(),
                serde_json::to_value(&defaults.brand).ok()
            );
            assert_eq!(config.topics, defaults.topics);
            assert_eq!(
                serde_json::to_value(&config.site).ok(),
                serde_json::to_value(&defaults.site).ok()
            );
            assert_eq!(
                serde_json::to_value(&config.serve).ok(),
                serde_json::to_value(&defaults.serve).ok()
            );
            assert_eq!(
                serde_json::to_value(&config.mail).ok(),
                serde_json::to_value(&defaults.mail).ok()
            );
            assert_eq!(
                serde_json::to_value(&config.send).ok(),
                serde_json::to_value(&defaults.send).ok()
            );
            assert_eq!(
                serde_json::to_value(&config.serve).ok(),
                serde_json::to_value(&defaults.serve).ok()
            );
            assert_eq!(
                serde_json::to_value(&config.bounce).ok(),
                serde_json::to_value(&defaults.bounce).ok()
            );
            assert!(config.dkim.is_none());
            Ok(())
        });
    }

    #[test]
    fn database_and_smtp_urls_come_from_their_usual_variables_and_stay_secret() {
        use secrecy::ExposeSecret;
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://app:s3cret@db:5432/news");
            jail.set_env("SMTP_URL", "smtp://mailer:hunter2@smtp.example.org:587");
            jail.set_env("LSCP_MAIL_SITE__BASE_URL", "https://news.example.org");
            let config = Config::from_figment(Figment::new()).map_err(|e| e.to_string())?;
            assert_eq!(
                config.database_url.as_ref().map(|u| u.expose_secret()),
                Some("postgres://app:s3cret@db:5432/news")
            );
            assert_eq!(config.site.base_url.as_str(), "https://news.example.org");
            let debug = format!("{config:?}");
            assert!(
                !debug.contains("s3cret") && !debug.contains("hunter2"),
                "{debug}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_log_filter_variable_is_not_mistaken_for_a_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_LOG", "debug");
            Config::from_figment(Figment::new()).map_err(|e| e.to_string())?;
            Ok(())
        });
    }

    #[test]
    fn give_up_after_reads_as_people_write_lengths_of_time() {
        use std::time::Duration;
        for (text, secs) in [("3d", 259_200), ("12h", 43_200), ("90m", 5_400), ("45", 45)] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("LSCP_MAIL_SEND__GIVE_UP_AFTER", text);
                let config = Config::load(None).map_err(|e| e.to_string())?;
                assert_eq!(
                    config.send.give_up_after.0,
                    Duration::from_secs(secs),
                    "{text}"
                );
                Ok(())
            });
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_SEND__GIVE_UP_AFTER", "soon");
            let e = Config::load(None).expect_err("not a length of time");
            assert!(e.to_string().contains("give_up_after"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_an_error_not_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("lscp-mail.toml", "[brand]\norganisaton = \"Typo\"\n")?;
            let err = Config::load(Some(Path::new("lscp-mail.toml"))).expect_err("typo refused");
            assert!(err.to_string().contains("organisaton"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_SEND__RATE", "fast");
            let err = Config::load(None).expect_err("not a rate");
            let message = err.to_string();
            assert!(message.contains("`send.rate`"), "{message}");
            assert!(message.contains("LSCP_MAIL_SEND__RATE"), "{message}");
            let cause = std::error::Error::source(&err).expect("figment's error is kept");
            assert!(cause.to_string().contains("fast"), "{cause}");
            Ok(())
        });
    }

    #[test]
    fn a_value_that_reads_but_cannot_be_used_names_its_variable_and_keeps_the_cause() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_SEND__BATCH", "0");
            let err = Config::load(None).expect_err("a batch of nothing");
            assert!(err.to_string().contains("LSCP_MAIL_SEND__BATCH"), "{err}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("LSCP_MAIL_MAIL__FROM", "not an address");
            let err = Config::load(None).expect_err("not a mailbox");
            assert!(err.to_string().contains("LSCP_MAIL_MAIL__FROM"), "{err}");
            assert!(
                std::error::Error::source(&err).is_some(),
                "lettre's reason is kept: {err:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_url_an_address_or_a_mailbox_that_does_not_parse_is_said_with_its_value_and_reason() {
        for (variable, value, expected) in [
            (
                "LSCP_MAIL_SITE__BASE_URL",
                "news.example.org",
                "invalid configuration: `site.base_url` = \"news.example.org\" (LSCP_MAIL_SITE__BASE_URL) is not an http(s) URL",
            ),
            (
                "LSCP_MAIL_BRAND__WEBSITE",
                "ftp://example.org",
                "invalid configuration: `brand.website` = \"ftp://example.org\" (LSCP_MAIL_BRAND__WEBSITE) is not an http(s) URL",
            ),
            (
                "LSCP_MAIL_SERVE__LISTEN",
                "localhost",
                "invalid configuration: `serve.listen` = \"localhost\" (LSCP_MAIL_SERVE__LISTEN) is not an address and port like \"127.0.0.1:8080\"",
            ),
            (
                "LSCP_MAIL_MAIL__REPLY_TO",
                "nobody",
                "invalid configuration: `mail.reply_to` = \"nobody\" (LSCP_MAIL_MAIL__REPLY_TO) is not an address like \"Name <name@example.org>\"",
            ),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let err = Config::load(None).expect_err(value);
                assert_eq!(err.to_string(), expected);
                Ok(())
            });
        }
        figment::Jail::expect_with(|jail| {
            jail.create_file("lscp-mail.toml", "[site]\nbase_url = \"https://news.example.org\"\n[serve]\nlisten = \"[::1]:9000\"\n")?;
            let config =
                Config::load(Some(Path::new("lscp-mail.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(
                config.site.base_url.to_string(),
                "https://news.example.org",
                "as written"
            );
            assert_eq!(config.site.url("/p/x"), "https://news.example.org/p/x");
            assert_eq!(
                config.serve.listen,
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9000))
            );
            assert_eq!(
                config.mail.from.to_string(),
                Mail::default().from.to_string()
            );
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_in_a_file_names_the_file_as_given() {
        figment::Jail::expect_with(|jail| {
            std::fs::create_dir_all(jail.directory().join("settings"))
                .map_err(|e| e.to_string())?;
            let given = jail.directory().join("settings/lscp-mail.toml");
            std::fs::write(
                &given,
                "[send]\nbatch = 0\n[brand]\norganisaton = \"Typo\"\n",
            )
            .map_err(|e| e.to_string())?;
            let err = Config::load(Some(&given)).expect_err("typo refused");
            let message = err.to_string();
            assert!(
                message.contains(&format!("in {}", given.display())),
                "the whole path, not lscp-mail.toml alone: {message}"
            );
            assert!(message.contains("`brand.organisaton`"), "{message}");
            jail.create_file("settings/lscp-mail.toml", "[send]\nbatch = 0\n")?;
            let relative = Path::new("settings/lscp-mail.toml");
            let err = Config::load(Some(relative)).expect_err("a batch of nothing");
            assert!(
                err.to_string()
                    .contains("`send.batch` = \"0\" (in settings/lscp-mail.toml)"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_tagged_address_carries_its_tag_and_finds_it_again() {
        let a = TaggedAddress::parse("bounces@News.Example.org").expect("address");
        assert_eq!(a.with_tag("abc"), "bounces+abc@News.Example.org");
        assert_eq!(a.tag_of("<Bounces+abc@news.example.org>"), Some("abc"));
        assert_eq!(a.tag_of("bounces@news.example.org"), None);
        assert_eq!(a.tag_of("other+abc@news.example.org"), None);
        assert!(TaggedAddress::parse("bounces+x@example.org").is_err());
        assert!(TaggedAddress::parse("Name <bounces@example.org>").is_err());
        assert!(TaggedAddress::parse("bounces").is_err());
    }

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/news"),
            "postgres://app:***@db.internal:5432/news"
        );
        assert_eq!(redact_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    }

    #[test]
    fn a_password_given_as_a_url_parameter_is_never_shown() {
        assert_eq!(
            redact_url("postgres://app@db/news?password=s3cret&sslmode=require&sslpassword=k3y"),
            "postgres://app@db/news?password=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/news?PASSWORD=s3cret"),
            "postgres://app:***@db/news?PASSWORD=***"
        );
    }
}
