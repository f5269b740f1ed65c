//! A complete `multipart/alternative` message (text first, then HTML, as RFC 2046 orders them
//! from plainest to richest) that a mail client opens.

use lettre::Message;
use lettre::message::{Mailbox, MessageBuilder, MultiPart, SinglePart};

use super::Rendered;
use crate::config::Mail;

/// Why a MIME message could not be built: a configured mailbox that does not parse, or lettre
/// refusing the headers and parts.
#[derive(Debug, thiserror::Error)]
pub enum MessageBuildError {
    #[error("`{field}` = \"{value}\" is not a mailbox: {message}")]
    Mailbox {
        field: &'static str,
        value: String,
        message: String,
    },
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, MessageBuildError> {
    value.parse().map_err(
        |e: lettre::address::AddressError| MessageBuildError::Mailbox {
            field,
            value: value.to_string(),
            message: e.to_string(),
        },
    )
}

/// A `Message-ID` on our own domain: Gmail rejects mail without one, and lettre adds none.
pub fn message_id(mail: &Mail) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap_or_else(|_| {
        // No entropy source: the time still makes the id unique enough for a preview.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    });
    let hex = hex::encode(bytes);
    format!("<{hex}@{}>", mail.message_id_domain)
}

/// The random part of a [`message_id`]: the per-delivery tag of the VERP envelope sender
/// (`bounces+TAG@…`). It names the delivery (the ledger keeps the Message-ID) and says nothing
/// about the reader.
pub fn message_id_tag(id: &str) -> Option<&str> {
    let tag = id.strip_prefix('<')?.split_once('@')?.0;
    is_tag(tag).then_some(tag)
}

/// The Message-ID a tag came from, when `tag` has the shape [`message_id`] makes.
pub fn message_id_from_tag(mail: &Mail, tag: &str) -> Option<String> {
    is_tag(tag).then(|| format!("<{tag}@{}>", mail.message_id_domain))
}

fn is_tag(tag: &str) -> bool {
    tag.len() == 32 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The headers every message has, with `id` from [`message_id`]; `send` adds its own per reader.
pub fn build(
    mail: &Mail,
    subject: &str,
    to: Mailbox,
    id: String,
) -> Result<MessageBuilder, MessageBuildError> {
    let mut builder = Message::builder()
        .from(mail.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(id))
        .date_now();
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    Ok(builder)
}

/// Both parts are handed to lettre with CRLF line endings already: lettre converts bare LFs by
/// inserting a `\r` before each one in place, which moves the rest of the string every time,
/// so a body of a few megabytes took seconds (quadratic). Converting here is one linear pass,
/// and lettre then finds nothing to insert.
pub fn body(text: String, html: String) -> MultiPart {
    MultiPart::alternative_plain_html(crlf_line_endings(&text), crlf_line_endings(&html))
}

/// [`body`] with the MIME boundary given rather than drawn: `send` encodes each variant once,
/// under one boundary, for all its readers.
pub fn body_with_boundary(text: &str, html: &str, boundary: &str) -> MultiPart {
    MultiPart::alternative()
        .boundary(boundary)
        .singlepart(SinglePart::plain(crlf_line_endings(text)))
        .singlepart(SinglePart::html(crlf_line_endings(html)))
}

/// `s` with every line ending CRLF: a bare LF gains its CR, an existing CRLF is kept as is.
fn crlf_line_endings(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 32);
    let mut after_cr = false;
    for c in s.chars() {
        if c == '\n' && !after_cr {
            out.push('\r');
        }
        out.push(c);
        after_cr = c == '\r';
    }
    out
}

/// The whole preview message, ready to write as `message.eml`.
pub fn preview(
    mail: &Mail,
    subject: &str,
    rendered: &Rendered,
) -> Result<Vec<u8>, MessageBuildError> {
    let to = mailbox("preview", "Preview reader <preview@example.org>")?;
    let message = build(mail, subject, to, message_id(mail))?
        .multipart(body(rendered.text.clone(), rendered.html.clone()))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare_lfs(s: &str) -> usize {
        s.char_indices()
            .filter(|&(i, c)| c == '\n' && !s[..i].ends_with('\r'))
            .count()
    }

    #[test]
    fn line_endings_become_crlf_once() {
        assert_eq!(
            crlf_line_endings("a\nb\r\nc\n\nd\re\n"),
            "a\r\nb\r\nc\r\n\r\nd\re\r\n"
        );
        assert_eq!(crlf_line_endings("\n"), "\r\n");
        assert_eq!(crlf_line_endings("é\n"), "é\r\n");
    }

    /// lettre inserts a CR in place before every bare LF it is given, moving the rest of the
    /// body each time: its work grows with (bare LFs × body length). Handing it none keeps
    /// composing a multi-megabyte body linear.
    #[test]
    fn lettre_is_handed_no_bare_line_feed_to_fix() {
        let text = "para one\n\npara two\n".repeat(1000);
        let html = "<p>one</p>\n<p>two</p>\n".repeat(1000);
        assert_eq!(bare_lfs(&crlf_line_endings(&text)), 0);
        assert_eq!(bare_lfs(&crlf_line_endings(&html)), 0);
        let formatted = String::from_utf8(body(text.clone(), html).formatted()).unwrap_or_default();
        assert!(
            formatted.contains("para one\r\n\r\npara two\r\n"),
            "{formatted:.300}"
        );
    }
}
