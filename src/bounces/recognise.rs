//! What a message that came back is, read from its bytes alone: a delivery status notification
//! (RFC 3464), a complaint (ARF, RFC 5965), a mail to the unsubscribe address, an auto-reply
//! (RFC 3834), a non-standard bounce from an old mail server, or none of these.

use chrono::{DateTime, Utc};
use mail_parser::{Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use super::report_fields::{parse_dsn, parse_feedback};
use crate::config::TaggedAddress;

/// A message as read, before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    pub report: Report,
    /// The tag of the `bounces+TAG@…` address it was sent to, when it was.
    pub verp_tag: Option<String>,
    /// SHA-256 of its Message-ID and what it is about, else of its bytes: the same report read
    /// twice has the same.
    pub key: [u8; 32],
    /// Its `Date`, when it has one that is not in the future.
    pub date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification.
    Dsn(Dsn),
    /// A bounce without a machine-readable part: only the VERP tag can say whose it is.
    TextBounce { status: Option<String> },
    /// An ARF feedback report.
    Complaint(Complaint),
    /// A mail to `unsubscribe+TOKEN@…`.
    Unsubscribe { token: String },
    /// An out-of-office or other automatic answer.
    AutoReply,
    /// None of the above.
    Unrecognised,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dsn {
    pub recipients: Vec<RecipientStatus>,
    pub returned: Returned,
}

/// One per-recipient block of a DSN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientStatus {
    /// Lower-cased actions: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// The RFC 3463 status, such as `5.1.1`.
    pub status: String,
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    pub diagnostic: Option<String>,
}

impl RecipientStatus {
    /// A failure with a 5.x.x status: the address is dead.
    pub fn is_hard(&self) -> bool {
        self.action == "failed" && self.status.starts_with('5')
    }

    /// A 4.x.x status or a delay: try again, and count it.
    pub fn is_soft(&self) -> bool {
        !self.is_hard()
            && (self.action == "delayed"
                || (self.action == "failed" && self.status.starts_with('4')))
    }
}

/// What a report quotes of the message it is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Returned {
    /// With angle brackets, as the ledger keeps it.
    pub message_id: Option<String>,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Complaint {
    /// `abuse`, `fraud`, `other`…, lower-cased.
    pub feedback_type: String,
    pub original_rcpt_to: Vec<String>,
    pub returned: Returned,
}

/// The addresses a message is about, for matching with a delivery's reader.
impl Report {
    pub fn recipients(&self) -> Vec<String> {
        let mut all = Vec::new();
        match self {
            Report::Dsn(d) => {
                for r in &d.recipients {
                    all.extend(r.final_recipient.iter().cloned());
                    all.extend(r.original_recipient.iter().cloned());
                }
                all.extend(d.returned.to.iter().cloned());
            }
            Report::Complaint(c) => {
                all.extend(c.original_rcpt_to.iter().cloned());
                all.extend(c.returned.to.iter().cloned());
            }
            _ => {}
        }
        all
    }

    pub fn returned_message_id(&self) -> Option<&str> {
        match self {
            Report::Dsn(d) => d.returned.message_id.as_deref(),
            Report::Complaint(c) => c.returned.message_id.as_deref(),
            _ => None,
        }
    }
}

/// The addresses we receive reports at.
pub struct Addresses<'a> {
    pub bounces: Option<&'a TaggedAddress>,
    pub unsubscribe: Option<&'a TaggedAddress>,
}

