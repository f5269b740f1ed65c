//! Each reader's message. Every distinct combination of topics is rendered once per campaign
//! with a placeholder where the reader's link token goes, and MIME-encoded once, under one
//! boundary, the first time a reader needs it; a reader's message is those bytes with their
//! token written in place, their headers, and a DKIM signature over the result. Tokens all
//! have one length and only characters quoted-printable leaves as they are, so writing one in
//! place gives the bytes encoding the reader's own text would: the same message, byte for byte,
//! as building each from scratch ([`Personaliser::message_by_builder`], which the tests compare
//! it with), without encoding 50 KB for every reader.

use std::collections::HashMap;
use std::sync::OnceLock;

use lettre::Address;
use lettre::address::Envelope;

use crate::config::{Config, TaggedAddress};
use crate::content::{Issue, TopicCatalog, TopicSet};
use crate::mail::outgoing::{Body, Encoded, Outbox, OutboxError, Stamp, header};
use crate::render::message::{message_id, message_id_tag};
use crate::render::{ReaderLinks, RenderError, Rendered, Renderer};
use crate::store::{DisplayName, LinkToken, SubscriberEmail};

pub use crate::mail::outgoing::Outgoing;

/// Stands in for a reader's token in the rendered variants. URL-safe and never escaped.
const TOKEN: &str = "LSCPREADERTOKENLSCP";

/// Why one reader's message could not be written: their variant did not render, the outbox
/// could not make or sign the message, or the issue has no variant for their topics.
#[derive(Debug, thiserror::Error)]
pub enum PersonaliseError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("the issue has no variant for the topics {0:?}")]
    NoVariant(Vec<String>),
}

/// Everything needed to write any reader's message for one issue.
pub struct Personaliser {
    outbox: Outbox,
    subject: String,
    variants: HashMap<TopicSet, Variant>,
    full: Variant,
    /// The MIME boundary of every message of the campaign.
    boundary: String,
    list_id: String,
    unsubscribe_mailto: Option<TaggedAddress>,
    unsubscribe_url: String,
    bounce_address: Option<TaggedAddress>,
    /// The envelope sender as the workers give it, for a session that tries it first.
    sender: Address,
}

impl Personaliser {
    pub fn new(
        issue: &Issue,
        config: &Config,
        catalog: &TopicCatalog,
        renderer: &Renderer,
    ) -> Result<Self, PersonaliseError> {
        let links = ReaderLinks {
            view_online: config.site.url(&format!("/issues/{}", issue.id)),
            preferences: config.site.url(&format!("/p/{TOKEN}")),
            unsubscribe: config.site.url(&format!("/u/{TOKEN}")),
            subscribe: config.site.url("/subscribe"),
            images: crate::render::view::images_base(config, issue),
        };
        let all = renderer.render_variants(issue, config, catalog, &links)?;
        let rendered: HashMap<TopicSet, Variant> = all
            .by_topics
            .into_iter()
            .map(|(set, r)| (set, Variant::new(r)))
            .collect();
        let outbox = Outbox::new(config)?;
        let sender = envelope_sender(config, outbox.sender())?;
        Ok(Self {
            outbox,
            subject: issue.subject.clone(),
            variants: rendered,
            full: Variant::new(all.full),
            // lettre's own, drawn as it draws one for every message it builds.
            boundary: crate::render::message::body(String::new(), String::new()).boundary(),
            list_id: format!(
                "{} <{}>",
                config.brand.short_name.replace(['<', '>', '"'], ""),
                config.mail.list_id
            ),
            unsubscribe_mailto: config.mail.unsubscribe_mailto.clone(),
            unsubscribe_url: config.site.url(&format!("/u/{TOKEN}")),
            bounce_address: config.mail.bounce_address.clone(),
            sender,
        })
    }

    /// The name the sender gives in SMTP's EHLO.
    pub fn hello_name(&self) -> &str {
        self.outbox.hello_name()
    }

    /// The envelope sender (`MAIL FROM`) as the messages give it: the address of `mail.from`,
    /// or `mail.bounce_address` tagged for a delivery when that is set.
    pub fn sender(&self) -> &Address {
        &self.sender
    }

