use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::db::with_store;
use super::output::escape_controls;
use super::{UsageError, code, exit};
use crate::config::{Config, Rate};
use crate::content::{Issue, load_issue};
use crate::mail::smtp::{SmtpFailure, SmtpTarget};
use crate::render::Renderer;
use crate::send::campaign::{self, Outcome, Progress, SendError, SendOptions};
use crate::send::job::{self, JobError, Start, TestSend, Version};
use crate::send::personalise::Personaliser;
use crate::store::{Store, SubscriberEmail};

/// Mail an issue to every active subscriber, each receiving the sections of their topics
///
/// The first run freezes the audience (active subscribers whose topics meet the issue's) in
/// the delivery ledger; later runs resume it, never enqueueing anyone twice. A message is
/// recorded as sent only after the mail server accepted it. Ctrl-C (or SIGTERM) finishes the
/// messages in flight, gives back the rest and exits with status 75: run the same command to
/// resume. `lscp-mail pause` and `cancel` reach a running send at once: each connection finishes
/// the message in hand and the rest go back. After a crash or `kill -9`, the next `send` takes
/// the dead run's claims at once (PostgreSQL knows the run is gone); a run that is alive but
/// hung or cut off from the database keeps its claims until their lease runs out.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail send issues/2026-02\n  \
lscp-mail send issues/2026-02 --rate 20/s --concurrency 4 --daily-cap 10000\n  \
lscp-mail send issues/2026-02 --dry-run --out /tmp/messages\n  \
lscp-mail send issues/2026-02 --test editor@example.org\n\n\
Exit codes: 0 finished (or nothing left to send), 1 the issue has errors or changed, \
2 bad usage, 3 could not run (database, mail server), \
75 stopped before finishing (interrupted, paused, daily cap): run it again to resume.")]
pub struct Args {
    /// The issue folder, such as issues/2026-02
    pub issue: PathBuf,

    /// Write each message to DIR as 00001-<address>.eml, … instead of sending; changes nothing
    #[arg(long, requires = "out")]
    pub dry_run: bool,

    /// Where --dry-run writes the messages
    #[arg(long, value_name = "DIR", requires = "dry_run")]
    pub out: Option<PathBuf>,

    /// Send the personalised message to these addresses only, outside the ledger
    #[arg(long = "test", value_name = "ADDR", num_args = 1.., conflicts_with = "dry_run")]
    pub test: Vec<String>,

    /// Messages per second or minute across all connections: 20/s, 600/min; 0 for no limit
    #[arg(long, value_name = "RATE")]
    pub rate: Option<Rate>,

    /// Deliveries each connection claims at a time
    #[arg(long, value_name = "N")]
    pub batch: Option<u32>,

    /// SMTP connections at once
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// Recipients a day across all campaigns; at the cap, wait for the next day
    #[arg(long, value_name = "N")]
    pub daily_cap: Option<u32>,

    /// At the daily cap, stop with status 75 instead of waiting for the next day
    #[arg(long)]
    pub exit_at_cap: bool,

    /// Also send to subscribers who joined since the campaign began
    #[arg(long)]
    pub include_new: bool,

    /// Send the rest although the issue's files changed since the campaign began
    #[arg(long)]
    pub allow_changed: bool,

