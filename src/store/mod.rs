//! Subscribers, their topics and the consent log, in PostgreSQL.
//!
//! The database is `DATABASE_URL`, else `database_url` in `lscp-mail.toml`. The schema is the
//! migrations in `migrations/`, embedded in the binary: `lscp-mail db migrate` applies them,
//! and every command that uses the database applies any that are pending before it starts, so
//! an upgraded binary never runs against an old schema.
//!
//! One module per job: [`email`] (the address newtype), [`name`] (names and organisations),
//! [`subscriber`] (status, read model, changes), [`topics`], [`bounce`]
//! (what comes back: bounces, complaints, emailed unsubscribes), [`consent`] (the log), [`token`]
//! (link secrets), [`images`] (an issue's published images), [`erase`] (forgetting with a
//! tombstone), [`import`] and [`export`] (CSV), and for `serve`: [`signup`] (confirmation
//! links), [`web_key`] (the form key) and [`archive`] (which issues were sent); for `send`:
//! [`ledger`] (campaigns and deliveries), [`pace`] (the shared token bucket) and [`sender`] (a
//! running sender's own connection: its lock and its `LISTEN`).
//! Each SQL statement is one small function next to its caller; writes take the `Transaction`
//! they belong to. The pool stays in here: the rest of the crate calls `Store`'s methods, and a
//! unit of work of several statements is one method with its transaction inside.

pub mod archive;
pub mod bounce;
pub mod consent;
pub mod email;
pub mod erase;
pub mod export;
pub mod images;
pub mod import;
pub mod ledger;
pub mod name;
pub mod pace;
pub mod sender;
pub mod signup;
pub mod subscriber;
pub mod token;
pub mod topics;
pub mod web_key;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

pub use consent::{ConsentAction, ConsentEntry, ConsentSource};
pub use email::{EmailError, SubscriberEmail, ascii_domain, redact_addresses};
pub use erase::Erasure;
pub use images::StoredImage;
pub use import::{ImportError, ImportFailure, ImportFile, ImportReport};
pub use name::{DisplayName, NameError};
pub use subscriber::{
    Added, Change, NewSubscriber, Subscriber, SubscriberFilter, SubscriberId, SubscriberStatus,
};
pub use token::{BadLink, LinkToken};
pub use topics::StoredTopic;

use crate::config::{Config, redact_url};
use crate::content::topic::TopicError;

static MIGRATOR: Migrator = sqlx::migrate!();

/// How long to wait for the server before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no database is configured: set DATABASE_URL or `database_url` in lscp-mail.toml, \
         such as postgres://postgres@127.0.0.1:5432/lscp_mail"
    )]
    NoDatabase,
    #[error("the database URL {url} is not valid")]
    BadUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot connect to the {place} ({setting} is {url}): is PostgreSQL running on that \
         host and port, and does it accept connections from here? If that is not the database \
         meant, correct {setting}"
    )]
    Connect {
        url: String,
        /// "database `news` on db.internal:5432": the configured one, never another.
        place: String,
        /// Where the URL came from: DATABASE_URL or the settings file.
        setting: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database at {url} does not exist: `lscp-mail db migrate` creates it")]
    NoSuchDatabase { url: String },
    #[error("cannot bring the database schema up to date")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no subscriber has the address {0}")]
    NotFound(String),
    #[error("{email} is already subscribed ({status})")]
    AlreadySubscribed {
        email: String,
        status: SubscriberStatus,
    },
    #[error(
        "{email} is {status}: only they can ask to come back (then add them with --resubscribe)"
    )]
    HasLeft {
        email: String,
        status: SubscriberStatus,
    },
    #[error(
        "this address was erased at the practitioner's request on {}: add it again only if \
         they ask to subscribe (with --resubscribe)",
        erased_at.format("%Y-%m-%d")
    )]
    Erased { erased_at: DateTime<Utc> },
    #[error("{email} is {status}, not awaiting confirmation")]
    NotPending {
        email: String,
        status: SubscriberStatus,
    },
    #[error("{email} is {status}, not bounced: only a bounced reader can be reactivated")]
    NotBounced {
        email: String,
        status: SubscriberStatus,
    },
    #[error(transparent)]
    BadLink(#[from] BadLink),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("the topic `{0}` exists already")]
    TopicExists(String),
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
    #[error("the database holds something this version does not understand: {0}")]
    Corrupt(String),
    #[error("database error")]
    Sql(#[from] sqlx::Error),
}

impl StoreError {
    /// True when the command line or the input, not the system, is at fault: the caller can
    /// fix it by asking differently (exit code 1 rather than 3).
    pub fn is_input_problem(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_)
                | Self::AlreadySubscribed { .. }
                | Self::HasLeft { .. }
                | Self::Erased { .. }
                | Self::NotPending { .. }
                | Self::NotBounced { .. }
                | Self::BadLink(_)
                | Self::Topic(_)
                | Self::TopicExists(_)
        )
    }
}

/// The subscriber database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Descriptions of the migrations applied now, oldest first.
    pub applied: Vec<String>,
    /// The schema version now in force.
    pub version: Option<i64>,
}