    /// How many distinct renderings the campaign needs.
    pub fn variant_count(&self) -> usize {
        self.variants.len()
    }

    /// The message for a reader of `topics` (the topics their choice shares with the issue),
    /// or the whole issue when `topics` is `None`.
    pub fn message(
        &self,
        to_address: &SubscriberEmail,
        to_name: Option<&DisplayName>,
        topics: Option<&TopicSet>,
        token: &LinkToken,
    ) -> Result<Outgoing, PersonaliseError> {
        self.message_stamped(to_address, to_name, topics, token, None)
    }

    /// [`Personaliser::message`] with the Message-ID and Date given: with the boundary of
    /// [`Personaliser::with_boundary`], the very message `message_by_builder` made.
    pub fn message_stamped(
        &self,
        to_address: &SubscriberEmail,
        to_name: Option<&DisplayName>,
        topics: Option<&TopicSet>,
        token: &LinkToken,
        stamp: Option<Stamp>,
    ) -> Result<Outgoing, PersonaliseError> {
        let variant = self.variant(topics)?;
        let token = token.expose();
        let Some(body) = variant.encoded(&self.boundary, &token) else {
            return self.message_by_builder(to_address, to_name, topics, &token);
        };
        let out = self.outbox.message_encoded(
            (to_address.as_str(), to_name.map(DisplayName::as_str)),
            &self.subject,
            self.headers(&token),
            body,
            stamp,
        )?;
        self.with_verp(out, to_address)
    }

    /// The message built from scratch, MIME encoding and all, as every message was before
    /// variants were encoded once: what a variant that cannot be encoded ahead gets, and what
    /// the tests compare the fast way with.
    pub fn message_by_builder(
        &self,
        to_address: &SubscriberEmail,
        to_name: Option<&DisplayName>,
        topics: Option<&TopicSet>,
        token: &str,
    ) -> Result<Outgoing, PersonaliseError> {
        let rendered = &self.variant(topics)?.rendered;
        let body = Body::Alternative {
            text: rendered.text.replace(TOKEN, token),
            html: rendered.html.replace(TOKEN, token),
        };
        let out = self.outbox.message(
            (to_address.as_str(), to_name.map(DisplayName::as_str)),
            &self.subject,
            self.headers(token),
            body,
        )?;
        self.with_verp(out, to_address)
    }

    /// The same personaliser with the MIME boundary `boundary` (one with the shape lettre
    /// draws): to compare its messages with one `message_by_builder` made.
    pub fn with_boundary(mut self, boundary: &str) -> Self {
        self.boundary = boundary.to_string();
        for v in self.variants.values_mut().chain([&mut self.full]) {
            v.encoded = OnceLock::new();
        }
        self
    }

    /// How many variants readers' messages were made from bodies encoded ahead (rather than
    /// from scratch, which a variant whose encoding would not keep a token in place gets).
    pub fn encoded_ahead(&self) -> usize {
        self.variants
            .values()
            .chain([&self.full])
            .filter(|v| v.encoded.get().is_some_and(Option::is_some))
            .count()
    }

    fn variant(&self, topics: Option<&TopicSet>) -> Result<&Variant, PersonaliseError> {
        match topics {
            None => Ok(&self.full),
            Some(t) => self
                .variants
                .get(t)
                .ok_or_else(|| PersonaliseError::NoVariant(slugs(t))),
        }
    }

    /// The reader's list headers.
    fn headers(&self, token: &str) -> Vec<lettre::message::header::HeaderValue> {
        let mut unsubscribe = format!("<{}>", self.unsubscribe_url.replace(TOKEN, token));
        if let Some(mailto) = &self.unsubscribe_mailto {
            // The token in the address finds the reader without trusting the From header.
            let to = mailto.with_tag(token);
            unsubscribe.push_str(&format!(", <mailto:{to}?subject=unsubscribe>"));
        }
        vec![
            header("List-Id", self.list_id.clone()),
            header("List-Unsubscribe", unsubscribe),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ]
    }