    /// A folder of templates that replace the built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let catalog = config.topic_catalog()?;
        let loaded = load_issue(&self.issue, &catalog);
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        let Some(issue) = loaded.issue else {
            eprintln!(
                "{}: the issue has errors; nothing was sent.",
                self.issue.display()
            );
            return Ok(code(exit::INPUT));
        };
        // Before any connection or row: readers could not see the images.
        if let Err(e) = campaign::check_image_site(&issue, config) {
            eprintln!("error: {e}");
            eprintln!(
                "set `site.base_url` in lscp-mail.toml (or LSCP_MAIL_SITE__BASE_URL) to the https address `lscp-mail serve` answers on; nothing was sent."
            );
            return Ok(code(exit::INPUT));
        }
        let renderer = Renderer::new(
            self.templates
                .as_deref()
                .or(config.compose.templates.as_deref()),
        )?;
        let personaliser = Personaliser::new(&issue, config, &catalog, &renderer)?;
        let mut options = SendOptions::from_config(config);
        if let Some(r) = self.rate {
            options.rate = r;
        }
        for (value, name) in [(self.batch, "--batch"), (self.concurrency, "--concurrency")] {
            if value == Some(0) {
                return Err(UsageError(format!("{name} must be at least 1")).into());
            }
        }
        options.batch = self.batch.unwrap_or(options.batch);
        options.concurrency = self.concurrency.unwrap_or(options.concurrency);
        options.daily_cap = self.daily_cap.or(options.daily_cap);
        options.wait_at_cap = !self.exit_at_cap;
        options.include_new = self.include_new;
        options.allow_changed = self.allow_changed;

        if self.dry_run {
            let out = self.out.clone().unwrap_or_default();
            return with_store(config, async |store| {
                dry_run(store, &issue, &personaliser, &out).await
            });
        }
        let target = smtp_target(config)?;
        if !self.test.is_empty() {
            return with_store(config, async |store| {
                test_send(store, &issue, &personaliser, &target, &self.test, &options).await
            });
        }
        with_store(config, async |store| {
            send(store, &issue, personaliser, &target, &options).await
        })
    }
}

fn smtp_target(config: &Config) -> anyhow::Result<SmtpTarget> {
    Ok(SmtpTarget::from_config(&config.smtp)?)
}

/// Prints why the mail server refused the session for good and what to change.
fn explain_refusal(failure: &SmtpFailure, target: &SmtpTarget) {
    eprintln!("error: the mail server {target} refused the session: {failure}");
    eprintln!("check {}", failure.suspect());
}

