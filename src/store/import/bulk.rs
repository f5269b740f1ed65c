//! Large imports: while the new rows go in, the foreign keys and plain indexes of the tables
//! they are added to (`subscriber_topics`, `consent_log`) are set aside, and put back at the
//! end, each foreign key checked over the whole table in one pass and each index built in one
//! sort. Row by row, PostgreSQL runs a query per new row and foreign key: for 100,000
//! practitioners that was 550,000 queries, over half the import's time (BENCHMARKS.md).
//!
//! This is what `pg_restore` and bulk loaders do, and it is done only where it pays and harms
//! nobody for long: at least [`BULK_MIN_ROWS`] rows to add, at least as many as the
//! subscribers already on record (so the one-pass checks and index builds cost less than the
//! rows would), and a database user who owns the tables (as the one that ran the migrations
//! does). It stays inside the import's one transaction, so a failed import puts everything
//! back as it was; and if a new row broke a foreign key, putting the key back fails, and with
//! it the import. The cost: from the set-aside to the commit, the import holds these tables
//! (and `subscribers` and `topics`, which the keys point to) for itself, so web pages and
//! senders wait for those seconds (docs/subscribers.md).

use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::store::StoreError;

/// Fewer new rows than this are added row by row, checks and all.
pub const BULK_MIN_ROWS: u64 = 10_000;

/// The tables a large import adds rows to, whose foreign keys and plain indexes it sets aside.
const ADDED_TO: [&str; 2] = ["subscriber_topics", "consent_log"];

/// The foreign keys and indexes set aside: the statements that put them back, indexes first.
#[must_use = "what was set aside must be put back"]
pub(super) struct SetAside {
    restore: Vec<String>,
}

/// Whether adding `new_rows` rows goes the bulk way: enough of them, and no fewer than the
/// subscribers on record.
pub(super) fn worth_it(new_rows: u64, on_record: u64) -> bool {
    new_rows >= BULK_MIN_ROWS && new_rows >= on_record
}

/// Sets aside the foreign keys and plain indexes of the tables the new rows go into, when
/// adding `new_rows` is worth it and this user may; `None` when the rows go in one by one.
pub(super) async fn set_aside(
    tx: &mut Transaction<'_, Postgres>,
    new_rows: u64,
) -> Result<Option<SetAside>, StoreError> {
    // Not worth it even into an empty list: no need to ask the database.
    if !worth_it(new_rows, 0) {
        return Ok(None);
    }
    let (on_record, owner): (i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM subscribers),
                (SELECT bool_and(pg_has_role(current_user, c.relowner, 'USAGE'))
                 FROM pg_class c
                 WHERE c.oid = ANY ($1::text[]::regclass[])
                    OR c.oid IN (SELECT confrelid FROM pg_constraint
                                 WHERE contype = 'f' AND conrelid = ANY ($1::text[]::regclass[])))",
    )
    .bind(ADDED_TO)
    .fetch_one(&mut **tx)
    .await?;
    if !owner || !worth_it(new_rows, on_record.max(0) as u64) {
        return Ok(None);
    }
    // Each foreign key and index as PostgreSQL itself writes it out, so that what is put back
    // is what the migrations made, whatever they make in future; the indexes first, so that
    // they are built before the keys are checked.
    let statements: Vec<(String, String)> = sqlx::query_as(
        "SELECT set_aside, put_back FROM (
             SELECT 0 AS step, format('DROP INDEX %s', i.indexrelid::regclass) AS set_aside,
                    pg_get_indexdef(i.indexrelid) AS put_back
             FROM pg_index i
             WHERE i.indrelid = ANY ($1::text[]::regclass[]) AND NOT i.indisunique
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
             UNION ALL
             SELECT 1, format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
                    format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                           pg_get_constraintdef(oid))
             FROM pg_constraint
             WHERE contype = 'f' AND conrelid = ANY ($1::text[]::regclass[])
         ) s ORDER BY step",
    )
    .bind(ADDED_TO)
    .fetch_all(&mut **tx)
    .await?;
    let mut restore = Vec::with_capacity(statements.len());
    for (drop, put_back) in statements {
        // Written by PostgreSQL from its catalog, names quoted by `format` and `regclass`.
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&mut **tx)
            .await?;
        restore.push(put_back);
    }
    tracing::info!(
        new_rows,
        on_record,
        set_aside = restore.len(),
        "large import: foreign keys and indexes set aside while the rows go in"
    );
    Ok(Some(SetAside { restore }))
}

impl SetAside {
    /// Puts back what was set aside: the indexes first, built in one sort each, then the
    /// foreign keys, each checked over its whole table (an error if a row breaks it). The
    /// planner then gets fresh statistics for the tables that grew.
    pub(super) async fn put_back(
        self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), StoreError> {
        sqlx::raw_sql("SET LOCAL maintenance_work_mem = '128MB'")
            .execute(&mut **tx)
            .await?;
        for statement in self.restore {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut **tx)
                .await?;
        }
        sqlx::raw_sql("ANALYZE subscribers (id, status), subscriber_topics")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_new_rows_go_in_one_by_one() {
        assert!(!worth_it(BULK_MIN_ROWS - 1, 0));
    }

    #[test]
    fn many_new_rows_into_a_short_list_go_the_bulk_way() {
        assert!(worth_it(BULK_MIN_ROWS, 0));
        assert!(worth_it(100_000, 100_000));
    }

    #[test]
    fn many_new_rows_into_a_longer_list_go_in_one_by_one() {
        assert!(!worth_it(100_000, 100_001));
    }
}
