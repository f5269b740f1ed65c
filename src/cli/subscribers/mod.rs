use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::db::with_store;
use super::output::OutputError;
use super::{UsageError, code, exit};
use crate::config::Config;
use crate::content::{TopicCatalog, TopicSet};
use crate::store::import::{KEPT_LISTED, KeptReason, Progress};
use crate::store::{
    ConsentSource, DisplayName, ImportFailure, NewSubscriber, Store, SubscriberEmail,
    SubscriberFilter, SubscriberStatus, export,
};

mod show;

use show::{plural, print_list, show, topics_text};

/// Manage the practitioners who receive the newsletter
///
/// Subscribers, their topics and the log of every change (what UK GDPR and PECR ask a sender
/// to be able to show) are kept in PostgreSQL: DATABASE_URL, else `database_url` in
/// lscp-mail.toml. Pending schema migrations are applied before each command runs.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail subscribers import subscribers/example.csv\n  \
lscp-mail subscribers list --topic training --status active\n  \
lscp-mail subscribers set-topics ann.smith@example.org training reviews\n  \
lscp-mail subscribers export subscribers.csv\n\n\
Exit codes: 0 done, 1 the input has problems (an unknown address or topic, rows skipped by an \
import, a file that cannot be imported), 2 bad usage, 3 other failure (database, files)."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: SubscribersCommand,
}

/// The statuses a new subscriber can start with.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StartStatus {
    /// Their consent is on record: they receive the newsletter
    Active,
    /// They still have to confirm by email (double opt-in)
    Pending,
}

impl From<StartStatus> for SubscriberStatus {
    fn from(s: StartStatus) -> Self {
        match s {
            StartStatus::Active => SubscriberStatus::Active,
            StartStatus::Pending => SubscriberStatus::Pending,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SubscribersCommand {
    /// Add the practitioners in a CSV file
    ///
    /// The header line names the columns: email (required), name, organisation, topics
    /// (slugs separated by `;`), in any order. Rows with a bad address, an unknown topic or the
    /// address of an earlier row are reported with their line number and skipped; the rest go
    /// in within one transaction. Importing the same file again changes nothing, and someone
    /// who unsubscribed, bounced, was blocked or was erased is never added back. A file with an
    /// unknown column or text that is not UTF-8 imports nothing.
    #[command(
        after_help = "Example:\n  lscp-mail subscribers import subscribers/example.csv --status pending\n\n\
Exit codes: 0 every row imported or already there, 1 rows skipped with problems (the others \
were imported) or the file cannot be imported (nothing was), 3 other failure."
    )]
    Import {
        /// The CSV file, such as subscribers/example.csv
        file: PathBuf,
        /// Topics for rows whose topics cell is empty, such as `training,events` [default: all]
        #[arg(long, value_name = "LIST")]
        topics: Option<String>,
        /// The status of the practitioners added
        #[arg(long, value_enum, default_value = "active")]
        status: StartStatus,
    },
    /// Add one practitioner
    ///
    /// An address awaiting confirmation of a web sign-up is made active, with these topics, name
    /// and organisation: the administrator's record of consent.
    #[command(after_help = "Examples:\n  \
lscp-mail subscribers add ann.smith@example.org --name \"Ann Smith\" --organisation \"Northfield Primary\"\n  \
lscp-mail subscribers add ann.smith@example.org --topics training,events\n  \
lscp-mail subscribers add ann.smith@example.org --resubscribe\n\n\
Exit codes: 0 added, 1 already subscribed, unsubscribed or erased (without --resubscribe) or an \
unknown topic, 2 a malformed address, name or organisation, 3 other failure.")]
    Add {
        /// Their email address, such as ann.smith@example.org
        email: SubscriberEmail,
        /// Their name, one line of printable text up to 200 characters
        #[arg(long)]
        name: Option<String>,
        /// Where they work, one line of printable text up to 200 characters
        #[arg(long)]
        organisation: Option<String>,
        /// Their topics, such as `training,events` [default: all]
        #[arg(long, value_name = "LIST")]
        topics: Option<String>,
        /// The status they start with
        #[arg(long, value_enum, default_value = "active")]
        status: StartStatus,
        /// They unsubscribed or were erased, and have now asked to subscribe again
        #[arg(long)]
        resubscribe: bool,
    },
    /// List subscribers in address order
    #[command(after_help = "Examples:\n  lscp-mail subscribers list\n  \
