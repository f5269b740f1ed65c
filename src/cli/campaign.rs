//! `status`, `pause`, `cancel` and `retry-failed`: looking after a campaign `send` began.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::db::with_store;
use super::{UsageError, code, exit};
use crate::config::Config;
use crate::content::IssueId;
use crate::send::ledger::{self, Campaign, CampaignStatus};
use crate::store::Store;

/// The issue a campaign belongs to, given as its folder (issues/2026-02) or its month (2026-02).
#[derive(Debug, Clone)]
pub struct IssueArg(pub IssueId);

impl std::str::FromStr for IssueArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = Path::new(s.trim_end_matches('/'))
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(s);
        IssueId::parse(name)
            .map(IssueArg)
            .map_err(|e| format!("{e}: give the issue folder (issues/2026-02) or its month"))
    }
}

/// Where a campaign stands: counts by status, rate, estimated finish, the last errors
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail status issues/2026-02\n  lscp-mail status 2026-02\n\n\
Exit codes: 0 shown, 1 no campaign for that issue, 3 could not run."
)]
pub struct StatusArgs {
    /// The issue folder or month
    pub issue: IssueArg,
}

/// Stop sending a campaign for now; `lscp-mail send ISSUE` resumes it
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail pause issues/2026-02\n\n\
Running senders finish the message in hand and stop with status 75.\n\
Exit codes: 0 paused, 1 no campaign or not sending, 3 could not run.")]
pub struct PauseArgs {
    pub issue: IssueArg,
}

/// Stop a campaign for good: nothing more is sent for this issue
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail cancel issues/2026-02\n\n\
The ledger is kept for the record. Exit codes: 0 cancelled, 1 no campaign or already over, 3 could not run.")]
pub struct CancelArgs {
    pub issue: IssueArg,
}

/// Queue a campaign's failed deliveries again (bounced readers stay out)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail retry-failed issues/2026-02 && lscp-mail send issues/2026-02\n\n\
Exit codes: 0 done, 1 no campaign, 3 could not run."
)]
pub struct RetryFailedArgs {
    pub issue: IssueArg,
}

async fn find(store: &Store, issue: IssueId) -> anyhow::Result<Campaign> {
    ledger::campaign(store.pool(), issue)
        .await?
        .ok_or_else(|| NoCampaign(issue).into())
}

#[derive(Debug, thiserror::Error)]
#[error("no campaign for {0}: `lscp-mail send issues/{0}` begins one")]
struct NoCampaign(IssueId);

/// Runs a campaign command, with "no such campaign" and wrong-state answers as exit code 1.
fn with_campaign(
    config: &Config,
    issue: IssueId,
    f: impl AsyncFnOnce(&Store, Campaign) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let result = with_store(config, async |store| {
        let campaign = find(store, issue).await?;
        f(store, campaign).await
    });
    match result {
        Err(e)
            if e.downcast_ref::<NoCampaign>().is_some()
                || e.downcast_ref::<UsageError>().is_some() =>
        {
            eprintln!("error: {e}");
            Ok(code(exit::INPUT))
        }
        other => other,
    }
}

impl StatusArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            let pool = store.pool();
            let n = ledger::counts(pool, c.id).await?;
            println!("{} \"{}\": {}", c.issue_id, c.subject, c.status);
            println!(
                "  began     {}{}",
                c.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                c.finished_at
                    .map(|f| format!(", ended {}", f.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default()
            );
            println!(
                "  recipients {} in all: {} sent, {} failed, {} skipped, {} queued, {} sending",
                n.total(),
                n.sent,
                n.failed,
                n.skipped,
                n.queued,
                n.sending
            );
            let b = store.bounce_counts(c.id).await?;
            println!(
                "  reports   {} hard bounces, {} soft bounces, {} complaints, {} unsubscribes by email",
                b.hard, b.soft, b.complaints, b.unsubscribes
            );
            let last_minute = ledger::sent_in_last(pool, c.id, 60.0).await?;
            let rate = last_minute as f64 / 60.0;
            if c.status == CampaignStatus::Sending && n.remaining() > 0 {
                if rate > 0.0 {
                    let secs = n.remaining() as f64 / rate;
                    let eta = Utc::now() + chrono::Duration::seconds(secs as i64);
                    println!(
                        "  rate      {rate:.1}/s over the last minute; estimated finish {} (in {})",
                        eta.format("%Y-%m-%d %H:%M UTC"),
                        human(secs)
                    );
                } else {
                    println!("  rate      nothing sent in the last minute (is a sender running?)");
                }
            }
            let errors = ledger::last_errors(pool, c.id, 5).await?;
            if !errors.is_empty() {
                println!("  last errors:");
                for (at, status, reply) in errors {
                    println!("    {} {status:7} {reply}", at.format("%Y-%m-%d %H:%M:%S"));
                }
            }
            Ok(code(exit::OK))
        })
    }
}

fn human(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

impl PauseArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            if c.status != CampaignStatus::Sending {
                return Err(
                    UsageError(format!("{} is {}, not sending", c.issue_id, c.status)).into(),
                );
            }
            ledger::set_status(store.pool(), c.id, CampaignStatus::Paused).await?;
            println!(
                "{}: paused; senders stop after the message in hand. `lscp-mail send issues/{}` resumes it.",
                c.issue_id, c.issue_id
            );
            Ok(code(exit::OK))
        })
    }
}

impl CancelArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            if matches!(
                c.status,
                CampaignStatus::Finished | CampaignStatus::Cancelled
            ) {
                return Err(UsageError(format!("{} is already {}", c.issue_id, c.status)).into());
            }
            ledger::set_status(store.pool(), c.id, CampaignStatus::Cancelled).await?;
            let n = ledger::counts(store.pool(), c.id).await?;
            println!(
                "{}: cancelled; {} sent before, {} will not be sent.",
                c.issue_id,
                n.sent,
                n.remaining()
            );
            Ok(code(exit::OK))
        })
    }
}

impl RetryFailedArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            if c.status == CampaignStatus::Cancelled {
                return Err(UsageError(format!("{} was cancelled", c.issue_id)).into());
            }
            let n = ledger::retry_failed(store.pool(), c.id).await?;
            if n > 0 && c.status == CampaignStatus::Finished {
                ledger::set_status(store.pool(), c.id, CampaignStatus::Sending).await?;
            }
            println!(
                "{}: {n} failed deliveries queued again (bounced and departed readers stay out). `lscp-mail send issues/{}` sends them.",
                c.issue_id, c.issue_id
            );
            Ok(code(exit::OK))
        })
    }
}
