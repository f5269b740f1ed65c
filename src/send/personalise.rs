//! Each reader's message. Every distinct combination of topics is rendered once per campaign
//! with a placeholder where the reader's link token goes; a reader's message is that rendering
//! with their token put in, their headers, and a DKIM signature when configured.

use std::collections::HashMap;

use lettre::address::Envelope;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};

use crate::config::TaggedAddress;
use crate::config::{Config, DkimAlgorithm, Mail};
use crate::content::{Issue, TopicCatalog, TopicSet};
use crate::render::message::{body, build, mailbox, message_id, message_id_tag};
use crate::render::{ReaderLinks, RenderError, Rendered, Renderer};
use crate::store::LinkToken;

/// Stands in for a reader's token in the rendered variants. URL-safe and never escaped.
const TOKEN: &str = "LSCPREADERTOKENLSCP";

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Build(#[from] crate::render::message::MessageError),
    #[error("cannot read the DKIM key {path}: {message}")]
    DkimKey { path: String, message: String },
    #[error("`{0}` is not an email address a message can go to")]
    BadRecipient(String),
    #[error("the issue has no variant for the topics {0:?}")]
    NoVariant(Vec<String>),
}

/// Everything needed to write any reader's message for one issue.
pub struct Personaliser {
    mail: Mail,
    subject: String,
    from: Mailbox,
    variants: HashMap<Vec<String>, Rendered>,
    full: Rendered,
    dkim: Option<DkimConfig>,
    list_id: String,
    unsubscribe_mailto: Option<TaggedAddress>,
    unsubscribe_url: String,
}

/// One reader's message, ready for the SMTP conversation.
pub struct Outgoing {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    pub message_id: String,
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
        };
        let all = renderer.render_variants(issue, config, catalog, &links)?;
        let rendered: HashMap<Vec<String>, Rendered> = all
            .by_topics
            .into_iter()
            .map(|(set, r)| (key(&set), r))
            .collect();
        let dkim = match &config.dkim {
            None => None,
            Some(d) => {
                let pem =
                    std::fs::read_to_string(&d.key_file).map_err(|e| MessageError::DkimKey {
                        path: d.key_file.display().to_string(),
                        message: e.to_string(),
                    })?;
                let algorithm = match d.algorithm {
                    DkimAlgorithm::RsaSha256 => DkimSigningAlgorithm::Rsa,
                    DkimAlgorithm::Ed25519Sha256 => DkimSigningAlgorithm::Ed25519,
                };
                let key = DkimSigningKey::new(pem.trim(), algorithm).map_err(|e| {
                    MessageError::DkimKey {
                        path: d.key_file.display().to_string(),
                        message: e.to_string(),
                    }
                })?;
                // Gmail and Yahoo honour one-click unsubscribe only when the List-Unsubscribe
                // headers are covered by the signature.
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
                Some(DkimConfig::new(
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
        };
        Ok(Self {
            mail: config.mail.clone(),
            subject: issue.subject.clone(),
            from: mailbox("mail.from", &config.mail.from)?,
            variants: rendered,
            full: all.full,
            dkim,
            list_id: format!(
                "{} <{}>",
                config.brand.short_name.replace(['<', '>', '"'], ""),
                config.mail.list_id
            ),
            unsubscribe_mailto: config.mail.unsubscribe_mailto.clone(),
            unsubscribe_url: config.site.url(&format!("/u/{TOKEN}")),
        })
    }

    /// The name the sender gives in SMTP's EHLO.
    pub fn hello_name(&self) -> &str {
        &self.mail.message_id_domain
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
        let address: lettre::Address = to_address
            .parse()
            .map_err(|_| MessageError::BadRecipient(to_address.to_string()))?;
        let to = Mailbox::new(
            to_name.map(|n| n.replace(['\r', '\n'], " ")),
            address.clone(),
        );
        let id = message_id(&self.mail);
        let mut unsubscribe = format!("<{}>", self.unsubscribe_url.replace(TOKEN, &token));
        if let Some(mailto) = &self.unsubscribe_mailto {
            // The token in the address finds the reader without trusting the From header.
            let to = mailto.with_tag(&token);
            unsubscribe.push_str(&format!(", <mailto:{to}?subject=unsubscribe>"));
        }
        let mut message: Message = build(&self.mail, &self.subject, to, id.clone())?
            .raw_header(header("List-Id", self.list_id.clone()))
            .raw_header(header("List-Unsubscribe", unsubscribe))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .multipart(body(
                rendered.text.replace(TOKEN, &token),
                rendered.html.replace(TOKEN, &token),
            ))
            .map_err(crate::render::message::MessageError::from)?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        let sender = match (&self.mail.bounce_address, message_id_tag(&id)) {
            (Some(bounces), Some(tag)) => bounces
                .with_tag(tag)
                .parse()
                .map_err(|_| MessageError::BadRecipient(bounces.with_tag(tag)))?,
            _ => self.from.email.clone(),
        };
        Ok(Outgoing {
            envelope: Envelope::new(Some(sender), vec![address])
                .map_err(|_| MessageError::BadRecipient(to_address.to_string()))?,
            bytes: message.formatted(),
            message_id: id,
        })
    }
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// The variant key: topic slugs in sorted order, as the ledger stores them.
fn key(set: &TopicSet) -> Vec<String> {
    set.iter().map(|t| t.as_str().to_string()).collect()
}
