//! Every message the project sends is made here, by [`Outbox::message`]: our headers, the
//! body, and a DKIM signature when `[dkim]` is configured. The newsletter (`send`) and the
//! sign-up mails (`serve`) both go through it, so none leaves unsigned by a path of its own.

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig};
use std::time::SystemTime;

use lettre::message::MessageBuilder;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0,
};

use super::dkim::{DkimKeyError, PrivateKey};
use crate::config::{Config, Dkim, Mail};
use crate::render::message::{self, MessageBuildError, build, message_id};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Message(#[from] MessageBuildError),
    #[error(transparent)]
    DkimKey(#[from] DkimKeyError),
    #[error("`{0}` is not an email address a message can go to")]
    BadRecipient(String),
}

/// One message, ready for the SMTP conversation.
pub struct Outgoing {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    pub message_id: String,
}

/// What a message says.
pub enum Body {
    Text(String),
    /// Text and HTML, as `multipart/alternative`.
    Alternative {
        text: String,
        html: String,
    },
}

/// Our sender, headers and signature, for any message.
pub struct Outbox {
    mail: Mail,
    from: Mailbox,
    dkim: Option<DkimConfig>,
}

impl Outbox {
    /// Reads the DKIM key, when one is configured: a bad key stops the command before anything
    /// is sent.
    pub fn new(config: &Config) -> Result<Self, OutboxError> {
        Ok(Self {
            mail: config.mail.clone(),
            from: config.mail.from.clone(),
            dkim: config.dkim.as_ref().map(dkim_config).transpose()?,
        })
    }

    /// The name the sender gives in SMTP's EHLO.
    pub fn hello_name(&self) -> &str {
        &self.mail.message_id_domain
    }

    /// The envelope sender (`MAIL FROM`): the address of `mail.from`.
    pub fn sender(&self) -> &lettre::Address {
        &self.from.email
    }

    /// The signed message to `to` (an address, and the name to show with it).
    pub fn message(
        &self,
        to: (&str, Option<&str>),
        subject: &str,
        headers: Vec<HeaderValue>,
        body: Body,
    ) -> Result<Outgoing, OutboxError> {
        let (to, address) = recipient(to)?;
        let id = message_id(&self.mail);
        let builder = self.headers(to, subject, headers, id.clone(), None)?;
        let mut email = match body {
            Body::Text(text) => builder.header(ContentType::TEXT_PLAIN).body(text),
            Body::Alternative { text, html } => builder.multipart(message::body(text, html)),
        }
        .map_err(MessageBuildError::from)?;
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        self.outgoing(address, email.formatted(), id)
    }

    /// The same message as [`Outbox::message`] makes of a `multipart/alternative` body, from
    /// that body encoded beforehand ([`Encoded`]): only the headers are made here, and the
    /// signature covers the final bytes. `stamp` gives the Message-ID and Date, to compare
    /// the two ways; `None` draws them as `message` does.
    pub fn message_encoded(
        &self,
        to: (&str, Option<&str>),
        subject: &str,
        headers: Vec<HeaderValue>,
        body: Encoded,
        stamp: Option<Stamp>,
    ) -> Result<Outgoing, OutboxError> {
        let (to, address) = recipient(to)?;
        let (id, date) = match stamp {
            Some(s) => (s.message_id, Some(s.date)),
            None => (message_id(&self.mail), None),
        };
        // `multipart` would add MIME-Version and write the part's Content-Type after every
        // header, the signature included; a body given as bytes needs both said here.
        let mut email = self
            .headers(to, subject, headers, id.clone(), date)?
            .header(MIME_VERSION_1_0)
            .body(lettre::message::Body::dangerous_pre_encoded(
                body.bytes,
                ContentTransferEncoding::Binary,
            ))
            .map_err(MessageBuildError::from)?;
        email.headers_mut().remove::<ContentTransferEncoding>();
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        email.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Type"),
            body.content_type,
        ));
        self.outgoing(address, email.formatted(), id)
    }

    /// Our headers and the caller's, in the order every message has them.
    fn headers(
        &self,
        to: Mailbox,
        subject: &str,
        headers: Vec<HeaderValue>,
        id: String,
        date: Option<SystemTime>,
    ) -> Result<MessageBuilder, OutboxError> {
        let mut builder = build(&self.mail, subject, to, id)?;
        if let Some(date) = date {
            builder = builder.date(date);
        }
        for header in headers {
            builder = builder.raw_header(header);
        }
        Ok(builder)
    }

    fn outgoing(
        &self,
        to: lettre::Address,
        bytes: Vec<u8>,
        message_id: String,
    ) -> Result<Outgoing, OutboxError> {
        Ok(Outgoing {
            envelope: Envelope::new(Some(self.from.email.clone()), vec![to.clone()])
                .map_err(|_| OutboxError::BadRecipient(to.to_string()))?,
            bytes,
            message_id,
        })
    }
}

/// The Message-ID and Date a message is given.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub message_id: String,
    pub date: SystemTime,
}

/// A `multipart/alternative` body encoded once (quoted-printable as lettre chooses, CRLF line
/// endings), for many messages: its `Content-Type` (with the boundary) and the bytes after it.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Encoded {
    /// `text` and `html` as [`message::body`] encodes them, under `boundary`.
    pub fn new(text: &str, html: &str, boundary: &str) -> Self {
        let part = message::body_with_boundary(text, html, boundary);
        let head = part.headers().to_string().len() + 2;
        let mut bytes = part.formatted();
        bytes.drain(..head);
        Self {
            content_type: part
                .headers()
                .get_raw("Content-Type")
                .unwrap_or_default()
                .to_string(),
            bytes,
        }
    }
}

/// The recipient's mailbox and address. An address stored before domains were kept in ASCII
/// goes out in punycode, which every server carries; a part before the @ outside ASCII stays
/// as it is. A name comes from our own records, checked when given; a line break would still
/// end the header, so none gets through whatever the record holds.
fn recipient(to: (&str, Option<&str>)) -> Result<(Mailbox, lettre::Address), OutboxError> {
    let (to_address, to_name) = to;
    let ascii = crate::store::ascii_domain(to_address);
    let to_address = ascii.as_deref().unwrap_or(to_address);
    let address: lettre::Address = to_address
        .parse()
        .map_err(|_| OutboxError::BadRecipient(to_address.to_string()))?;
    let to = Mailbox::new(
        to_name.map(|n| n.replace(['\r', '\n'], " ")),
        address.clone(),
    );
    Ok((to, address))
}

/// A header of ours, such as `List-Id`.
pub fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

fn dkim_config(d: &Dkim) -> Result<DkimConfig, OutboxError> {
    let key = PrivateKey::read(d)?
        .signing_key()
        .map_err(|message| DkimKeyError::Key {
            path: d.key_file.display().to_string(),
            message,
        })?;
    // Gmail and Yahoo honour one-click unsubscribe only when the List-Unsubscribe headers are
    // covered by the signature.
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Ok(DkimConfig::new(
        d.selector.clone(),
        d.domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}
