//! `lscp-mail bounces SOURCE…`: reads delivery reports, complaints and emailed unsubscribes.

use std::process::ExitCode;

use super::output::OutputError;
use super::{code, exit};
use crate::bounces::imap::ImapSource;
use crate::bounces::source::{self, Source};
use crate::bounces::{self, Outcome, Summary};
use crate::config::Config;
use crate::store::Store;

/// Read bounces, complaints and emailed unsubscribes, and act on them
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Read what comes back after the relay accepted a message, and act on it.\n\n\
A failed delivery report about the address (5.1.x, 5.2.1, 5.4.4) marks the reader bounced; \
other 5.x.x (policy, content) fail the delivery only; soft bounces (4.x.x, delayed) of \
bounce.soft_limit messages within bounce.soft_days bounce the reader too; a complaint (ARF \
abuse, fraud, other, virus) or a mail to the \
unsubscribe address unsubscribes the reader; auto-replies are counted and ignored. A report is \
matched to a delivery by the VERP tag of mail.bounce_address, else by the Message-ID it quotes \
together with its recipient; never by an address alone. Each report takes effect once, however \
often it is read. Nothing is moved or deleted: a message that cannot be read or is not \
recognised is listed with where it is, for a person to look at.",
    after_help = "Examples:\n  lscp-mail bounces ~/Maildir/.Bounces\n  lscp-mail bounces saved-bounces.mbox report.eml\n  \
lscp-mail bounces -          (one message on standard input: an MTA's pipe alias)\n  \
lscp-mail bounces 'imaps://bounces%40example.org:PASSWORD@outlook.office365.com/INBOX'\n\n\
From IMAP, the messages processed are moved to bounce.processed_folder (Processed); the rest \
stay untouched. The password is never printed.\n\n\
Exit codes: 0 every message was read (unrecognised ones are listed), 1 some could not be read, \
3 the database or a mailbox could not be used; from standard input, 75 (try again later) when \
the database could not be used, so the mail server keeps the message and retries, and when the \
message was not recognised or not identified, so it stays in the mail server's queue."
)]
pub struct Args {
    /// A message file, an mbox file, a Maildir folder, - for standard input, or an IMAP mailbox
    /// (imaps://user:password@host/INBOX; imap:// only to 127.0.0.1)
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let mut sources = Vec::new();
        for arg in &self.sources {
            let parsed = match ImapSource::parse(arg) {
                Some(imap) => imap.map(Named::Imap).map_err(|e| e.to_string()),
                None => Source::parse(arg)
                    .map(Named::Local)
                    .map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(s) => sources.push(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(code(exit::FAILURE));
                }
            }
        }
        // From an MTA's pipe, a database outage must not lose the message: EX_TEMPFAIL makes the
        // mail server keep it and try again.
        let unusable = if sources
            .iter()
            .any(|s| matches!(s, Named::Local(l) if l.is_stdin()))
        {
            exit::RESUMABLE
        } else {
            exit::FAILURE
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(async {
            let store = Store::connect(config).await?;
            store.migrate().await?;
            read_all(&store, config, &sources).await
        });
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
                Ok(code(unusable))
            }
        }
    }
}

/// A source as named: on this machine, or an IMAP mailbox.
enum Named {
    Local(Source),
    Imap(ImapSource),
}

async fn read_all(store: &Store, config: &Config, sources: &[Named]) -> anyhow::Result<ExitCode> {
    let mut summary = Summary::default();
    // Reports go on taking effect when nobody reads the output any more (`| head`); the first
    // failure to print ends the command once they are all read.
    let mut closed: Option<OutputError> = None;
    let mut seen = |item: &source::Item, outcome: &Outcome| {
        if let Some(line) = describe(outcome)
            && let Err(e) = outln!("{}: {line}", item.origin)
        {
            closed.get_or_insert(e);
        }
        summary.add(outcome);
    };
    for s in sources {
        match s {
            Named::Local(s) => {
                for item in source::read(s)? {
                    let outcome = bounces::process(store, config, &item).await?;
                    seen(&item, &outcome);
                }
            }
            Named::Imap(s) => bounces::read_imap(store, config, s, &mut seen).await?,
        }
    }
    if let Some(e) = closed {
        return Err(e.into());
    }
    outln!("{}", totals(&summary))?;
    let from_stdin = sources
        .iter()
        .any(|s| matches!(s, Named::Local(l) if l.is_stdin()));
    if from_stdin && summary.unrecognised + summary.not_identified > 0 {
        // From an MTA's pipe there is no mailbox to leave it in: EX_TEMPFAIL keeps it in the
        // mail server's queue (`mailq` shows it) rather than have it count as delivered.
        eprintln!(
            "this message was not recognised or not identified: the mail server keeps it queued; \
             read it there, or deliver such mail to a Maildir that `bounces` reads"
        );
        return Ok(code(exit::RESUMABLE));
    }
    Ok(code(if summary.unreadable > 0 {
        exit::INPUT
    } else {
        exit::OK
    }))
}

/// One line per message that did something or needs a person; nothing for auto-replies and
/// reports already read.
fn describe(o: &Outcome) -> Option<String> {
    let now = |yes: bool, what: &str| {
        if yes {
            format!(": the reader is now {what}")
        } else {
            String::new()
        }
    };
    Some(match o {
        Outcome::HardBounce { status, bounced } => {
            format!("hard bounce {status}{}", now(*bounced, "bounced"))
        }
        Outcome::SoftBounce { status, bounced } => {
            format!("soft bounce {status}{}", now(*bounced, "bounced"))
        }
        Outcome::Complaint { changed } => format!("complaint{}", now(*changed, "unsubscribed")),
        Outcome::Unsubscribed { changed } => {
            format!("unsubscribe by email{}", now(*changed, "unsubscribed"))
        }
        Outcome::NotIdentified(why) => format!("not identified ({why}); left in place"),
        Outcome::Unrecognised => "not recognised; left in place".into(),
        Outcome::Unreadable(why) => format!("cannot be read ({why}); left in place"),
        Outcome::AlreadyRead | Outcome::AutoReply | Outcome::NothingToDo => return None,
    })
}

fn totals(s: &Summary) -> String {
    format!(
        "{} message{} read: {} hard and {} soft bounce{} ({} reader{} now bounced), {} complaint{}, \
         {} unsubscribe{} by email, {} auto-repl{}, {} already read, {} needing nothing, \
         {} not identified, {} not recognised, {} unreadable",
        s.read,
        if s.read == 1 { "" } else { "s" },
        s.hard,
        s.soft,
        if s.soft == 1 { "" } else { "s" },
        s.bounced,
        if s.bounced == 1 { "" } else { "s" },
        s.complaints,
        if s.complaints == 1 { "" } else { "s" },
        s.unsubscribed,
        if s.unsubscribed == 1 { "" } else { "s" },
        s.auto_replies,
        if s.auto_replies == 1 { "y" } else { "ies" },
        s.already_read,
        s.nothing_to_do,
        s.not_identified,
        s.unrecognised,
        s.unreadable
    )
}
