//! Sign-up with double opt-in: the form makes a pending subscriber (or finds the one there is)
//! and a confirmation link that works once, for 48 hours; only following it and pressing
//! "Confirm" makes them active. Only a SHA-256 of the link's random token is stored.
//!
//! Whatever the address's state, the visitor is told the same thing ("check your inbox"), so
//! the form reveals nothing about who is subscribed. What the mailbox receives differs: a
//! confirmation link for a new, pending or departed address (a pending one gets a fresh
//! link); a note with their preferences link for an active one; nothing for a blocked one.
//! Mail goes out after the answer, so the answer's timing does not depend on it either.
//!
//! The form takes nothing but the address and topics, and the mails carry nothing a visitor
//! typed: anyone can type any address. The name and organisation are given with the
//! confirmation, by whoever holds the link, and replace whatever was there.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::content::TopicSet;
use crate::mail::outgoing::{Body, Outbox, OutboxError, Outgoing};
use crate::mail::smtp::{Connection, SmtpFailure, SmtpTarget};
use crate::store::signup::{Claimed, StoredLink};
use crate::store::subscriber::slugs;
use crate::store::token::random;
use crate::store::{
    ConsentSource, DisplayName, LinkToken, NewSubscriber, Store, StoreError, Subscriber,
    SubscriberEmail, SubscriberId, SubscriberStatus,
};

/// How long a confirmation link works.
pub const CONFIRM_WITHIN_HOURS: i32 = 48;
const TOKEN_LEN: usize = 32;

/// What a sign-up leads to. The visitor sees the same page whichever it is.
pub enum Signup {
    /// A new, pending or departed address: send this confirmation link.
    Confirm {
        subscriber: Subscriber,
        token: String,
    },
    /// Already receiving the newsletter: send a note with their preferences link.
    AlreadyActive {
        subscriber: Subscriber,
        link: LinkToken,
    },
    /// Stopped by an administrator: send nothing.
    Nothing,
}

/// What a sign-up asks for: the address and topics only. A name or organisation typed by a
/// visitor would be kept against an address that may not be theirs, and reach its mailbox; the
/// confirmation page asks for them instead, and the values given there are the ones kept.
pub struct SignupRequest {
    pub email: SubscriberEmail,
    pub topics: TopicSet,
}

/// Who the person confirming says they are; `None` is none.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub name: Option<DisplayName>,
    pub organisation: Option<DisplayName>,
}

