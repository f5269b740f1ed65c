//! The domain of an issue: what [`super::load`] builds once the TOML has been judged. Nothing
//! here can hold a bad value: a `Link` is an absolute http(s) URL, a `Course` has a way to book,
//! an `Image` has alt text, a `Session` ends after it starts. The kinds of section are in
//! [`super::section`], re-exported here.

use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

pub use super::section::*;
use super::topic::TopicSet;

/// "2026-02": a year and month, the issue's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueId {
    year: u16,
    month: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an issue month like \"2026-02\"")]
pub struct IssueIdError(pub String);

impl IssueId {
    pub fn parse(s: &str) -> Result<Self, IssueIdError> {
        let err = || IssueIdError(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year: u16 = y.parse().map_err(|_| err())?;
        let month: u8 = m.parse().map_err(|_| err())?;
        if !(1..=12).contains(&month) || year < 2000 {
            return Err(err());
        }
        Ok(Self { year, month })
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn month(&self) -> u8 {
        self.month
    }
}

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for IssueId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An absolute `http`/`https` URL, or a `mailto:` address, parsed once at load: what the
/// templates and the calendar write is the parsed URL's own serialisation, never the editor's
/// raw text, so a line break or control character hidden in a value cannot reach a header,
/// an attribute or an `.ics` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link(url::Url);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("`{0}` is not an absolute URL (it should start with https://)")]
    NotAbsolute(String),
    #[error("`{0}` uses the `{1}` scheme; links must be https://, http:// or mailto:")]
    Scheme(String, String),
    #[error("`{0}` is not a valid email address")]
    Email(String),
    #[error(
        "`{}` contains a control character ({}); a line break or tab inside a link is never meant",
        .0.escape_debug(),
        .1
    )]
    Control(String, String),
    #[error(
        "`{0}` uses the `{1}` scheme; links in text must be https://, http://, mailto:, tel: or #an-anchor"
    )]
    TextScheme(String, String),
}

/// The first control character of `s` (CR, LF, tab, ESC, DEL…) as `U+000D`, if any. The URL
/// parser would quietly drop a CR or LF; the editor should hear about it instead.
fn control_character(s: &str) -> Result<(), LinkError> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(LinkError::Control(
            s.to_string(),
            format!("U+{:04X}", u32::from(c)),
        )),
        None => Ok(()),
    }
}

