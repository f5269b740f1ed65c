//! Subscribers: who they are, whether we may write to them, and what they chose to receive.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::consent::{self, ConsentAction, ConsentEntry, ConsentSource};
use super::email::SubscriberEmail;
use super::name::DisplayName;
use super::token::LinkKeys;
use super::{Store, StoreError, erase};
use crate::content::TopicSet;

mod statements;

use statements::*;
pub(crate) use statements::{Key, by_id, locked, one, slugs};

/// A subscriber's number in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct SubscriberId(i64);

impl SubscriberId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a subscriber stands. Only `active` subscribers are sent the newsletter. Stored as
/// its name in lower case, the same as [`SubscriberStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum SubscriberStatus {
    /// Signed up, awaiting the double opt-in confirmation.
    Pending,
    Active,
    Unsubscribed,
    /// The address does not accept mail.
    Bounced,
    /// Stopped by an administrator.
    Blocked,
}

impl SubscriberStatus {
    pub const ALL: [SubscriberStatus; 5] = [
        Self::Pending,
        Self::Active,
        Self::Unsubscribed,
        Self::Bounced,
        Self::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
            Self::Blocked => "blocked",
        }
    }

    /// Someone who left (or whose mail cannot be delivered) is never brought back by an
    /// import; only they can ask to come back.
    pub fn has_left(self) -> bool {
        matches!(self, Self::Unsubscribed | Self::Bounced | Self::Blocked)
    }

    pub(crate) fn from_store(s: &str) -> Result<Self, StoreError> {
        s.parse()
            .map_err(|_| StoreError::Corrupt(format!("unknown subscriber status `{s}`")))
    }
}