lscp-mail subscribers list --topic reviews --status active\n  \
lscp-mail subscribers list --status bounced")]
    List {
        /// Only those who chose this topic
        #[arg(long, value_name = "SLUG")]
        topic: Option<String>,
        /// Only those with this status: pending, active, unsubscribed, bounced or blocked
        #[arg(long)]
        status: Option<SubscriberStatus>,
    },
    /// Show a subscriber's status, topics and change log
    #[command(
        after_help = "Example:\n  lscp-mail subscribers show ann.smith@example.org\n\n\
For an erased address: when it was erased, and the history kept."
    )]
    Show {
        /// Their email address, in any case
        email: SubscriberEmail,
    },
    /// Replace a subscriber's topics
    #[command(
        after_help = "Example:\n  lscp-mail subscribers set-topics ann.smith@example.org training reviews"
    )]
    SetTopics {
        /// Their email address, in any case
        email: SubscriberEmail,
        /// The topics they receive from now on (none: they stay subscribed to nothing)
        #[arg(value_name = "TOPIC")]
        topics: Vec<String>,
    },
    /// Unsubscribe a practitioner (they stay on record so no import adds them back)
    #[command(
        after_help = "Example:\n  lscp-mail subscribers unsubscribe ann.smith@example.org\n\n\
They come back only if they ask: `subscribers add EMAIL --resubscribe`, or the web sign-up."
    )]
    Unsubscribe {
        /// Their email address, in any case
        email: SubscriberEmail,
    },
    /// Make a bounced subscriber active again (say, once their mailbox works), in the change log
    #[command(
        after_help = "Example:\n  lscp-mail subscribers list --status bounced\n  lscp-mail subscribers reactivate ann.smith@example.org\n\n\
Only a bounced subscriber can be reactivated: someone who unsubscribed or complained must sign up again."
    )]
    Reactivate {
        /// Their email address, in any case
        email: SubscriberEmail,
    },
    /// Write subscribers with their topics as CSV
    #[command(
        after_help = "Examples:\n  lscp-mail subscribers export subscribers.csv\n  \
lscp-mail subscribers export --topic training --status active\n  \
lscp-mail subscribers export everyone.csv --spreadsheet\n\n\
Columns: email, name, organisation, topics (`;`-separated), status, created_at, confirmed_at.\n\
The data is written exactly as stored, so `subscribers import` reads it back unchanged. With\n\
--spreadsheet, cells a spreadsheet would run as a formula (starting with = + - @) get a\n\
leading ' instead: for opening in Excel or LibreOffice, not for importing again."
    )]
    Export {
        /// The file to write [default: standard output]
        file: Option<PathBuf>,
        /// Only those who chose this topic
        #[arg(long, value_name = "SLUG")]
        topic: Option<String>,
        /// Only those with this status: pending, active, unsubscribed, bounced or blocked
        #[arg(long)]
        status: Option<SubscriberStatus>,
        /// Guard cells against running as spreadsheet formulas (alters them; do not re-import)
        #[arg(long)]
        spreadsheet: bool,
    },
    /// Erase a practitioner's personal data at their request
    ///
    /// Removes the address, name, organisation, topics and link secret. Kept: a keyed hash of
    /// the address (so no later import can add them back without saying so) and the change log
    /// with no personal data in it.
    #[command(
        after_help = "Example:\n  lscp-mail subscribers forget ann.smith@example.org\n\n\
An import of the address later reports it as previously erased instead of adding it; \
`subscribers add` refuses it without --resubscribe."
    )]
    Forget {
        /// Their email address, in any case
        email: SubscriberEmail,
    },
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let source = ConsentSource::Cli;
        match self.command {
            SubscribersCommand::Import {
                file,
                topics,
                status,
            } => with_store(config, async |store| {
                import(store, &file, topics.as_deref(), status.into()).await
            }),
            SubscribersCommand::Add {
                email,
                name,
                organisation,
                topics,
                status,
                resubscribe,
            } => with_store(config, async |store| {
                let catalog = store.topic_catalog().await?;
                let new = NewSubscriber {
                    email,
                    name: display_name("--name", name.as_deref())?,
                    organisation: display_name("--organisation", organisation.as_deref())?,
                    topics: topic_list(&catalog, topics.as_deref())?,
                };
                let added = store.add(&new, status.into(), &source, resubscribe).await?;
                let s = &added.subscriber;
                if added.before == Some(SubscriberStatus::Pending) {
                    outln!(
                        "{}: had signed up without confirming; now {} on your record, topics: {}",
                        s.email,
                        s.status,
                        topics_text(&s.topics)
                    )?;
                } else {
                    outln!(
                        "added {} ({}), topics: {}",
                        s.email,
                        s.status,
                        topics_text(&s.topics)
                    )?;
                }
                Ok(code(exit::OK))
            }),
            SubscribersCommand::List { topic, status } => with_store(config, async |store| {
                let filter = filter(store, topic.as_deref(), status).await?;
                print_list(&store.subscribers(&filter).await?)?;
                Ok(code(exit::OK))
            }),
            SubscribersCommand::Show { email } => {
                with_store(config, async |store| show(store, &email).await)
            }
            SubscribersCommand::SetTopics { email, topics } => with_store(config, async |store| {
                let catalog = store.topic_catalog().await?;
                let topics = catalog.parse_list(&topics.join(","))?;
                let change = store.set_topics(&email, &topics, &source).await?;
                if change.changed() {
                    outln!(
                        "{email}: topics changed from {} to {}",
                        topics_text(&change.before),
                        topics_text(&change.after)
                    )?;
                } else {
                    outln!("{email}: topics unchanged ({})", topics_text(&change.after))?;
                }
                Ok(code(exit::OK))
            }),
            SubscribersCommand::Unsubscribe { email } => with_store(config, async |store| {
                let change = store.unsubscribe(&email, &source).await?;
                if change.changed() {
                    outln!("{email}: unsubscribed (was {})", change.before)?;
                } else {
                    outln!("{email}: already unsubscribed")?;
                }
                Ok(code(exit::OK))
            }),
            SubscribersCommand::Reactivate { email } => with_store(config, async |store| {
                let change = store.reactivate(&email).await?;
                outln!("{email}: active again (was {})", change.before)?;
                Ok(code(exit::OK))
            }),
            SubscribersCommand::Export {
                file,
                topic,
                status,
                spreadsheet,
            } => with_store(config, async |store| {
                let filter = filter(store, topic.as_deref(), status).await?;
                let subscribers = store.subscribers(&filter).await?;
                let form = if spreadsheet {
                    export::Form::Spreadsheet
                } else {
                    export::Form::Data
                };
                match &file {
                    Some(path) => write_export(path, &subscribers, form)?,
                    // Data, not a display: written as is (no escaping), and a closed pipe
                    // ends the command quietly like every printer.
                    None => export::write_csv(&subscribers, std::io::stdout().lock(), form)
                        .map_err(|e| match e.into_kind() {
                            csv::ErrorKind::Io(io) => anyhow::Error::from(OutputError(io)),
                            other => anyhow::anyhow!("cannot write the export: {other:?}"),
                        })?,
                }
                if let Some(path) = &file {
                    eprintln!(
                        "wrote {} subscriber{} to {}",
                        subscribers.len(),
                        plural(subscribers.len()),
                        path.display()
                    );
                }
                Ok(code(exit::OK))
            }),
            SubscribersCommand::Forget { email } => with_store(config, async |store| {
                let erased_at = store.forget(&email, &source).await?;
                outln!(
                    "{email}: erased on {}; a keyed hash of the address and the change log \
                     (without personal data) are kept",
                    erased_at.format("%Y-%m-%d %H:%M UTC")
                )?;
                Ok(code(exit::OK))
            }),
        }
    }
}

