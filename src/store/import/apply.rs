//! `Store::import` and `Store::import_csv`: one transaction that stages the rows and applies
//! them with a few set-based statements (duplicates dropped, those on record or erased kept,
//! pending sign-ups activated, the rest added), each change logged.

use std::path::Path;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Postgres, Transaction};

use super::read::open;
use super::staging::{Staging, create_staging, index_staging};
use super::{
    Activated, ImportError, ImportFile, ImportReport, Kept, KeptReason, Progress, RowIssue,
    RowProblem, Rows,
};
use crate::content::{TopicCatalog, TopicSet};
use crate::store::consent::ConsentSource;
use crate::store::erase;
use crate::store::subscriber::SubscriberStatus;
use crate::store::{Store, StoreError};

impl Store {
    /// Writes the checked rows of `file` in one transaction: all of them or, on failure, none.
    pub async fn import(
        &self,
        file: &ImportFile,
        status: SubscriberStatus,
        progress: &dyn Progress,
    ) -> Result<ImportReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let key = erase::key(&mut tx).await?;
        create_staging(&mut tx).await?;
        let mut staging = Staging::start(&mut tx, key).await?;
        for row in &file.rows {
            staging.push(row).await?;
        }
        staging.finish().await?;
        let rows = (file.rows.len() + file.problems.len()) as u64;
        let report = apply(&mut tx, status, &file.path, rows, Vec::new(), progress).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Streams the CSV file at `path` into PostgreSQL (COPY into a temporary table) and applies
    /// it with a few set-based statements, in one transaction: all of it or, on failure,
    /// nothing. The rows' problems, duplicates included, are in the report's `problems`.
    pub async fn import_csv(
        &self,
        path: &Path,
        catalog: &TopicCatalog,
        default_topics: &TopicSet,
        status: SubscriberStatus,
        progress: &dyn Progress,
    ) -> Result<ImportReport, ImportFailure> {
        let mut rows = Rows::new(path, open(path)?, catalog, default_topics)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let key = erase::key(&mut tx).await?;
        create_staging(&mut tx).await?;
        let mut staging = Staging::start(&mut tx, key).await?;
        let (mut count, mut problems) = (0, Vec::new());
        progress.begin("reading", rows.size);
        // An unreadable row ends the import here: the transaction is dropped, nothing written.
        while let Some((line, checked)) = rows.next_row(progress)? {
            count += 1;
            match checked {
                Ok(row) => staging.push(&row).await?,
                Err(problem) => problems.push(RowIssue { line, problem }),
            }
        }
        staging.finish().await?;
        progress.end();
        let report = apply(&mut tx, status, path, count, problems, progress).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(report)
    }
}

/// Why `import_csv` imported nothing: the file, or the database.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies the staged rows: drops duplicates, reports who is kept and why, activates pending
/// sign-ups (when importing as active) and adds the rest, each with topics and a log entry.
async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    path: &Path,
    rows: u64,
    mut problems: Vec<RowIssue>,
    progress: &dyn Progress,
) -> Result<ImportReport, StoreError> {
    progress.begin("writing", rows);
    let source = ConsentSource::import(path);
    index_staging(tx).await?;
    for (line, first_line) in drop_duplicates(tx).await? {
        problems.push(RowIssue {
            line: line as u64,
            problem: RowProblem::Duplicate {
                first_line: first_line as u64,
            },
        });
    }
    problems.sort_by_key(|p| p.line);
    let mut report = ImportReport {
        rows,
        problems,
        kept: kept(tx, status).await?,
        ..ImportReport::default()
    };
    if status == SubscriberStatus::Active {
        report.activated = activate(tx, &source).await?;
    }
    insert(tx, status, &source, &mut report).await?;
    progress.advance(rows);
    progress.end();
    report.kept.sort_by_key(|k| k.line);
    Ok(report)
}

// The statements below work on `import_rows`, a temporary table of this transaction: sqlx's
// macros cannot check them against the schema, so they are plain queries, typed by hand.

/// Removes every row whose address (ignoring case) an earlier line has; returns (line, first
/// line) of each.
async fn drop_duplicates(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "WITH firsts AS (
             SELECT line, min(line) OVER (PARTITION BY normalised) AS first_line FROM import_rows
         )
         DELETE FROM import_rows r USING firsts f
         WHERE r.line = f.line AND f.first_line <> f.line
         RETURNING r.line, f.first_line",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The rows left as they are: on record already (other than a pending sign-up an active