async fn send(
    store: &Store,
    issue: &Issue,
    personaliser: Personaliser,
    target: &SmtpTarget,
    options: &SendOptions,
) -> anyhow::Result<ExitCode> {
    let ready = match job::start(store, issue, &personaliser, target, options).await {
        Ok(Start::Ready(ready)) => ready,
        Ok(Start::Refused(failure)) => {
            explain_refusal(&failure, target);
            eprintln!("nothing was sent or recorded.");
            return Ok(code(exit::FAILURE));
        }
        Ok(Start::Unavailable(failure)) => {
            eprintln!(
                "{}: the mail server {target} is unavailable now ({failure}); nothing was sent or recorded; run `lscp-mail send {}` again later",
                issue.id,
                issue.dir.display()
            );
            return Ok(code(exit::RESUMABLE));
        }
        Ok(Start::Finished(before)) => {
            outln!(
                "{}: already finished: {} sent, {} failed, {} skipped. `lscp-mail send {} --include-new` sends to subscribers who joined since.",
                issue.id,
                before.sent,
                before.failed,
                before.skipped,
                issue.dir.display()
            )?;
            return Ok(code(exit::OK));
        }
        Err(JobError::Send(e @ (SendError::Cancelled(_) | SendError::Changed { .. }))) => {
            eprintln!("error: {}", escape_controls(&e.to_string()));
            return Ok(code(exit::INPUT));
        }
        Err(e) => return Err(failure(e)),
    };
    for h in &ready.stopped {
        outln!(
            "{}: taking over {} claim(s) of sender {}, which has stopped",
            issue.id,
            h.claims,
            h.name.as_deref().unwrap_or("(unnamed)")
        )?;
    }
    let before = ready.counts;
    outln!(
        "{}: {} to send by {} ({} recipients in all), rate {}, {} connection(s)",
        issue.id,
        before.remaining(),
        target,
        before.total(),
        options.rate,
        options.concurrency
    )?;
    let (stop_tx, stop_rx) = campaign::stop_channel();
    let signals = tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        let mut asked = false;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if asked {
                eprintln!(
                    "stopping now; the next `lscp-mail send` takes this run's claims at once"
                );
                std::process::exit(130);
            }
            asked = true;
            eprintln!(
                "stopping: finishing the messages in flight and giving back the rest (again to quit at once)"
            );
            let _ = stop_tx.send(true);
        }
    });
    let progress: Arc<dyn Progress> = Arc::new(Bar::new());
    let report = campaign::run(
        store,
        issue,
        ready.campaign,
        options,
        target,
        personaliser,
        stop_rx,
        progress,
    )
    .await;
    signals.abort();
    let report = report?;
    let c = report.counts;
    let secs = report.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        report.sent as f64 / secs
    } else {
        0.0
    };
    let this_run = format!(
        "this run: {} sent, {} failed, {} to retry, in {:.1} s ({:.1}/s; {} variant(s) rendered)",
        report.sent, report.failed, report.retried, secs, rate, report.variants
    );
    let totals = format!(
        "in all: {} sent, {} failed, {} skipped, {} queued, {} in flight",
        c.sent, c.failed, c.skipped, c.queued, c.sending
    );
    let resume = format!(
        "run `lscp-mail send {}` again to resume",
        issue.dir.display()
    );
    match report.outcome {
        // Nothing accepted and something refused: not a success, whatever the queue says.
        Outcome::Finished if report.sent == 0 && report.failed > 0 => {
            outln!(
                "{}: finished, but every attempt failed; {this_run}; {totals}",
                issue.id
            )?;
            outln!(
                "`lscp-mail status {}` shows why; after fixing the cause, `lscp-mail retry-failed {}` queues them again",
                issue.id,
                issue.id
            )?;
            Ok(code(exit::FAILURE))
        }
        Outcome::Finished => {
            outln!("{}: finished; {this_run}; {totals}", issue.id)?;
            if c.failed > 0 {
                outln!(
                    "{} failed: `lscp-mail status {}` shows why; `lscp-mail retry-failed {}` queues them again",
                    c.failed,
                    issue.id,
                    issue.id
                )?;
            }
            Ok(code(exit::OK))
        }
        Outcome::Interrupted => {
            outln!("{}: interrupted; {this_run}; {totals}; {resume}", issue.id)?;
            Ok(code(exit::RESUMABLE))
        }
        Outcome::CapReached => {
            outln!(
                "{}: the daily cap is reached; {this_run}; {totals}; {resume} tomorrow",
                issue.id
            )?;
            Ok(code(exit::RESUMABLE))
        }
        Outcome::Paused => {
            match &report.stopped_by {
                Some(f) => outln!(
                    "{}: paused by itself: {} readers in a row were refused the same way ({f}); {this_run}; {totals}. Fix the cause (the message, the account or the server's policy), run `lscp-mail send {}` again, then `lscp-mail retry-failed {}` for those refused",
                    issue.id,
                    options.max_consecutive_failures,
                    issue.dir.display(),
                    issue.id
                )?,
                None => outln!("{}: paused; {this_run}; {totals}; {resume}", issue.id)?,
            }
            Ok(code(exit::RESUMABLE))
        }
        Outcome::Refused => {
            if let Some(f) = &report.stopped_by {
                explain_refusal(f, target);
            }
            outln!(
                "{}: stopped: the mail server refused the session; nobody else was tried and their claims went back to the queue; {this_run}; {totals}; fix the setting, then {resume}",
                issue.id
            )?;
            Ok(code(exit::FAILURE))
        }
        Outcome::ServerUnavailable => {
            let why = report
                .stopped_by
                .as_ref()
                .map(|f| format!(" (last: {f})"))
                .unwrap_or_default();
            outln!(
                "{}: gave up: the mail server stayed unavailable for {}{why}; nobody was charged an attempt and everything is still queued; {this_run}; {totals}; {resume}",
                issue.id,
                humantime::format_duration(options.give_up_after)
            )?;
            Ok(code(exit::RESUMABLE))
        }
        Outcome::Cancelled => {
            outln!("{}: cancelled; {this_run}; {totals}", issue.id)?;
            Ok(code(exit::INPUT))
        }
    }
}