async fn import(
    store: &Store,
    file: &Path,
    topics: Option<&str>,
    status: SubscriberStatus,
) -> anyhow::Result<ExitCode> {
    let catalog = store.topic_catalog().await?;
    let default_topics = topic_list(&catalog, topics)?;
    let progress = Bar::new();
    let report = match store
        .import_csv(file, &catalog, &default_topics, status, &progress)
        .await
    {
        Ok(report) => report,
        // Unwrapped, so that the exit code can tell a bad file from a failing database.
        Err(ImportFailure::File(e)) => return Err(e.into()),
        Err(ImportFailure::Store(e)) => return Err(e.into()),
    };
    drop(progress);

    let name = file.display();
    for issue in &report.problems {
        outln!("{name}:{}: {} (skipped)", issue.line, issue.problem)?;
    }
    for activated in &report.activated {
        outln!(
            "{name}:{}: {}: had signed up without confirming; now active on this import's record",
            activated.line,
            activated.email
        )?;
    }
    for kept in &report.kept {
        if !matches!(kept.reason, KeptReason::AlreadySubscribed(_)) {
            outln!("{name}:{}: {}: {}", kept.line, kept.email, kept.reason)?;
        }
    }
    let unlisted = report.count_unlisted(|r| matches!(r, KeptReason::HasLeft(_)));
    if unlisted > 0 {
        outln!(
            "{name}: {unlisted} more row{} not resubscribed (unsubscribed, bounced or blocked), \
             counted below but not listed past the first {KEPT_LISTED}",
            plural(unlisted as usize),
        )?;
    }
    let rows = report.rows as usize;
    let already = report.count(|r| matches!(r, KeptReason::AlreadySubscribed(_)));
    let left = report.count(|r| matches!(r, KeptReason::HasLeft(_)));
    let erased = report.count(|r| matches!(r, KeptReason::Erased(_)));
    outln!(
        "{name}: {rows} row{}: {} added ({status}), {} made active (had not confirmed a \
         sign-up), {already} already subscribed, {left} not resubscribed, {erased} previously \
         erased, {} skipped with problems",
        plural(rows),
        report.added.len(),
        report.activated.len(),
        report.problems.len(),
    )?;
    Ok(code(if report.problems.is_empty() {
        exit::OK
    } else {
        exit::INPUT
    }))
}

