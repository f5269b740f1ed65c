//! The test's own subscribers: each `#[sqlx::test]` gets a fresh, migrated database on the
//! server in DATABASE_URL (`eval "$(scripts/test --only-services)"` sets it).

use std::path::{Path, PathBuf};

use lscp_mail::content::{TopicCatalog, TopicSet};
use lscp_mail::store::import::{ImportFile, ImportReport, Silent};
use lscp_mail::store::{DisplayName, NewSubscriber, Store, SubscriberEmail, SubscriberStatus};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub fn example_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("subscribers/example.csv")
}

/// Writes `content` to `name` in `dir`.
pub fn csv(dir: &tempfile::TempDir, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write the test file");
    path
}

pub fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).expect("a valid address")
}

pub fn topics(catalog: &TopicCatalog, list: &str) -> TopicSet {
    catalog.parse_list(list).expect("known topics")
}

pub async fn add(store: &Store, address: &str, list: &str) {
    let catalog = store.topic_catalog().await.expect("topics");
    let new = NewSubscriber {
        email: email(address),
        name: DisplayName::parse("Test Practitioner").expect("valid"),
        organisation: None,
        topics: topics(&catalog, list),
    };
    store
        .add_subscriber(
            &new,
            SubscriberStatus::Active,
            &lscp_mail::store::ConsentSource::Cli,
            false,
        )
        .await
        .expect("added");
}

/// Reads `path` with every topic as the default, then imports it.
pub async fn import(store: &Store, path: &Path) -> (ImportFile, ImportReport) {
    let catalog = store.topic_catalog().await.expect("topics");
    let file = ImportFile::read(path, &catalog, &catalog.all(), &Silent).expect("readable");
    let report = store
        .import(&file, SubscriberStatus::Active, &Silent)
        .await
        .expect("imported");
    (file, report)
}

/// Row counts of every table an import or a change writes to: equal counts before and after
/// show nothing was written.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    pub subscribers: i64,
    pub topics: i64,
    pub log: i64,
    pub erasures: i64,
}

pub async fn counts(pool: &PgPool) -> Counts {
    let c = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM subscribers) AS "subscribers!",
                  (SELECT count(*) FROM subscriber_topics) AS "topics!",
                  (SELECT count(*) FROM consent_log) AS "log!",
                  (SELECT count(*) FROM erasures) AS "erasures!""#
    )
    .fetch_one(pool)
    .await
    .expect("count");
    Counts {
        subscribers: c.subscribers,
        topics: c.topics,
        log: c.log,
        erasures: c.erasures,
    }
}

pub const NOTHING: Counts = Counts {
    subscribers: 0,
    topics: 0,
    log: 0,
    erasures: 0,
};

/// The test's own database: a pool for the test, and its URL for running the binary.
pub async fn database(pool_options: PgPoolOptions, options: PgConnectOptions) -> (PgPool, String) {
    let url = url_of(&options);
    let pool = pool_options.connect_with(options).await.expect("connect");
    (pool, url)
}

/// The URL of the test's own database, for running the binary against it.
pub fn url_of(options: &PgConnectOptions) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path(
        options
            .get_database()
            .expect("the test database has a name"),
    );
    url.to_string()
}

/// Every place in the schema where `needle` appears (any case), as `table.column`: each column
/// of each table, whatever its type, read as text. Found from information_schema, so that a
/// table added later is searched too.
pub async fn where_found(pool: &PgPool, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         JOIN information_schema.tables USING (table_schema, table_name)
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("the schema's columns");
    assert!(columns.len() > 20, "the schema was read: {columns:?}");
    let mut found = Vec::new();
    for (table, column) in columns {
        // Names come from the catalogue, quoted as identifiers; the needle is a parameter.
        let sql = format!(
            "SELECT count(*) FROM \"{}\" WHERE \"{}\"::text ILIKE '%' || $1 || '%'",
            table.replace('"', "\"\""),
            column.replace('"', "\"\"")
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(pool)
            .await
            .expect("searched");
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}
