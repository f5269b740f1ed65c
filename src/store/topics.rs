//! The topics subscribers choose from, as stored. The migration seeds the four of the sign-up
//! box; `topics add` adds more. Topic slugs given on the command line or in an import file are
//! parsed against this catalog, so an unknown topic never reaches a statement.

use sqlx::{PgConnection, Postgres, Transaction};

use super::{Store, StoreError};
use crate::content::{TopicCatalog, TopicInfo};

/// A stored topic with how many active subscribers chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTopic {
    pub info: TopicInfo,
    pub sort_order: i32,
    pub active_subscribers: i64,
}

impl Store {
    /// In the order the sign-up box lists them.
    pub async fn topics(&self) -> Result<Vec<StoredTopic>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        list(&mut conn).await
    }

    /// The stored topics as a catalog to parse slugs with.
    pub async fn topic_catalog(&self) -> Result<TopicCatalog, StoreError> {
        let mut conn = self.pool.acquire().await?;
        catalog(&mut conn).await
    }

    /// Adds a topic after the others, or at `sort_order`.
    pub async fn add_topic(
        &self,
        topic: &TopicInfo,
        sort_order: Option<i32>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut all = catalog(&mut tx).await?.info().to_vec();
        if all.iter().any(|t| t.slug == topic.slug) {
            return Err(StoreError::TopicExists(topic.slug.clone()));
        }
        all.push(topic.clone());
        // The same rules as topics in lscp-mail.toml.
        TopicCatalog::new(all)?;
        insert(&mut tx, topic, sort_order).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The topics alone, without `list`'s count of readers: every sign-up and preferences page
/// asks for this.
pub(crate) async fn catalog(conn: &mut PgConnection) -> Result<TopicCatalog, StoreError> {
    let infos = sqlx::query_as!(
        TopicInfo,
        "SELECT slug, name, description FROM topics ORDER BY sort_order, slug"
    )
    .fetch_all(conn)
    .await?;
    Ok(TopicCatalog::new(infos)?)
}

async fn list(conn: &mut PgConnection) -> Result<Vec<StoredTopic>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT t.slug, t.name, t.description, t.sort_order,
                  (SELECT count(*) FROM subscriber_topics st JOIN subscribers s ON s.id = st.subscriber_id
                   WHERE st.topic = t.slug AND s.status = 'active') AS "active!"
           FROM topics t ORDER BY t.sort_order, t.slug"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredTopic {
            info: TopicInfo {
                slug: r.slug,
                name: r.name,
                description: r.description,
            },
            sort_order: r.sort_order,
            active_subscribers: r.active,
        })
        .collect())
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    topic: &TopicInfo,
    sort_order: Option<i32>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO topics (slug, name, description, sort_order)
         VALUES ($1, $2, $3, COALESCE($4, (SELECT COALESCE(max(sort_order), 0) + 10 FROM topics)))",
        topic.slug,
        topic.name,
        topic.description,
        sort_order
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