impl Link {
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        let s = s.trim_matches(' ');
        control_character(s)?;
        let url = url::Url::parse(s).map_err(|_| LinkError::NotAbsolute(s.to_string()))?;
        match url.scheme() {
            "https" | "http" if url.host().is_some() => Ok(Self(url)),
            "https" | "http" => Err(LinkError::NotAbsolute(s.to_string())),
            "mailto" => EmailAddress::parse(url.path()).map(|_| Self(url)),
            other => Err(LinkError::Scheme(s.to_string(), other.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        matches!(self.0.scheme(), "https" | "mailto")
    }
}

impl Serialize for Link {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a link written in Markdown may point: a web page (`https:`, `http:`), an address
/// (`mailto:`, `tel:`) or a place in the same page (`#…`). Everything else (`javascript:`,
/// `data:`, `vbscript:`, `file:`, a relative path that means nothing in a mailbox) is refused:
/// by `check` at load, and again by the renderer, which never writes such an href.
pub fn markdown_link_target(dest: &str) -> Result<(), LinkError> {
    control_character(dest)?;
    if dest.starts_with('#') {
        return Ok(());
    }
    let url = url::Url::parse(dest).map_err(|_| LinkError::NotAbsolute(dest.to_string()))?;
    match url.scheme() {
        "https" | "http" if url.host().is_some() => Ok(()),
        "https" | "http" => Err(LinkError::NotAbsolute(dest.to_string())),
        "mailto" | "tel" => Ok(()),
        other => Err(LinkError::TextScheme(dest.to_string(), other.to_string())),
    }
}

/// An email address good enough to write into a `mailto:` link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        let s = s.trim_matches(' ');
        control_character(s)?;
        s.parse::<lettre::Address>()
            .map(|_| Self(s.to_string()))
            .map_err(|_| LinkError::Email(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Markdown as the editor wrote it. [`crate::render`] turns it into HTML or plain text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Markdown(pub String);

impl Markdown {
    /// The Markdown dialect: CommonMark with ~~strikethrough~~. `check` and the renderer read
    /// with the same options, so they see the same links.
    pub const OPTIONS: pulldown_cmark::Options = pulldown_cmark::Options::ENABLE_STRIKETHROUGH;

    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Every link's destination, as the renderer will see it (entities decoded), with the byte
    /// offset in the text where the link starts. (An image in Markdown is shown as its address,
    /// never fetched nor linked, so it has no destination to judge.)
    pub fn link_destinations(&self) -> Vec<(usize, String)> {
        use pulldown_cmark::{Event, Parser, Tag};
        Parser::new_ext(&self.0, Self::OPTIONS)
            .into_offset_iter()
            .filter_map(|(event, range)| match event {
                Event::Start(Tag::Link { dest_url, .. }) => {
                    Some((range.start, dest_url.into_string()))
                }
                _ => None,
            })
            .collect()
    }

    /// Every link's words as a reader sees them (text and code, joined), with its destination
    /// and the byte offset where the link starts: what a screen reader's list of links shows.
    pub fn link_texts(&self) -> Vec<(usize, String, String)> {
        use pulldown_cmark::{Event, Parser, Tag, TagEnd};
        let mut found = Vec::new();
        let mut open: Option<(usize, String, String)> = None;
        for (event, range) in Parser::new_ext(&self.0, Self::OPTIONS).into_offset_iter() {
            match event {
                Event::Start(Tag::Link { dest_url, .. }) => {
                    open = Some((range.start, String::new(), dest_url.into_string()));
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some((_, text, _)) = open.as_mut() {
                        text.push_str(&t);
                    }
                }
                Event::SoftBreak | Event::HardBreak => {
                    if let Some((_, text, _)) = open.as_mut() {
                        text.push(' ');
                    }
                }
                Event::End(TagEnd::Link) => found.extend(open.take()),
                _ => {}
            }
        }
        found
    }

    /// Every heading's level (1 for `#`), with the byte offset where it starts.
    pub fn headings(&self) -> Vec<(usize, u8)> {
        use pulldown_cmark::{Event, Parser, Tag};
        Parser::new_ext(&self.0, Self::OPTIONS)
            .into_offset_iter()
            .filter_map(|(event, range)| match event {
                Event::Start(Tag::Heading { level, .. }) => Some((range.start, level as u8)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: IssueId,
    pub dir: PathBuf,
    pub title: String,
    pub published: NaiveDate,
    pub subject: String,
    pub preheader: String,
    pub intro: Option<Markdown>,
    pub contents: bool,
    pub sections: Vec<Section>,
}

impl Issue {
    /// The topics that at least one section is tagged with.
    pub fn topics(&self) -> TopicSet {
        self.sections
            .iter()
            .filter_map(|s| s.topic.clone())
            .collect()
    }
}

/// A section's name within its issue, for links ("In this issue", `#safer-sleep-week`), ids
/// and the cut marks that assemble each reader's version. Only [`Anchors::claim`] makes one,
/// and it never gives the same anchor twice, so two sections of an issue cannot share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Anchor(String);

impl Anchor {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Anchor {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The anchors handed out for one issue.
#[derive(Debug, Default)]
pub struct Anchors {
    taken: std::collections::HashSet<String>,
}

impl Anchors {
    /// The anchor for a section file: its name without the number in front and made of
    /// `[a-z0-9-]` (`03-safer-sleep-week.toml` → `safer-sleep-week`), or, when an earlier file
    /// already has that (`09-leak.toml` and `10_leak.toml`), the first free `leak-2`, `leak-3`…
    pub fn claim(&mut self, file_stem: &str) -> Anchor {
        let trimmed =
            file_stem.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_');
        let base: String = if trimmed.is_empty() {
            file_stem
        } else {
            trimmed
        }
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
        let base = if base.is_empty() {
            "section".to_string()
        } else {
            base
        };
        let anchor = (1..)
            .map(|n| match n {
                1 => base.clone(),
                n => format!("{base}-{n}"),
            })
            .find(|a| !self.taken.contains(a))
            .unwrap_or(base);
        self.taken.insert(anchor.clone());
        Anchor(anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_id_is_a_year_and_month() {
        assert_eq!(
            IssueId::parse("2026-02").map(|i| i.to_string()),
            Ok("2026-02".to_string())
        );
        for bad in ["2026-13", "2026-2", "26-02", "2026/02", "february"] {
            assert!(IssueId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_must_be_absolute_web_or_mail_addresses() {
        assert!(Link::parse("https://www.leedsscp.org.uk/training").is_ok());
        assert!(Link::parse("mailto:lscp.info@leeds.gov.uk").is_ok());
        assert!(Link::parse("www.leedsscp.org.uk").is_err());
        assert!(Link::parse("javascript:alert(1)").is_err());
        assert!(Link::parse("mailto:not an address").is_err());
        assert!(!Link::parse("http://example.org/").is_ok_and(|l| l.is_https()));
    }

    #[test]
    fn anchors_are_the_file_name_without_its_number_and_never_repeat() {
        let mut anchors = Anchors::default();
        let claimed: Vec<String> = [
            "03-safer-sleep-week",
            "09-leak",
            "10_leak",
            "11-leak-2",
            "12-LEAK",
            "13",
            "14-",
        ]
        .into_iter()
        .map(|stem| anchors.claim(stem).to_string())
        .collect();
        assert_eq!(
            claimed,
            [
                "safer-sleep-week",
                "leak",
                "leak-2",
                "leak-2-2",
                "leak-3",
                "13",
                "14-"
            ]
        );
    }

    #[test]
    fn a_line_break_hidden_in_a_link_is_refused_not_dropped() {
        for bad in [
            "https://example.org/book\r\nATTENDEE:mailto:x@example.org",
            "https://example.org/\nx",
            "https://exa\tmple.org/",
            "https://example.org/\u{1b}[31m",
            "mailto:a@example.org\r\nBcc: b@example.org",
        ] {
            assert!(
                matches!(Link::parse(bad), Err(LinkError::Control(..))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            EmailAddress::parse("a@example.org\r\n"),
            Err(LinkError::Control(..))
        ));
    }

    #[test]
    fn markdown_links_may_point_only_to_pages_addresses_and_anchors() {
        for good in [
            "https://example.org/a",
            "http://example.org/",
            "mailto:lscp@example.org",
            "tel:+441132476524",
            "#training",
        ] {
            assert_eq!(markdown_link_target(good), Ok(()), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "/relative/path",
            "https://example.org/\n",
        ] {
            assert!(markdown_link_target(bad).is_err(), "{bad}");
        }
    }
}
