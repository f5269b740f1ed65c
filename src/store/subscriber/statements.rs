//! The subscriber store's statements, one function each, behind the [`Store`](super::Store)
//! methods in `mod.rs`: reading subscribers with their topics, locking one, and writing a row,
//! its details and its topics.

use sqlx::{PgConnection, Postgres, Transaction};

use super::{NewSubscriber, Subscriber, SubscriberId, SubscriberStatus};
use crate::content::TopicSet;
use crate::store::StoreError;
use crate::store::email::SubscriberEmail;
use crate::store::name::DisplayName;
use crate::store::token::LinkKeys;

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

pub(super) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Which subscribers [`select`] reads; `None` is any.
#[derive(Default)]
pub(super) struct Select<'a> {
    pub(super) id: Option<SubscriberId>,
    pub(super) normalised: Option<&'a str>,
    pub(super) status: Option<SubscriberStatus>,
    /// Those with this topic.
    pub(super) topic: Option<&'a str>,
}

/// One subscriber, found by id or by address.
pub(crate) enum Key<'a> {
    Id(SubscriberId),
    /// The normalised address.
    Email(&'a str),
}

/// The one read of subscribers with their topics, in address order.
pub(super) async fn select(
    conn: &mut PgConnection,
    which: &Select<'_>,
) -> Result<Vec<Subscriber>, StoreError> {
    Ok(sqlx::query_as!(
        Subscriber,
        r#"SELECT s.id AS "id: SubscriberId", s.email AS "email: SubscriberEmail",
                  s.name AS "name: DisplayName", s.organisation AS "organisation: DisplayName",
                  s.status AS "status: SubscriberStatus",
                  s.created_at, s.updated_at, s.confirmed_at,
                  ARRAY(SELECT st.topic FROM subscriber_topics st JOIN topics t ON t.slug = st.topic
                        WHERE st.subscriber_id = s.id ORDER BY t.sort_order, t.slug) AS "topics!"
           FROM subscribers s
           WHERE ($1::bigint IS NULL OR s.id = $1)
             AND ($2::text IS NULL OR s.email_normalised = $2)
             AND ($3::text IS NULL OR s.status = $3)
             AND ($4::text IS NULL OR EXISTS (
                   SELECT 1 FROM subscriber_topics st WHERE st.subscriber_id = s.id AND st.topic = $4))
           ORDER BY s.email_normalised"#,
        which.id as Option<SubscriberId>,
        which.normalised,
        which.status as Option<SubscriberStatus>,
        which.topic,
    )
    .fetch_all(conn)
    .await?)
}

pub(crate) async fn one(
    conn: &mut PgConnection,
    key: Key<'_>,
) -> Result<Option<Subscriber>, StoreError> {
    let which = match key {
        Key::Id(id) => Select {
            id: Some(id),
            ..Select::default()
        },
        Key::Email(normalised) => Select {
            normalised: Some(normalised),
            ..Select::default()
        },
    };
    Ok(select(conn, &which).await?.pop())
}

pub(crate) async fn by_id(
    conn: &mut PgConnection,
    id: SubscriberId,
) -> Result<Subscriber, StoreError> {
    one(conn, Key::Id(id))
        .await?
        .ok_or(StoreError::Sql(sqlx::Error::RowNotFound))
}

pub(super) async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    normalised: &str,
) -> Result<Option<SubscriberId>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT id AS "id: SubscriberId" FROM subscribers WHERE email_normalised = $1 FOR UPDATE"#,
        normalised
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub(super) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewSubscriber,
    status: SubscriberStatus,
    keys: &LinkKeys,
) -> Result<SubscriberId, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO subscribers (email, email_normalised, name, organisation, status, link_id, link_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id AS "id: SubscriberId""#,
        new.email.as_str(),
        new.email.normalised(),
        new.name.as_ref().map(DisplayName::as_str),
        new.organisation.as_ref().map(DisplayName::as_str),
        status as SubscriberStatus,
        &keys.id,
        &keys.secret,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub(super) async fn set_details(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
    name: Option<&str>,
    organisation: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET name = $2, organisation = $3, updated_at = now() WHERE id = $1",
        id as SubscriberId,
        name,
        organisation
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What [`update_row`] changes besides `updated_at`, which it always sets.
#[derive(Default)]
pub(super) struct Update {
    pub(super) status: Option<SubscriberStatus>,
    /// Sets `confirmed_at`: the double opt-in is complete.
    pub(super) confirmed: bool,
}

impl Update {
    pub(super) fn status(status: SubscriberStatus) -> Self {
        Self {
            status: Some(status),
            confirmed: false,
        }
    }
}

pub(super) async fn update_row(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
    update: Update,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers
         SET status = COALESCE($2, status), updated_at = now(),
             confirmed_at = CASE WHEN $3 THEN now() ELSE confirmed_at END
         WHERE id = $1",
        id as SubscriberId,
        update.status as Option<SubscriberStatus>,
        update.confirmed
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces a subscriber's topics: the old set goes, the new set goes in.
pub(super) async fn replace_topics(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
    topics: &[String],
) -> Result<(), StoreError> {
    delete_topics(tx, id).await?;
    insert_topics(tx, &vec![id.0; topics.len()], topics).await
}

pub(super) async fn delete_topics(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM subscriber_topics WHERE subscriber_id = $1",
        id as SubscriberId
    )
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