    /// Reports come back to an address naming the delivery (its Message-ID's random part),
    /// never the reader.
    fn with_verp(
        &self,
        mut out: Outgoing,
        to_address: &SubscriberEmail,
    ) -> Result<Outgoing, PersonaliseError> {
        if let Some(bounces) = &self.bounce_address
            && let Some(tag) = message_id_tag(&out.message_id)
        {
            out.envelope = Envelope::new(Some(verp(bounces, tag)?), out.envelope.to().to_vec())
                .map_err(|_| OutboxError::BadRecipient(to_address.to_string()))?;
        }
        Ok(out)
    }
}

/// One rendering of the issue, and its MIME encoding once a reader needs it.
struct Variant {
    rendered: Rendered,
    encoded: OnceLock<Option<Template>>,
}

/// A variant's encoded body with a stand-in token, and the offset of every byte of every
/// token in it, in order.
struct Template {
    body: Encoded,
    token_len: usize,
    slots: Vec<usize>,
}

impl Variant {
    fn new(rendered: Rendered) -> Self {
        Self {
            rendered,
            encoded: OnceLock::new(),
        }
    }

    /// The encoded body with `token` written in; `None` when this variant's encoding does not
    /// keep a token's characters in place (then it is built from scratch).
    fn encoded(&self, boundary: &str, token: &str) -> Option<Encoded> {
        let t = self
            .encoded
            .get_or_init(|| Template::new(&self.rendered, boundary, token.len()))
            .as_ref()?;
        (token.len() == t.token_len).then(|| t.write(token))
    }
}

impl Template {
    /// Encodes `rendered` with two stand-ins that differ in every character: the bytes where
    /// the encodings differ are where a token goes. Checked with a third that uses every
    /// character a token can have: written in place, it must give what encoding it gives.
    fn new(rendered: &Rendered, boundary: &str, token_len: usize) -> Option<Self> {
        let encode = |stand_in: &str| {
            Encoded::new(
                &rendered.text.replace(TOKEN, stand_in),
                &rendered.html.replace(TOKEN, stand_in),
                boundary,
            )
        };
        let a = encode(&"x".repeat(token_len));
        let b = encode(&"y".repeat(token_len));
        let tokens = rendered.text.matches(TOKEN).count() + rendered.html.matches(TOKEN).count();
        if a.bytes.len() != b.bytes.len() {
            return None;
        }
        let slots: Vec<usize> = (0..a.bytes.len())
            .filter(|&i| a.bytes[i] != b.bytes[i])
            .collect();
        if slots.len() != tokens * token_len {
            return None;
        }
        let template = Self {
            body: a,
            token_len,
            slots,
        };
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let probe: String = ALPHABET.chars().cycle().take(token_len).collect();
        (template.write(&probe).bytes == encode(&probe).bytes).then_some(template)
    }

    /// The body with `token` in every place.
    fn write(&self, token: &str) -> Encoded {
        let mut body = self.body.clone();
        let token = token.as_bytes();
        for (i, &at) in self.slots.iter().enumerate() {
            body.bytes[at] = token[i % token.len()];
        }
        body
    }
}

/// The topics' slugs in sorted order, as the error names them.
fn slugs(set: &TopicSet) -> Vec<String> {
    set.iter().map(|t| t.as_str().to_string()).collect()
}

/// `bounces+TAG@domain`: where reports about the delivery tagged `tag` come back.
fn verp(bounces: &TaggedAddress, tag: &str) -> Result<Address, OutboxError> {
    let tagged = bounces.with_tag(tag);
    tagged
        .parse()
        .map_err(|_| OutboxError::BadRecipient(tagged))
}

/// The envelope sender a message of this configuration is given, for a session that tries it
/// before sending (`send`'s pre-flight, `doctor`): `from`, or `mail.bounce_address` tagged as
/// for a delivery when that is set.
pub fn envelope_sender(config: &Config, from: &Address) -> Result<Address, OutboxError> {
    let id = message_id(&config.mail);
    match (&config.mail.bounce_address, message_id_tag(&id)) {
        (Some(bounces), Some(tag)) => verp(bounces, tag),
        _ => Ok(from.clone()),
    }
}
