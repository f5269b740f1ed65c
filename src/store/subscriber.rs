//! Subscribers: who they are, whether we may write to them, and what they chose to receive.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use super::consent::{self, ConsentAction, ConsentEntry, ConsentSource};
use super::email::SubscriberEmail;
use super::name::DisplayName;
use super::token::LinkKeys;
use super::{Store, StoreError, erase};
use crate::content::TopicSet;

/// Where a subscriber stands. Only `active` subscribers are sent the newsletter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub id: i64,
    pub email: SubscriberEmail,
    pub name: Option<String>,
    pub organisation: Option<String>,
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
        let id = match find(&mut tx, &normalised).await? {
            Some(existing) => {
                let existing = Subscriber::try_from(existing)?;
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
                set_status(&mut tx, existing.id, status).await?;
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
        find(&mut conn, &email.normalised())
            .await?
            .ok_or_else(|| StoreError::NotFound(email.to_string()))?
            .try_into()
    }

    /// In address order.
    pub async fn subscribers(
        &self,
        filter: &SubscriberFilter,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        list(&mut conn, filter)
            .await?
            .into_iter()
            .map(Subscriber::try_from)
            .collect()
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
            touch(&mut tx, subscriber.id).await?;
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
        if action == ConsentAction::Confirmed && change.changed() {
            if subscriber.status != SubscriberStatus::Pending {
                return Err(StoreError::NotPending {
                    email: subscriber.email.to_string(),
                    status: subscriber.status,
                });
            }
            mark_confirmed(&mut tx, subscriber.id).await?;
        }
        if change.changed() {
            set_status(&mut tx, subscriber.id, to).await?;
            let detail = json!({ "from": change.before.as_str(), "to": change.after.as_str() });
            consent::record(&mut tx, subscriber.id, action, source, detail).await?;
        }
        tx.commit().await?;
        Ok(change)
    }
}

/// The subscriber, locked until the transaction ends so two changes cannot interleave.
pub(crate) async fn locked(
    tx: &mut Transaction<'_, Postgres>,
    email: &SubscriberEmail,
) -> Result<Subscriber, StoreError> {
    let id = lock(tx, &email.normalised())
        .await?
        .ok_or_else(|| StoreError::NotFound(email.to_string()))?;
    by_id(tx, id).await
}

pub(crate) fn slugs(topics: &TopicSet) -> Vec<String> {
    topics.iter().map(|t| t.as_str().to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A row of the subscriber queries, before its status is parsed.
pub(crate) struct SubscriberRow {
    id: i64,
    email: String,
    name: Option<String>,
    organisation: Option<String>,
    status: String,
    topics: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
}

impl TryFrom<SubscriberRow> for Subscriber {
    type Error = StoreError;

    fn try_from(r: SubscriberRow) -> Result<Self, StoreError> {
        Ok(Subscriber {
            id: r.id,
            email: SubscriberEmail::from_store(r.email),
            name: r.name,
            organisation: r.organisation,
            status: SubscriberStatus::from_store(&r.status)?,
            topics: r.topics,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
        })
    }
}

pub(crate) async fn find(
    conn: &mut PgConnection,
    normalised: &str,
) -> Result<Option<SubscriberRow>, StoreError> {
    Ok(sqlx::query_as!(
        SubscriberRow,
        r#"SELECT s.id, s.email, s.name, s.organisation, s.status,
                  s.created_at, s.updated_at, s.confirmed_at,
                  ARRAY(SELECT st.topic FROM subscriber_topics st JOIN topics t ON t.slug = st.topic
                        WHERE st.subscriber_id = s.id ORDER BY t.sort_order, t.slug) AS "topics!"
           FROM subscribers s WHERE s.email_normalised = $1"#,
        normalised
    )
    .fetch_optional(conn)
    .await?)
}

pub(crate) async fn by_id(conn: &mut PgConnection, id: i64) -> Result<Subscriber, StoreError> {
    sqlx::query_as!(
        SubscriberRow,
        r#"SELECT s.id, s.email, s.name, s.organisation, s.status,
                  s.created_at, s.updated_at, s.confirmed_at,
                  ARRAY(SELECT st.topic FROM subscriber_topics st JOIN topics t ON t.slug = st.topic
                        WHERE st.subscriber_id = s.id ORDER BY t.sort_order, t.slug) AS "topics!"
           FROM subscribers s WHERE s.id = $1"#,
        id
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

async fn list(
    conn: &mut PgConnection,
    filter: &SubscriberFilter,
) -> Result<Vec<SubscriberRow>, StoreError> {
    Ok(sqlx::query_as!(
        SubscriberRow,
        r#"SELECT s.id, s.email, s.name, s.organisation, s.status,
                  s.created_at, s.updated_at, s.confirmed_at,
                  ARRAY(SELECT st.topic FROM subscriber_topics st JOIN topics t ON t.slug = st.topic
                        WHERE st.subscriber_id = s.id ORDER BY t.sort_order, t.slug) AS "topics!"
           FROM subscribers s
           WHERE ($1::text IS NULL OR s.status = $1)
             AND ($2::text IS NULL OR EXISTS (
                   SELECT 1 FROM subscriber_topics st WHERE st.subscriber_id = s.id AND st.topic = $2))
           ORDER BY s.email_normalised"#,
        filter.status.map(SubscriberStatus::as_str),
        filter.topic.as_deref(),
    )
    .fetch_all(conn)
    .await?)
}

async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    normalised: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM subscribers WHERE email_normalised = $1 FOR UPDATE",
        normalised
    )
    .fetch_optional(&mut **tx)
    .await?)
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewSubscriber,
    status: SubscriberStatus,
    keys: &LinkKeys,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO subscribers (email, email_normalised, name, organisation, status, link_id, link_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        new.email.as_str(),
        new.email.normalised(),
        new.name.as_ref().map(DisplayName::as_str),
        new.organisation.as_ref().map(DisplayName::as_str),
        status.as_str(),
        &keys.id,
        &keys.secret,
    )
    .fetch_one(&mut **tx)
    .await?)
}

async fn set_status(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    status: SubscriberStatus,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET status = $2, updated_at = now() WHERE id = $1",
        id,
        status.as_str()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_details(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    name: Option<&str>,
    organisation: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET name = $2, organisation = $3, updated_at = now() WHERE id = $1",
        id,
        name,
        organisation
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn mark_confirmed(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET confirmed_at = now() WHERE id = $1",
        id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn touch(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces a subscriber's topics: the old set goes, the new set goes in.
async fn replace_topics(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    topics: &[String],
) -> Result<(), StoreError> {
    delete_topics(tx, id).await?;
    insert_topics(tx, &vec![id; topics.len()], topics).await
}

async fn delete_topics(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<(), StoreError> {
    sqlx::query!("DELETE FROM subscriber_topics WHERE subscriber_id = $1", id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Gives `subscriber_ids[i]` the topic `topics[i]`, for every `i`.
pub(crate) async fn insert_topics(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_ids: &[i64],
    topics: &[String],
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO subscriber_topics (subscriber_id, topic)
         SELECT * FROM UNNEST($1::bigint[], $2::text[])",
        subscriber_ids,
        topics
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