/// import confirms), or erased.
async fn kept(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
) -> Result<Vec<Kept>, StoreError> {
    let mut rows = sqlx::query_as::<_, (i64, String, Option<String>, Option<DateTime<Utc>>)>(
        "SELECT r.line, r.email, s.status, NULL::timestamptz
         FROM import_rows r JOIN subscribers s ON s.email_normalised = r.normalised
         WHERE NOT (s.status = 'pending' AND $1 = 'active')
         UNION ALL
         SELECT r.line, r.email, NULL, e.erased_at
         FROM import_rows r JOIN erasures e ON e.email_hmac = r.tombstone
         WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email_normalised = r.normalised)",
    )
    .bind(status.as_str())
    .fetch(&mut **tx);
    let mut kept = Vec::new();
    while let Some((line, email, on_record, erased_at)) = rows.try_next().await? {
        let reason = match (on_record, erased_at) {
            (Some(s), _) => match SubscriberStatus::from_store(&s)? {
                s if s.has_left() => KeptReason::HasLeft(s),
                s => KeptReason::AlreadySubscribed(s),
            },
            (None, Some(at)) => KeptReason::Erased(at),
            (None, None) => return Err(StoreError::Corrupt("a kept row without a reason".into())),
        };
        kept.push(Kept {
            line: line as u64,
            email,
            reason,
        });
    }
    Ok(kept)
}

/// Makes the staged addresses that signed up without confirming active, with the file's
/// topics (and its name and organisation where it has them), each logged as subscribed by
/// this import; returns them in file order.
async fn activate(
    tx: &mut Transaction<'_, Postgres>,
    source: &ConsentSource,
) -> Result<Vec<Activated>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "WITH act AS (
             UPDATE subscribers s
             SET status = 'active', updated_at = now(),
                 name = COALESCE(r.name, s.name),
                 organisation = COALESCE(r.organisation, s.organisation)
             FROM import_rows r
             WHERE s.email_normalised = r.normalised AND s.status = 'pending'
             RETURNING s.id, r.line, r.email, r.topics
         ), gone AS (
             DELETE FROM subscriber_topics t USING act
             WHERE t.subscriber_id = act.id AND t.topic <> ALL (act.topics)
         ), topics AS (
             INSERT INTO subscriber_topics (subscriber_id, topic)
             SELECT act.id, unnest(act.topics) FROM act
             ON CONFLICT DO NOTHING
         ), logged AS (
             INSERT INTO consent_log (subscriber_id, action, source, detail)
             SELECT id, 'subscribed', $1,
                    jsonb_build_object('status', 'active', 'previous_status', 'pending',
                                       'topics', to_jsonb(topics), 'line', line)
             FROM act ORDER BY line
         )
         SELECT line, email FROM act ORDER BY line",
    )
    .bind(source.to_string())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(line, email)| Activated {
            line: line as u64,
            email,
        })
        .collect())
}

/// Adds the staged rows nobody has on record and no tombstone matches, with their topics and
/// a log entry each. One added meanwhile by someone else is kept as already subscribed.
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    source: &ConsentSource,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let mut rows = sqlx::query_as::<_, (i64, Option<String>)>(
        "WITH candidates AS MATERIALIZED (
             SELECT r.* FROM import_rows r
             WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email_normalised = r.normalised)
               AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.email_hmac = r.tombstone)
         ), added AS (
             INSERT INTO subscribers
                 (email, email_normalised, name, organisation, status, link_id, link_secret)
             SELECT email, normalised, name, organisation, $1, link_id, link_secret
             FROM candidates ORDER BY line
             ON CONFLICT (email_normalised) DO NOTHING
             RETURNING id, email_normalised
         ), joined AS (
             SELECT a.id, c.line, c.topics
             FROM added a JOIN candidates c ON c.normalised = a.email_normalised
         ), topics AS (
             INSERT INTO subscriber_topics (subscriber_id, topic)
             SELECT id, unnest(topics) FROM joined
         ), logged AS (
             INSERT INTO consent_log (subscriber_id, action, source, detail)
             SELECT id, 'subscribed', $2,
                    jsonb_build_object('status', $1::text, 'topics', to_jsonb(topics), 'line', line)
             FROM joined ORDER BY line
         )
         SELECT c.line, CASE WHEN a.id IS NULL THEN c.email END
         FROM candidates c LEFT JOIN added a ON a.email_normalised = c.normalised
         ORDER BY c.line",
    )
    .bind(status.as_str())
    .bind(source.to_string())
    .fetch(&mut **tx);
    while let Some((line, not_added)) = rows.try_next().await? {
        match not_added {
            None => report.added.push(line as u64),
            Some(email) => report.kept.push(Kept {
                line: line as u64,
                email,
                reason: KeptReason::AlreadySubscribed(status),
            }),
        }
    }
    Ok(())
}