pub async fn sign_up(store: &Store, request: &SignupRequest) -> Result<Signup, StoreError> {
    let new = &NewSubscriber {
        email: request.email.clone(),
        name: None,
        organisation: None,
        topics: request.topics.clone(),
    };
    let subscriber = match store.subscriber(&new.email).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => {
            // resubscribe: an erased address may sign up again; it is only pending until then.
            let web = ConsentSource::Web;
            match store
                .add_subscriber(new, SubscriberStatus::Pending, &web, true)
                .await
            {
                Ok(s) => s,
                // Two sign-ups at once: the other one added them.
                Err(StoreError::AlreadySubscribed { .. }) => store.subscriber(&new.email).await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    match subscriber.status {
        SubscriberStatus::Active => Ok(Signup::AlreadyActive {
            link: store.link_token(&subscriber).await?,
            subscriber,
        }),
        SubscriberStatus::Blocked => Ok(Signup::Nothing),
        SubscriberStatus::Pending | SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced => {
            let token = random(TOKEN_LEN)?;
            store
                .add_confirmation(
                    subscriber.id,
                    &digest(&token),
                    &slugs(&new.topics),
                    CONFIRM_WITHIN_HOURS,
                )
                .await?;
            Ok(Signup::Confirm {
                subscriber,
                token: URL_SAFE_NO_PAD.encode(token),
            })
        }
    }
}

/// Where a confirmation link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Malformed, forged, or its subscriber was erased.
    Unknown,
    Usable,
    Expired,
    Used,
}

pub async fn link_state(store: &Store, token: &str) -> Result<LinkState, StoreError> {
    Ok(match store.confirmation(&hash_of(token)).await? {
        None => LinkState::Unknown,
        Some(StoredLink { used: true, .. }) => LinkState::Used,
        Some(StoredLink { expired: true, .. }) => LinkState::Expired,
        Some(_) => LinkState::Usable,
    })
}

/// What confirming did.
pub enum Confirmed {
    /// They are active now (or already were, through another link).
    Subscribed(Subscriber),
    /// The link cannot be used: why.
    NotUsable(LinkState),
}

/// Uses the link once: a pending subscriber becomes active with the topics of the form and the
/// `details` given with the confirmation; one who had left comes back with them.
///
/// Each step is a store call of its own: holding a connection while the store's methods take
/// others could leave every confirmation waiting on the pool under load.
pub async fn confirm(
    store: &Store,
    token: &str,
    details: &Details,
) -> Result<Confirmed, StoreError> {
    let Some(claimed) = store.claim_confirmation(&hash_of(token)).await? else {
        return Ok(Confirmed::NotUsable(link_state(store, token).await?));
    };
    let Claimed {
        id,
        subscriber_id,
        topics,
    } = claimed;
    match apply(store, subscriber_id, &topics, details).await {
        Ok(Some(s)) => Ok(Confirmed::Subscribed(s)),
        // Blocked since: the link stays used.
        Ok(None) => Ok(Confirmed::NotUsable(LinkState::Used)),
        Err(e) => {
            // Nothing changed, so the link may be tried again.
            store.unclaim_confirmation(id).await?;
            Err(e)
        }
    }
}

async fn apply(
    store: &Store,
    subscriber_id: SubscriberId,
    topics: &[String],
    details: &Details,
) -> Result<Option<Subscriber>, StoreError> {
    let subscriber = store.subscriber_by_id(subscriber_id).await?;
    let catalog = store.topic_catalog().await?;
    // A topic removed since the form was sent is dropped.
    let topics: TopicSet = topics
        .iter()
        .filter_map(|t| catalog.parse(t).ok())
        .collect();
    let web = ConsentSource::Web;
    match subscriber.status {
        SubscriberStatus::Pending => {
            store.set_topics(&subscriber.email, &topics, &web).await?;
            store.confirm(&subscriber.email, &web).await?;
        }
        SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced => {
            let again = NewSubscriber {
                email: subscriber.email.clone(),
                name: None,
                organisation: None,
                topics,
            };
            store
                .add_subscriber(&again, SubscriberStatus::Active, &web, true)
                .await?;
        }
        // Confirmed already, through another link: that confirmation's details stand.
        SubscriberStatus::Active => {
            return Ok(Some(store.subscriber_by_id(subscriber_id).await?));
        }
        SubscriberStatus::Blocked => return Ok(None),
    }
    store
        .set_details(
            &subscriber.email,
            details.name.as_ref(),
            details.organisation.as_ref(),
        )
        .await?;
    Ok(Some(store.subscriber_by_id(subscriber_id).await?))
}

/// The stored form of a token: its SHA-256. A malformed token hashes to something no stored
/// token has, and is looked up like any other, so it takes as long.
fn hash_of(token: &str) -> Vec<u8> {
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(bytes) if bytes.len() == TOKEN_LEN => digest(&bytes),
        _ => vec![0; 32],
    }
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// A plain-text email to one person.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

pub fn confirmation_mail(config: &Config, subscriber: &Subscriber, token: &str) -> Mail {
    let link = config.site.url(&format!("/confirm/{token}"));
    mail(
        config,
        subscriber,
        format!(
            "Confirm your {} newsletter sign-up",
            config.brand.short_name
        ),
        &format!(
            "To confirm, open this link and press \"Confirm\" within {CONFIRM_WITHIN_HOURS} \
             hours:\n\n{link}\n\n\
             If it was not you, ignore this email: we will not write to you again."
        ),
    )
}

pub fn already_subscribed_mail(config: &Config, subscriber: &Subscriber, link: &LinkToken) -> Mail {
    let link = config.site.url(&format!("/p/{}", link.expose()));
    mail(
        config,
        subscriber,
        format!(
            "You already receive the {} newsletter",
            config.brand.short_name
        ),
        &format!(
            "It already is, so nothing has changed.\n\n\
             To choose your topics, or to unsubscribe:\n\n{link}"
        ),
    )
}

/// The sign-up mails greet no one by name: they go to an address that has not confirmed,
/// and nothing a visitor typed may reach it.
fn mail(config: &Config, subscriber: &Subscriber, subject: String, middle: &str) -> Mail {
    let brand = &config.brand;
    Mail {
        to: subscriber.email.to_string(),
        subject,
        text: format!(
            "Hello,\n\n\
             Someone, probably you, asked for the {} newsletter to be sent to this address.\n\
             {middle}\n\n{}\n{}\n{}\n",
            brand.organisation, brand.organisation, brand.postal_address, brand.contact_email,
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Message(#[from] OutboxError),
    #[error("the mail server did not take the message: {0}")]
    Refused(SmtpFailure),
}

/// Sends through the configured SMTP server (the same connection code `send` uses), trying
/// again later when the server says so.
pub async fn deliver(
    outbox: &Outbox,
    target: &SmtpTarget,
    mail: &Mail,
) -> Result<String, MailError> {
    let message = outbox.message(
        (&mail.to, None),
        &mail.subject,
        Vec::new(),
        Body::Text(mail.text.clone()),
    )?;
    let mut waits = crate::retry::confirmation_mail();
    loop {
        match send_once(outbox, target, &message).await {
            Ok(reply) => return Ok(reply),
            Err(failure) if failure.is_transient() => match waits.next() {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(MailError::Refused(failure)),
            },
            Err(failure) => return Err(MailError::Refused(failure)),
        }
    }
}

async fn send_once(
    outbox: &Outbox,
    target: &SmtpTarget,
    message: &Outgoing,
) -> Result<String, SmtpFailure> {
    let limit = Duration::from_secs(30);
    let mut conn = Connection::open(target, outbox.hello_name(), limit).await?;
    let reply = conn.send(&message.envelope, &message.bytes).await;
    conn.quit().await;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_only_as_its_hash() {
        let token = URL_SAFE_NO_PAD.encode([5u8; TOKEN_LEN]);
        assert_eq!(hash_of(&token), digest(&[5u8; TOKEN_LEN]));
        assert_eq!(hash_of(&token).len(), 32);
        assert_eq!(hash_of("not a token"), vec![0; 32]);
        assert_eq!(hash_of(&token[..20]), vec![0; 32]);
    }
}
