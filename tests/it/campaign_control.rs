//! `pause`, `cancel` and `retry-failed` asked of a campaign in the wrong state: each says why
//! it will not, with exit code 1, and changes nothing; asked in the right state, each says what
//! it did.

use lscp_mail::store::Store;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::common::sending::{fast_options, send_with, shipped_issue};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::{add, database};
use crate::common::{Run, run_lscp_mail as lscp_mail};

/// Two readers, sent the shipped 2026-02 issue to the end.
async fn finished_campaign(pool: &PgPool) {
    let store = Store::from_pool(pool.clone());
    for reader in ["reader1@example.org", "reader2@example.org"] {
        add(&store, reader, "training,events").await;
    }
    let sink = SmtpSink::start(&[]);
    send_with(
        &store,
        &shipped_issue("2026-02"),
        sink.port,
        &fast_options(),
    )
    .await;
}

async fn status(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT status FROM campaigns")
        .fetch_one(pool)
        .await
        .expect("one campaign")
}

fn said(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

#[sqlx::test]
async fn a_finished_campaign_cannot_be_paused_or_cancelled(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    finished_campaign(&pool).await;

    let pause = lscp_mail(Some(&url), &["pause", "2026-02"]);
    assert_eq!(pause.code, 1, "{}", said(&pause));
    assert_eq!(pause.stderr, "error: 2026-02 is finished, not sending\n");

    let cancel = lscp_mail(Some(&url), &["cancel", "2026-02"]);
    assert_eq!(cancel.code, 1, "{}", said(&cancel));
    assert_eq!(cancel.stderr, "error: 2026-02 is already finished\n");
    assert_eq!(status(&pool).await, "finished");

    let retry = lscp_mail(Some(&url), &["retry-failed", "2026-02"]);
    assert_eq!(retry.code, 0, "{}", said(&retry));
    assert!(
        retry
            .stdout
            .starts_with("2026-02: 0 failed deliveries queued again"),
        "{}",
        said(&retry)
    );
    assert_eq!(
        status(&pool).await,
        "finished",
        "nothing to retry: still over"
    );
}

#[sqlx::test]
async fn a_cancelled_campaign_says_what_was_sent_and_takes_no_retries(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (pool, url) = database(pool_options, options).await;
    finished_campaign(&pool).await;
    sqlx::query("UPDATE campaigns SET status = 'paused'")
        .execute(&pool)
        .await
        .expect("paused");

    let cancel = lscp_mail(Some(&url), &["cancel", "issues/2026-02/"]);
    assert_eq!(cancel.code, 0, "{}", said(&cancel));
    assert_eq!(
        cancel.stdout,
        "2026-02: cancelled; 2 sent before, 0 will not be sent.\n"
    );
    assert_eq!(status(&pool).await, "cancelled");

    let retry = lscp_mail(Some(&url), &["retry-failed", "2026-02"]);
    assert_eq!(retry.code, 1, "{}", said(&retry));
    assert_eq!(retry.stderr, "error: 2026-02 was cancelled\n");

    let pause = lscp_mail(Some(&url), &["pause", "2026-02"]);
    assert_eq!(pause.code, 1, "{}", said(&pause));
    assert_eq!(pause.stderr, "error: 2026-02 is cancelled, not sending\n");
}