/// Writes every message the issue would send now, one file each, and changes nothing.
async fn dry_run(
    store: &Store,
    issue: &Issue,
    personaliser: &Personaliser,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let written = job::dry_run(store, issue, personaliser, out)
        .await
        .map_err(failure)?;
    outln!(
        "{}: wrote {} message(s) to {} ({} active subscriber(s) have no topic in this issue); nothing was sent or recorded",
        issue.id,
        written.written,
        out.display(),
        written.skipped
    )?;
    Ok(code(exit::OK))
}

/// Sends the personalised message to a few addresses, outside the ledger.
async fn test_send(
    store: &Store,
    issue: &Issue,
    personaliser: &Personaliser,
    target: &SmtpTarget,
    addresses: &[String],
    options: &SendOptions,
) -> anyhow::Result<ExitCode> {
    let mut session =
        match TestSend::open(store, issue, personaliser, target, options.smtp_timeout).await {
            Ok(s) => s,
            Err(f) => {
                explain_refusal(&f, target);
                return Ok(code(exit::FAILURE));
            }
        };
    let mut failed = 0;
    for address in addresses {
        let email = SubscriberEmail::parse(address)
            .map_err(|e| UsageError(format!("--test {address}: {e}")))?;
        let (version, answer) = session.send(&email).await.map_err(failure)?;
        let who = match version {
            Version::TheirTopics => "their topics",
            Version::WholeIssue => "the whole issue (not a subscriber)",
        };
        match answer {
            Ok(reply) => outln!("sent to {address} ({who}): {reply}")?,
            Err(f) => {
                failed += 1;
                outln!("NOT sent to {address}: {f}")?;
            }
        }
    }
    session.quit().await;
    Ok(code(if failed == 0 { exit::OK } else { exit::FAILURE }))
}

/// A job's failure as the error it wraps, so that [`with_store`] and `main` judge it (exit code
/// 1 for a store error the user can fix, 3 for the rest) and print it as before.
fn failure(e: JobError) -> anyhow::Error {
    match e {
        JobError::Store(e) => e.into(),
        e => e.into(),
    }
}

/// The progress bar: sent, failed and remaining, and the current rate. Hidden when stderr is
/// not a terminal.
struct Bar {
    bar: ProgressBar,
    started: Mutex<Instant>,
    /// Showing why nothing is sent (no estimate then: it would say "0s left").
    waiting: std::sync::atomic::AtomicBool,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(Self::style("({elapsed}, {eta} left)"));
        Self {
            bar,
            started: Mutex::new(Instant::now()),
            waiting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn style(tail: &str) -> ProgressStyle {
        ProgressStyle::with_template(&format!("[{{bar:30}}] {{pos}}/{{len}} {{msg}} {tail}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }
}

impl Progress for Bar {
    fn start(&self, remaining: u64) {
        self.bar.set_length(remaining);
        if let Ok(mut s) = self.started.lock() {
            *s = Instant::now();
        }
    }

    fn advance(&self, sent: u64, failed: u64, retried: u64) {
        let secs = self
            .started
            .lock()
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(1.0)
            .max(0.001);
        self.bar.set_position(sent + failed);
        self.bar.set_message(format!(
            "sent {sent} · failed {failed} · retrying {retried} · {:.1}/s",
            sent as f64 / secs
        ));
    }

    fn note(&self, message: &str) {
        // A hidden bar (stderr not a terminal: cron, a log file) prints nothing itself.
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }

    fn waiting(&self, why: Option<&str>) {
        use std::sync::atomic::Ordering;
        match why {
            Some(why) => {
                if !self.waiting.swap(true, Ordering::Relaxed) {
                    self.bar.set_style(Self::style("({elapsed})"));
                }
                self.bar.set_message(why.to_string());
            }
            None => {
                if self.waiting.swap(false, Ordering::Relaxed) {
                    self.bar.set_style(Self::style("({elapsed}, {eta} left)"));
                }
            }
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
