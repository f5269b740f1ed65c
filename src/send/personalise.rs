//! Each reader's message. Every distinct combination of topics is rendered once per campaign
//! with a placeholder where the reader's link token goes; a reader's message is that rendering
//! with their token put in, their headers, and a DKIM signature when configured.

use std::collections::HashMap;

use lettre::Address;
use lettre::address::Envelope;

use crate::config::{Config, TaggedAddress};
use crate::content::{Issue, TopicCatalog, TopicSet};
use crate::render::message::{message_id, message_id_tag};
use crate::render::{ReaderLinks, RenderError, Rendered, Renderer};
use crate::send::outgoing::{Body, Outbox, OutboxError, header};
use crate::store::LinkToken;

pub use crate::send::outgoing::Outgoing;

/// Stands in for a reader's token in the rendered variants. URL-safe and never escaped.
const TOKEN: &str = "LSCPREADERTOKENLSCP";

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
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
    variants: HashMap<Vec<String>, Rendered>,
    full: Rendered,
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
    ) -> Result<Self, MessageError> {
        let links = ReaderLinks {
            view_online: config.site.url(&format!("/issues/{}", issue.id)),
            preferences: config.site.url(&format!("/p/{TOKEN}")),
            unsubscribe: config.site.url(&format!("/u/{TOKEN}")),
            subscribe: config.site.url("/subscribe"),
            images: crate::render::view::images_base(config, issue),
        };
        let all = renderer.render_variants(issue, config, catalog, &links)?;
        let rendered: HashMap<Vec<String>, Rendered> = all
            .by_topics
            .into_iter()
            .map(|(set, r)| (key(&set), r))
            .collect();
        let outbox = Outbox::new(config)?;
        let sender = envelope_sender(config, outbox.sender())?;
        Ok(Self {
            outbox,
            subject: issue.subject.clone(),
            variants: rendered,
            full: all.full,
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

    /// The message for a reader of `topics` (the slugs their choice shares with the issue),
    /// or the whole issue when `topics` is `None`.
    pub fn message(
        &self,
        to_address: &str,
        to_name: Option<&str>,
        topics: Option<&[String]>,
        token: &LinkToken,
    ) -> Result<Outgoing, MessageError> {
        let rendered = match topics {
            None => &self.full,
            Some(t) => {
                let mut k = t.to_vec();
                k.sort();
                self.variants
                    .get(&k)
                    .ok_or_else(|| MessageError::NoVariant(k.clone()))?
            }
        };
        let token = token.expose();
        let mut unsubscribe = format!("<{}>", self.unsubscribe_url.replace(TOKEN, &token));
        if let Some(mailto) = &self.unsubscribe_mailto {
            // The token in the address finds the reader without trusting the From header.
            let to = mailto.with_tag(&token);
            unsubscribe.push_str(&format!(", <mailto:{to}?subject=unsubscribe>"));
        }
        let headers = vec![
            header("List-Id", self.list_id.clone()),
            header("List-Unsubscribe", unsubscribe),
            header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ];
        let body = Body::Alternative {
            text: rendered.text.replace(TOKEN, &token),
            html: rendered.html.replace(TOKEN, &token),
        };
        let mut out = self
            .outbox
            .message((to_address, to_name), &self.subject, headers, body)?;
        // Reports come back to an address naming the delivery (its Message-ID's random part),
        // never the reader.
        if let Some(bounces) = &self.bounce_address
            && let Some(tag) = message_id_tag(&out.message_id)
        {
            out.envelope = Envelope::new(Some(verp(bounces, tag)?), out.envelope.to().to_vec())
                .map_err(|_| OutboxError::BadRecipient(to_address.to_string()))?;
        }
        Ok(out)
    }
}

/// The variant key: topic slugs in sorted order, as the ledger stores them.
fn key(set: &TopicSet) -> Vec<String> {
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