/// Reads `raw`; `None` when it is not a message at all.
pub fn recognise(raw: &[u8], ours: &Addresses<'_>) -> Option<Recognised> {
    let raw = strip_from_line(raw);
    if !starts_with_a_header_field(raw) {
        return None;
    }
    let message = MessageParser::default().parse(raw)?;
    if message.headers().is_empty() {
        return None;
    }
    let addressed = addressed_to(&message);
    let tag_for = |a: Option<&TaggedAddress>| {
        a.and_then(|a| {
            addressed
                .iter()
                .find_map(|r| a.tag_of(r).map(str::to_string))
        })
    };
    let verp_tag = tag_for(ours.bounces);
    let unsubscribe = tag_for(ours.unsubscribe);
    let report = if let Some(r) = report_part(&message) {
        r
    } else if let Some(token) = unsubscribe {
        Report::Unsubscribe { token }
    } else if is_text_bounce(&message) {
        let text = message.body_text(0).unwrap_or_default();
        let status = status_in_text(&text).map(str::to_string).or_else(|| {
            // Without a status code, a warning that the server is still trying is soft.
            is_delay_warning(message.subject().unwrap_or(""), &text).then(|| "4.0.0".into())
        });
        Report::TextBounce { status }
    } else if is_auto_reply(&message) {
        Report::AutoReply
    } else {
        Report::Unrecognised
    };
    // A report is its Message-ID and what it is about: the same report read from two sources
    // has both, and two servers that reuse an id for reports on different deliveries differ.
    let about = verp_tag
        .as_deref()
        .or(report.returned_message_id())
        .or(match &report {
            Report::Unsubscribe { token } => Some(token.as_str()),
            _ => None,
        })
        .unwrap_or("");
    let key = match message.message_id() {
        Some(id) => Sha256::digest(format!("message-id:{id}\nabout:{about}").as_bytes()),
        None => Sha256::digest(raw),
    };
    let date = message
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .filter(|d| *d <= Utc::now());
    Some(Recognised {
        report,
        verp_tag,
        key: key.into(),
        date,
    })
}

/// An MTA's pipe or an mbox may begin with the `From sender date` envelope line.
fn strip_from_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(i) => &raw[i + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// A message begins with a header field, `Name: value` (RFC 5322 §2.2): anything else is not
/// one, however leniently a parser reads it.
fn starts_with_a_header_field(raw: &[u8]) -> bool {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

/// Where the message was delivered: the MTA's envelope headers first, then To and Cc.
fn addressed_to(message: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = message
        .headers_raw()
        .filter(|(name, _)| {
            [
                "Delivered-To",
                "X-Original-To",
                "Envelope-To",
                "X-Envelope-To",
            ]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim().to_string())
        .collect();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        out.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
    }
    out
}

/// A `multipart/report` (or any message carrying a status or feedback part).
fn report_part(message: &Message<'_>) -> Option<Report> {
    let mut dsn: Option<Dsn> = None;
    let mut complaint: Option<Complaint> = None;
    let mut returned = Returned::default();
    for part in message.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ctype = ct.ctype().to_ascii_lowercase();
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                dsn = Some(parse_dsn(&String::from_utf8_lossy(part.contents())));
            }
            ("message", "feedback-report") => {
                complaint = Some(parse_feedback(&String::from_utf8_lossy(part.contents())));
            }
            ("message", "rfc822" | "global") => {
                if let Some(m) = part.message() {
                    returned = returned_of(m);
                }
            }
            ("text", "rfc822-headers") | ("message", "global-headers") => {
                if let Some(m) = MessageParser::default().parse_headers(part.contents()) {
                    returned = returned_of(&m);
                }
            }
            _ => {}
        }
    }
    if let Some(mut c) = complaint {
        c.returned = returned;
        Some(Report::Complaint(c))
    } else {
        dsn.map(|mut d| {
            d.returned = returned;
            Report::Dsn(d)
        })
    }
}

