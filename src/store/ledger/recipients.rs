//! Recipients: who a delivery goes to, who would receive an issue now (`--dry-run`), and a
//! recipient marked bounced after a permanent failure.

use sqlx::{PgExecutor, PgPool};

use crate::content::{Topic, TopicSet};
use crate::store::subscriber::slugs;
use crate::store::{DisplayName, StoreError, SubscriberEmail, SubscriberId};

#[derive(Debug, Clone)]
pub struct Recipient {
    pub subscriber_id: SubscriberId,
    pub email: SubscriberEmail,
    pub name: Option<DisplayName>,
    pub link_id: Vec<u8>,
    pub link_secret: Vec<u8>,
}

/// Who would receive the issue now, without touching the ledger: for `--dry-run`.
pub async fn audience(
    db: impl PgExecutor<'_>,
    issue_topics: &TopicSet,
) -> Result<Vec<(Recipient, TopicSet)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT s.id AS "id: SubscriberId", s.email AS "email: SubscriberEmail",
                  s.name AS "name: DisplayName", s.link_id, s.link_secret, t.topics AS "topics!"
           FROM subscribers s
           CROSS JOIN LATERAL (
               SELECT coalesce(array_agg(st.topic ORDER BY st.topic), '{}') AS topics
               FROM subscriber_topics st
               WHERE st.subscriber_id = s.id AND st.topic = ANY($1)
           ) t
           WHERE s.status = 'active'
           ORDER BY s.id"#,
        &slugs(issue_topics)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                Recipient {
                    subscriber_id: r.id,
                    email: r.email,
                    name: r.name,
                    link_id: r.link_id,
                    link_secret: r.link_secret,
                },
                r.topics.into_iter().map(Topic::from_stored).collect(),
            )
        })
        .collect())
}

/// Marks a subscriber bounced after a 5.1.x reply. The consent log keeps the status code only:
/// the reply itself usually quotes the address, which the log must never hold.
pub async fn bounce(
    pool: &PgPool,
    subscriber_id: SubscriberId,
    status_code: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query!(
        r#"UPDATE subscribers SET status = 'bounced', updated_at = now()
           WHERE id = $1 AND status = 'active'"#,
        subscriber_id.get()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 1 {
        crate::store::consent::record(
            &mut tx,
            subscriber_id,
            crate::store::ConsentAction::Bounced,
            &crate::store::ConsentSource::Bounce,
            serde_json::json!({ "from": "active", "to": "bounced", "smtp_status": status_code }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