impl FromStr for SubscriberStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}`: use pending, active, unsubscribed, bounced or blocked"
                )
            })
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub email: SubscriberEmail,
    pub name: Option<DisplayName>,
    pub organisation: Option<DisplayName>,
    pub status: SubscriberStatus,
    /// Topic slugs in the order the sign-up box lists them.
    pub topics: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// Someone to add: everything has been checked already.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: SubscriberEmail,
    pub name: Option<DisplayName>,
    pub organisation: Option<DisplayName>,
    pub topics: TopicSet,
}

/// What adding someone did.
#[derive(Debug, Clone)]
pub struct Added {
    pub subscriber: Subscriber,
    /// Their status before, when they were on record: `Pending` when an administrator's add
    /// made an unconfirmed sign-up active.
    pub before: Option<SubscriberStatus>,
}

/// Which subscribers `list` and `export` show; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    pub status: Option<SubscriberStatus>,
    /// A topic slug (parse it against the catalog first).
    pub topic: Option<String>,
}

/// What a change did: `before == after` means nothing needed doing and nothing was logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<T> {
    pub before: T,
    pub after: T,
}

impl<T: PartialEq> Change<T> {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

impl Store {
    /// Adds a practitioner: [`Store::add`], for callers that need only the subscriber.
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        status: SubscriberStatus,
        source: &ConsentSource,
        resubscribe: bool,
    ) -> Result<Subscriber, StoreError> {
        Ok(self.add(new, status, source, resubscribe).await?.subscriber)
    }

    /// Adds a practitioner. Someone already subscribed, or who left or was erased, is refused
    /// unless `resubscribe` says they asked to come back. Adding as active someone whose
    /// sign-up is still unconfirmed makes them active: anyone can type an address into the
    /// sign-up form, and that must not stop an administrator who has their consent.
    pub async fn add(
        &self,
        new: &NewSubscriber,
        status: SubscriberStatus,
        source: &ConsentSource,
        resubscribe: bool,
    ) -> Result<Added, StoreError> {
        let mut tx = self.pool.begin().await?;
        let normalised = new.email.normalised();
        let topics = slugs(&new.topics);
        let mut before = None;
        let id = match one(&mut tx, Key::Email(&normalised)).await? {
            Some(existing) => {
                before = Some(existing.status);
                let activates = existing.status == SubscriberStatus::Pending
                    && status == SubscriberStatus::Active;
                if !existing.status.has_left() && !activates {
                    return Err(StoreError::AlreadySubscribed {
                        email: existing.email.to_string(),
                        status: existing.status,
                    });
                }
                if existing.status.has_left() && !resubscribe {
                    return Err(StoreError::HasLeft {
                        email: existing.email.to_string(),
                        status: existing.status,
                    });
                }
                update_row(&mut tx, existing.id, Update::status(status)).await?;
                replace_topics(&mut tx, existing.id, &topics).await?;
                // What the administrator gives replaces what was there; what they leave out stays.
                let name = new.name.as_ref().map(DisplayName::as_str);
                let organisation = new.organisation.as_ref().map(DisplayName::as_str);
                set_details(
                    &mut tx,
                    existing.id,
                    name.or(existing.name.as_deref()),
                    organisation.or(existing.organisation.as_deref()),
                )
                .await?;
                let detail = json!({
                    "status": status.as_str(),
                    "previous_status": existing.status.as_str(),
                    "topics": topics,
                });
                consent::record(
                    &mut tx,
                    existing.id,
                    ConsentAction::Subscribed,
                    source,
                    detail,
                )
                .await?;
                existing.id
            }
            None => {
                let erased = erase::erased_at(&mut tx, &new.email).await?;
                if let (Some(erased_at), false) = (erased, resubscribe) {
                    return Err(StoreError::Erased { erased_at });
                }
                let id = insert(&mut tx, new, status, &LinkKeys::generate()?).await?;
                replace_topics(&mut tx, id, &topics).await?;
                let mut detail = json!({ "status": status.as_str(), "topics": topics });
                if erased.is_some() {
                    detail["after_erasure"] = json!(true);
                }
                consent::record(&mut tx, id, ConsentAction::Subscribed, source, detail).await?;
                id
            }
        };
        let subscriber = by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Added { subscriber, before })
    }

    /// Sets (or, with `None`, clears) the subscriber's name and organisation.
    pub async fn set_details(
        &self,
        email: &SubscriberEmail,
        name: Option<&DisplayName>,
        organisation: Option<&DisplayName>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let subscriber = locked(&mut tx, email).await?;
        set_details(
            &mut tx,
            subscriber.id,
            name.map(DisplayName::as_str),
            organisation.map(DisplayName::as_str),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn subscriber(&self, email: &SubscriberEmail) -> Result<Subscriber, StoreError> {
        let mut conn = self.pool.acquire().await?;
        one(&mut conn, Key::Email(&email.normalised()))
            .await?
            .ok_or_else(|| StoreError::NotFound(email.to_string()))
    }

    /// The subscriber with this id, as they are now.
    pub async fn subscriber_by_id(&self, id: SubscriberId) -> Result<Subscriber, StoreError> {
        by_id(&mut *self.pool.acquire().await?, id).await
    }

    /// In address order.
    pub async fn subscribers(
        &self,
        filter: &SubscriberFilter,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        select(
            &mut conn,
            &Select {
                status: filter.status,
                topic: filter.topic.as_deref(),
                ..Select::default()
            },
        )
        .await
    }

    /// The consent and change log of one subscriber, oldest first.
    pub async fn history(&self, subscriber: &Subscriber) -> Result<Vec<ConsentEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        consent::history(&mut conn, subscriber.id).await
    }

    /// Replaces the subscriber's topics. Both sides of the change are in sign-up order.
    pub async fn set_topics(
        &self,
        email: &SubscriberEmail,
        topics: &TopicSet,
        source: &ConsentSource,
    ) -> Result<Change<Vec<String>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let subscriber = locked(&mut tx, email).await?;
        let wanted = slugs(topics);
        let mut change = Change {
            before: subscriber.topics.clone(),
            after: subscriber.topics,
        };
        if sorted(change.before.clone()) != wanted {
            replace_topics(&mut tx, subscriber.id, &wanted).await?;
            update_row(&mut tx, subscriber.id, Update::default()).await?;
            change.after = by_id(&mut tx, subscriber.id).await?.topics;
            let detail = json!({ "from": change.before, "to": change.after });
            consent::record(
                &mut tx,
                subscriber.id,
                ConsentAction::TopicsChanged,
                source,
                detail,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(change)
    }

    pub async fn unsubscribe(
        &self,
        email: &SubscriberEmail,
        source: &ConsentSource,
    ) -> Result<Change<SubscriberStatus>, StoreError> {
        self.change_status(
            email,
            source,
            SubscriberStatus::Unsubscribed,
            ConsentAction::Unsubscribed,
        )
        .await
    }

    /// Completes the double opt-in: a pending subscriber becomes active.
    pub async fn confirm(
        &self,
        email: &SubscriberEmail,
        source: &ConsentSource,
    ) -> Result<Change<SubscriberStatus>, StoreError> {
        self.change_status(
            email,
            source,
            SubscriberStatus::Active,
            ConsentAction::Confirmed,
        )
        .await
    }

    async fn change_status(
        &self,
        email: &SubscriberEmail,
        source: &ConsentSource,
        to: SubscriberStatus,
        action: ConsentAction,
    ) -> Result<Change<SubscriberStatus>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let subscriber = locked(&mut tx, email).await?;
        let change = Change {
            before: subscriber.status,
            after: to,
        };
        let confirming = action == ConsentAction::Confirmed;
        if confirming && change.changed() && subscriber.status != SubscriberStatus::Pending {
            return Err(StoreError::NotPending {
                email: subscriber.email.to_string(),
                status: subscriber.status,
            });
        }
        if change.changed() {
            let update = Update {
                status: Some(to),
                confirmed: confirming,
            };
            update_row(&mut tx, subscriber.id, update).await?;
            let detail = json!({ "from": change.before.as_str(), "to": change.after.as_str() });
            consent::record(&mut tx, subscriber.id, action, source, detail).await?;
        }
        tx.commit().await?;
        Ok(change)
    }
}
