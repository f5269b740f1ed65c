//! A complete `multipart/alternative` message (text first, then HTML, as RFC 2046 orders them
//! from plainest to richest) that a mail client opens.

use lettre::Message;
use lettre::message::{Mailbox, MessageBuilder, MultiPart};

use super::Rendered;
use crate::config::Mail;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("`{field}` = \"{value}\" is not a mailbox: {message}")]
    Mailbox {
        field: &'static str,
        value: String,
        message: String,
    },
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

pub fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, MessageError> {
    value
        .parse()
        .map_err(|e: lettre::address::AddressError| MessageError::Mailbox {
            field,
            value: value.to_string(),
            message: e.to_string(),
        })
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
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
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
) -> Result<MessageBuilder, MessageError> {
    let mut builder = Message::builder()
        .from(mailbox("mail.from", &mail.from)?)
        .to(to)
        .subject(subject)
        .message_id(Some(id))
        .date_now();
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(mailbox("mail.reply_to", reply_to)?);
    }
    Ok(builder)
}

pub fn body(text: String, html: String) -> MultiPart {
    MultiPart::alternative_plain_html(text, html)
}

/// The whole preview message, ready to write as `message.eml`.
pub fn preview(mail: &Mail, subject: &str, rendered: &Rendered) -> Result<Vec<u8>, MessageError> {
    let to = mailbox("preview", "Preview reader <preview@example.org>")?;
    let message = build(mail, subject, to, message_id(mail))?
        .multipart(body(rendered.text.clone(), rendered.html.clone()))?;
    Ok(message.formatted())
}
