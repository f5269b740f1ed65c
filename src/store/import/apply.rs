//! `Store::import` and `Store::import_csv`: one transaction that stages the rows and applies
//! them with a few set-based statements (duplicates dropped, those on record or erased kept,
//! pending sign-ups activated, the rest added), each change logged.

use std::path::Path;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Postgres, Transaction};

use super::bulk;
use super::read::open;
use super::report::KeptRows;
use super::staging::{Staging, create_staging, index_staging};
use super::{
    Activated, ImportError, ImportFile, ImportReport, KEPT_LISTED, Kept, KeptReason, Progress,
    RowIssue, RowProblem, Rows,
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
    plan_for_bulk(tx).await?;
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
    let mut kept_rows = KeptRows::new(KEPT_LISTED);
    kept(tx, status, &mut kept_rows).await?;
    let mut report = ImportReport {
        rows,
        problems,
        ..ImportReport::default()
    };
    if status == SubscriberStatus::Active {
        report.activated = activate(tx, &source).await?;
    }
    report.added = insert(tx, status, &source, &mut kept_rows).await?;
    (report.kept, report.unlisted) = kept_rows.finish();
    progress.advance(rows);
    progress.end();
    Ok(report)
}

/// For the rest of the transaction: no JIT compiling, which PostgreSQL chooses for these
/// statements (their costs are those of hundreds of thousands of rows) and which takes longer
/// than it saves on inserts; and sorts of that many rows in memory rather than on disk. Both
/// settings are any user's to set, and end with the transaction.
async fn plan_for_bulk(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::raw_sql("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'")
        .execute(&mut **tx)
        .await?;
    Ok(())
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
    kept: &mut KeptRows,
) -> Result<(), StoreError> {
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
    Ok(())
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
/// a log entry each; returns the lines added. One added meanwhile by someone else is kept as
/// already subscribed.
///
/// Four statements over a temporary table of the new rows rather than one chain of CTEs: the
/// rows get their ids first (from the subscribers' own sequence), so nothing is joined back on
/// the address from `RETURNING`, and the topics go in sorted by subscriber (their primary key
/// index is appended to, and each foreign-key check finds the row it locked a moment ago).
/// Measured, the split alone costs the database as much as the chain did; the sorting saves a
/// little, and each step shows in sqlx's slow-statement log on its own (BENCHMARKS.md).
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    source: &ConsentSource,
    kept: &mut KeptRows,
) -> Result<Vec<u64>, StoreError> {
    let new = new_rows(tx).await?;
    let set_aside = bulk::set_aside(tx, new).await?;
    // Set aside, the keys' tables are this transaction's alone: whoever was added since
    // `import_new` was made is on record already, and nobody else can be added meanwhile.
    let raced = match set_aside {
        Some(_) => {
            let raced = added_since(tx).await?;
            add_subscribers_alone(tx, status).await?;
            raced
        }
        None => add_subscribers(tx, status).try_collect().await?,
    };
    for (line, email) in raced {
        kept.push(Kept {
            line: line as u64,
            email,
            reason: KeptReason::AlreadySubscribed(status),
        });
    }
    add_topics(tx).await?;
    log_added(tx, status, source).await?;
    if let Some(set_aside) = set_aside {
        set_aside.put_back(tx).await?;
    }
    added_lines(tx).await
}

/// `import_new`: the staged rows to add, each with the id it will have; returns how many.
/// The sequence is looked up once, not for each row (which took a third of a second for
/// 100,000 rows).
async fn new_rows(tx: &mut Transaction<'_, Postgres>) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "CREATE TEMPORARY TABLE import_new ON COMMIT DROP AS
         SELECT nextval((SELECT pg_get_serial_sequence('subscribers', 'id')::regclass)) AS id,
                r.line, r.email, r.normalised, r.name, r.organisation, r.topics,
                r.link_id, r.link_secret
         FROM import_rows r
         WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email_normalised = r.normalised)
           AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.email_hmac = r.tombstone)
         ORDER BY r.line",
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts the new subscribers with the ids drawn for them; one whose address someone else
/// added since (a sign-up on the web) is left out of `import_new` and returned (line, email).
fn add_subscribers<'t>(
    tx: &'t mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
) -> futures_util::stream::BoxStream<'t, Result<(i64, String), sqlx::Error>> {
    sqlx::query_as(
        "WITH added AS (
             INSERT INTO subscribers
                 (id, email, email_normalised, name, organisation, status, link_id, link_secret)
             OVERRIDING SYSTEM VALUE
             SELECT id, email, normalised, name, organisation, $1, link_id, link_secret
             FROM import_new ORDER BY id
             ON CONFLICT (email_normalised) DO NOTHING
             RETURNING id
         )
         DELETE FROM import_new n WHERE NOT EXISTS (SELECT 1 FROM added a WHERE a.id = n.id)
         RETURNING n.line, n.email",
    )
    .bind(status.as_str())
    .fetch(&mut **tx)
}

/// The rows of `import_new` someone else added since (a sign-up on the web), taken out of it
/// and returned (line, email).
async fn added_since(tx: &mut Transaction<'_, Postgres>) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "DELETE FROM import_new n USING subscribers s
         WHERE s.email_normalised = n.normalised
         RETURNING n.line, n.email",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Inserts the new subscribers with the ids drawn for them, when nobody else can add one
/// meanwhile (the table is the import's alone): no conflict to look out for.
async fn add_subscribers_alone(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscribers
             (id, email, email_normalised, name, organisation, status, link_id, link_secret)
         OVERRIDING SYSTEM VALUE
         SELECT id, email, normalised, name, organisation, $1, link_id, link_secret
         FROM import_new ORDER BY id",
    )
    .bind(status.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn add_topics(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscriber_topics (subscriber_id, topic)
         SELECT id, unnest(topics) FROM import_new ORDER BY 1, 2",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn log_added(
    tx: &mut Transaction<'_, Postgres>,
    status: SubscriberStatus,
    source: &ConsentSource,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consent_log (subscriber_id, action, source, detail)
         SELECT id, 'subscribed', $2,
                jsonb_build_object('status', $1::text, 'topics', to_jsonb(topics), 'line', line)
         FROM import_new ORDER BY line",
    )
    .bind(status.as_str())
    .bind(source.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The lines added, in file order.
async fn added_lines(tx: &mut Transaction<'_, Postgres>) -> Result<Vec<u64>, StoreError> {
    let mut lines =
        sqlx::query_scalar::<_, i64>("SELECT line FROM import_new ORDER BY line").fetch(&mut **tx);
    let mut added = Vec::new();
    while let Some(line) = lines.try_next().await? {
        added.push(line as u64);
    }
    Ok(added)
}
