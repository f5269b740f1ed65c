use std::process::ExitCode;

use super::output::escape_controls;
use super::{code, exit};
use crate::config::Config;
use crate::content::topic::TopicError;
use crate::store::{ImportError, Store, StoreError};

/// Set up the subscriber database
///
/// The database is DATABASE_URL, else `database_url` in lscp-mail.toml. Commands that use it
/// apply pending migrations themselves before they start, so `db migrate` is only needed to
/// create the database or to upgrade the schema ahead of time.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail db migrate\n  \
DATABASE_URL=postgres://postgres@127.0.0.1:5432/lscp_mail lscp-mail db migrate\n\n\
Exit codes: 0 done, 3 could not connect or migrate.")]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Create the database when it does not exist, then apply the migrations not yet applied
    #[command(after_help = "Examples:\n  lscp-mail db migrate\n  \
DATABASE_URL=postgres://postgres@127.0.0.1:5432/lscp_mail lscp-mail db migrate\n\n\
Prints each migration applied and the schema's version. Running it again changes nothing.\n\
Exit codes: 0 done, 3 could not connect or migrate.")]
    Migrate,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        match self.command {
            DbCommand::Migrate => runtime()?.block_on(async {
                if Store::create_database(config).await? {
                    outln!("created the database")?;
                }
                let store = Store::connect(config).await?;
                let migrated = store.migrate().await?;
                for m in &migrated.applied {
                    outln!("applied migration {m}")?;
                }
                match migrated.version {
                    Some(v) if migrated.applied.is_empty() => {
                        outln!("the schema is up to date (version {v})")?
                    }
                    Some(v) => outln!("the schema is now at version {v}")?,
                    None => outln!("there are no migrations")?,
                }
                Ok(code(exit::OK))
            }),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `f` against the configured database with its schema brought up to date first. Errors
/// the user can fix by asking differently (an unknown address, a bad file) are reported here
/// with exit code 1; the rest go up to `main` (exit code 3).
pub(super) fn with_store(
    config: &Config,
    f: impl AsyncFnOnce(&Store) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let result = runtime()?.block_on(async {
        let store = Store::connect(config).await?;
        store.migrate().await?;
        f(&store).await
    });
    match result {
        Err(e) if is_input_problem(&e) => {
            eprintln!("error: {}", escape_controls(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", escape_controls(&cause.to_string()));
            }
            Ok(code(exit::INPUT))
        }
        other => other,
    }
}

fn is_input_problem(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StoreError>()
        .is_some_and(StoreError::is_input_problem)
        || e.downcast_ref::<TopicError>().is_some()
        || e.downcast_ref::<ImportError>()
            .is_some_and(|e| !matches!(e, ImportError::Read { .. }))
}