impl Store {
    /// Connects to the configured database; it must exist (`create_database` makes it).
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        let (url, options) = options(config)?;
        // One connection first, for a prompt and specific error; then the pool.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        match first {
            Ok(conn) => conn.close().await?,
            Err(e) if is_missing_database(&e) => return Err(StoreError::NoSuchDatabase { url }),
            Err(source) => {
                return Err(StoreError::Connect {
                    url,
                    place: place(&options),
                    setting: setting(),
                    source,
                });
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// Creates the configured database when it does not exist; true when it did not.
    pub async fn create_database(config: &Config) -> Result<bool, StoreError> {
        let (url, options) = options(config)?;
        let full = config
            .database_url
            .as_ref()
            .ok_or(StoreError::NoDatabase)?
            .expose_secret()
            .to_string();
        let connect = |source| StoreError::Connect {
            url: url.clone(),
            place: place(&options),
            setting: setting(),
            source,
        };
        if Postgres::database_exists(&full).await.map_err(connect)? {
            return Ok(false);
        }
        Postgres::create_database(&full).await.map_err(connect)?;
        Ok(true)
    }

    /// For tests and for embedding: a store over an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// For health checks: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar!(r#"SELECT 1 AS "one!""#)
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// "database `news` on db.internal:5432", for messages about this store's database.
    pub fn place(&self) -> String {
        place(&self.pool.connect_options())
    }

    /// Applies the migrations not yet applied. Safe to run concurrently: one waits for the
    /// other.
    pub async fn migrate(&self) -> Result<Migrated, StoreError> {
        let before = self.applied_versions().await?;
        MIGRATOR.run(&self.pool).await?;
        let after = self.applied_versions().await?;
        Ok(Migrated {
            applied: MIGRATOR
                .iter()
                .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
                .map(|m| format!("{} {}", m.version, m.description))
                .collect(),
            version: after.iter().max().copied(),
        })
    }

    /// The migrations this build has that the database has not applied, without creating or
    /// changing anything (for `doctor`).
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        use sqlx::migrate::Migrate;
        let mut conn = self.pool.acquire().await?;
        let applied: Vec<i64> = match conn.list_applied_migrations("_sqlx_migrations").await {
            Ok(list) => list.into_iter().map(|m| m.version).collect(),
            // No migrations table: nothing was ever applied.
            Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some("42P01") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        Ok(MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        use sqlx::migrate::Migrate;
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table("_sqlx_migrations").await?;
        Ok(conn
            .list_applied_migrations("_sqlx_migrations")
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect())
    }
}

/// The redacted URL for messages, and the connect options.
fn options(config: &Config) -> Result<(String, PgConnectOptions), StoreError> {
    let secret = config.database_url.as_ref().ok_or(StoreError::NoDatabase)?;
    let url = redact_url(secret.expose_secret());
    let options = PgConnectOptions::from_str(secret.expose_secret())
        .map_err(|source| StoreError::BadUrl {
            url: url.clone(),
            source,
        })?
        .application_name("lscp-mail");
    let sslmode_given =
        has_sslmode(secret.expose_secret()) || std::env::var_os("PGSSLMODE").is_some();
    Ok((url, without_tls_on_loopback(options, sslmode_given)))
}

/// Whether the URL names its own `sslmode` (or `ssl-mode`, which sqlx also reads).
fn has_sslmode(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    })
}

/// A database on this machine (`localhost`, `127.0.0.1`, `::1`) is reached without TLS unless
/// the URL or `PGSSLMODE` asks for a mode: TLS over loopback protects nothing (whoever can read
/// that traffic can read the server's files), and each connection's handshake costs about
/// 90 ms here, because sqlx opens its socket without `TCP_NODELAY` (BENCHMARKS.md, Send). A
/// database elsewhere keeps sqlx's default, `prefer`, as libpq's.
fn without_tls_on_loopback(options: PgConnectOptions, sslmode_given: bool) -> PgConnectOptions {
    let host = options.get_host().trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback && !sslmode_given {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// "database `news` on db.internal:5432": the host and database the URL names, no secrets.
fn place(options: &PgConnectOptions) -> String {
    format!(
        "database `{}` on {}:{}",
        options.get_database().unwrap_or("(the user's default)"),
        options.get_host(),
        options.get_port()
    )
}

/// The setting the database URL came from: the environment wins over the settings file.
fn setting() -> &'static str {
    if std::env::var_os("DATABASE_URL").is_some() {
        "DATABASE_URL"
    } else {
        "`database_url` in the settings file"
    }
}

/// PostgreSQL's `invalid_catalog_name`: the database named in the URL does not exist.
fn is_missing_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "3D000")
}

/// A lost connection or a server going down, as opposed to a bad statement: what a long run
/// waits out rather than fails on.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // Class 08: connection exception; 57P0x: the server is shutting down or starting.
            c.starts_with("08") || c.starts_with("57P")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).expect("a database URL");
        without_tls_on_loopback(options, has_sslmode(url)).get_ssl_mode()
    }

    #[test]
    fn a_database_on_this_machine_is_reached_without_tls_unless_the_url_asks() {
        assert!(matches!(
            mode("postgres://news@127.0.0.1:5432/news"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://news@localhost/news"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://news@[::1]:5432/news"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://news@127.0.0.1/news?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://news@localhost/news?application_name=x&ssl-mode=verify-full"),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn a_database_elsewhere_keeps_the_default_of_tls_when_offered() {
        let url = "postgres://news@db.internal:5432/news";
        let default = PgConnectOptions::from_str(url)
            .expect("a URL")
            .get_ssl_mode();
        assert_eq!(
            std::mem::discriminant(&mode(url)),
            std::mem::discriminant(&default)
        );
        assert!(
            !matches!(mode(url), PgSslMode::Disable) || std::env::var_os("PGSSLMODE").is_some()
        );
    }
}
