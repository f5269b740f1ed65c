//! The typed values a setting's text is parsed into once, as the configuration loads:
//! [`HttpUrl`], `SocketAddr`, lettre's `Mailbox` (through the [`Setting`] trait and `as_text`)
//! and [`TaggedAddress`]; and [`ValueProblem`], what is wrong with a text that does not parse.

use std::fmt;
use std::net::SocketAddr;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::error::BoxError;

/// What is wrong with a setting's text that does not parse into its type, and why.
#[derive(Debug)]
pub struct ValueProblem {
    pub(super) problem: &'static str,
    pub(super) source: Option<BoxError>,
}

/// A setting parsed into its type once, as the configuration loads, and written back as text.
pub(super) trait Setting: Sized + fmt::Display {
    fn parse_setting(text: &str) -> Result<Self, ValueProblem>;
}

/// The settings held as a [`Setting`] type: what a value of one that does not parse says is
/// wrong with it, for [`ConfigError::Value`].
pub(super) fn setting_problem(key: &str, text: &str) -> Option<(&'static str, ValueProblem)> {
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
pub(super) mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(in crate::config) fn serialize<T: super::Setting, S: Serializer>(
        v: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(in crate::config) fn deserialize<'de, T: super::Setting, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        T::parse_setting(&text).map_err(|p| serde::de::Error::custom(p.problem))
    }

    /// The same for an optional setting.
    pub(in crate::config) mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in crate::config) fn serialize<T: super::super::Setting, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        pub(in crate::config) fn deserialize<
            'de,
            T: super::super::Setting,
            D: Deserializer<'de>,
        >(
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
    pub(super) fn builtin(text: &str) -> Self {
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