fn returned_of(m: &Message<'_>) -> Returned {
    Returned {
        message_id: m.message_id().map(|id| format!("<{id}>")),
        to: m
            .to()
            .map(|l| {
                l.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A bounce an old mail server wrote as plain text: from the mailer daemon or with a bounce's
/// subject.
fn is_text_bounce(message: &Message<'_>) -> bool {
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or("");
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    matches!(local, "mailer-daemon" | "postmaster")
        || [
            "undeliverable",
            "undelivered mail",
            "mail delivery failed",
            "delivery status notification",
            "delivery failure",
            "failure notice",
            "returned mail",
            "mail delivery system",
        ]
        .iter()
        .any(|s| subject.contains(s))
}

/// "Warning: message delayed", "will retry": an old server saying it has not given up.
fn is_delay_warning(subject: &str, text: &str) -> bool {
    let subject = subject.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    ["delayed", "warning", "still being retried"]
        .iter()
        .any(|w| subject.contains(w))
        || [
            "will keep trying",
            "will retry",
            "still trying",
            "not yet been delivered",
        ]
        .iter()
        .any(|w| text.contains(w))
}

/// RFC 3834 `Auto-Submitted`, the headers vacation programs add, or an out-of-office subject.
fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return true;
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress")
            .is_some_and(|v| v.contains("all") || v.contains("oof"))
        || header("Precedence").is_some_and(|v| v == "auto_reply")
    {
        return true;
    }
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    [
        "out of office",
        "out of the office",
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto:",
        "vacation",
        "away from",
    ]
    .iter()
    .any(|s| subject.contains(s))
}

/// The first RFC 3463 status code in a text, such as `5.1.1`.
fn status_in_text(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && matches!(p[0], "4" | "5")
                && p[1..]
                    .iter()
                    .all(|n| (1..=3).contains(&n.len()) && n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// 5.1.x (bad address, but not 5.1.7/5.1.8, the sender's), 5.2.1 (mailbox disabled), 5.4.4
/// (no route to the domain), and 5.0.0 or a status without detail, which old servers give for
/// an unknown user.
pub fn is_dead_mailbox_status(status: &str) -> bool {
    let status = status.trim();
    if !status.starts_with('5') {
        return false;
    }
    if matches!(status, "5.1.7" | "5.1.8") {
        return false;
    }
    status.starts_with("5.1.") || matches!(status, "5.2.1" | "5.4.4" | "5.0.0" | "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_status_block_reads_per_recipient() {
        let dsn = parse_dsn(
            "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; ann@example.org\r\n\
             Original-Recipient: rfc822;Ann@Example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 <ann@example.org>: Recipient address\r\n rejected\r\n",
        );
        assert_eq!(dsn.recipients.len(), 1);
        let r = &dsn.recipients[0];
        assert_eq!(r.final_recipient.as_deref(), Some("ann@example.org"));
        assert_eq!(r.original_recipient.as_deref(), Some("Ann@Example.org"));
        assert!(r.is_hard() && !r.is_soft());
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("550 5.1.1 <ann@example.org>: Recipient address rejected")
        );
    }

    #[test]
    fn a_delay_or_a_4xx_failure_is_soft() {
        let r = |action: &str, status: &str| RecipientStatus {
            action: action.into(),
            status: status.into(),
            ..Default::default()
        };
        assert!(r("delayed", "4.4.7").is_soft());
        assert!(r("failed", "4.4.1").is_soft());
        assert!(!r("delivered", "2.0.0").is_soft() && !r("delivered", "2.0.0").is_hard());
    }

    #[test]
    fn a_text_bounce_without_a_code_is_hard_unless_it_says_it_will_retry() {
        let ours = TaggedAddress::parse("bounces@news.example.org").expect("address");
        let addresses = Addresses {
            bounces: Some(&ours),
            unsubscribe: None,
        };
        let bounce = |subject: &str, body: &str| {
            let raw = format!(
                "From: MAILER-DAEMON@old.example.net\nTo: bounces+{}@news.example.org\n\
                 Subject: {subject}\nMessage-ID: <1@old.example.net>\n\n{body}\n",
                "0".repeat(32)
            );
            recognise(raw.as_bytes(), &addresses).map(|r| (r.report, r.verp_tag))
        };
        let (report, tag) =
            bounce("Returned mail: User unknown", "550 ann... User unknown").expect("a message");
        assert_eq!(report, Report::TextBounce { status: None });
        assert_eq!(tag, Some("0".repeat(32)));
        let (report, _) = bounce(
            "Warning: could not send message for past 4 hours",
            "The server will keep trying for 5 days.",
        )
        .expect("a message");
        assert_eq!(
            report,
            Report::TextBounce {
                status: Some("4.0.0".into())
            }
        );
    }

    #[test]
    fn a_status_code_is_found_in_free_text_but_not_a_version_number() {
        assert_eq!(
            status_in_text("said: 550 5.1.1 unknown user"),
            Some("5.1.1")
        );
        assert_eq!(
            status_in_text("version 1.2.3 and 4.4.7 later"),
            Some("4.4.7")
        );
        assert_eq!(status_in_text("no code here 550"), None);
    }
}
