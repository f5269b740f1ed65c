//! The settings of each section of `lscp-mail.toml` but the brand: `[site]`, `[mail]`,
//! `[bounce]`, `[compose]`, `[smtp]`, `[serve]`, `[send]` and `[dkim]`, with their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use lettre::message::Mailbox;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::Rate;
use super::value::{HttpUrl, TaggedAddress, as_text};

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