/// `--name` or `--organisation`, checked as every name is; empty is none.
fn display_name(option: &str, given: Option<&str>) -> anyhow::Result<Option<DisplayName>> {
    DisplayName::parse(given.unwrap_or("")).map_err(|e| UsageError(format!("{option} {e}")).into())
}

/// `--topics training,events`, or every topic when not given.
fn topic_list(catalog: &TopicCatalog, list: Option<&str>) -> anyhow::Result<TopicSet> {
    match list {
        None => Ok(catalog.all()),
        Some(list) => Ok(catalog.parse_list(list)?),
    }
}

async fn filter(
    store: &Store,
    topic: Option<&str>,
    status: Option<SubscriberStatus>,
) -> anyhow::Result<SubscriberFilter> {
    let topic = match topic {
        Some(t) => Some(store.topic_catalog().await?.parse(t)?.to_string()),
        None => None,
    };
    Ok(SubscriberFilter { status, topic })
}

/// Writes beside the target and renames, so a failed export never leaves half a file.
fn write_export(
    path: &Path,
    subscribers: &[crate::store::Subscriber],
    form: export::Form,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".lscp-mail-export-{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .map_err(anyhow::Error::from)
        .and_then(|mut f| {
            export::write_csv(subscribers, &mut f, form)?;
            f.flush()?;
            f.sync_all()?;
            Ok(())
        })
        .and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// An import's progress bar on standard error; indicatif hides it when that is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:8} [{bar:40}] {percent:>3}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self(bar)
    }
}

impl Progress for Bar {
    fn begin(&self, stage: &'static str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(stage);
    }

    fn advance(&self, by: u64) {
        self.0.inc(by);
    }

    fn end(&self) {
        self.0.set_position(self.0.length().unwrap_or(0));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
