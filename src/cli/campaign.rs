//! `status`, `pause`, `cancel` and `retry-failed`: looking after a campaign `send` began.

use std::path::Path;
use std::process::ExitCode;

use super::db::with_store;
use super::output::{OutputError, escape_controls};
use super::{code, exit};
use crate::config::Config;
use crate::content::IssueId;
use crate::send::control::{self, ControlError};
use crate::send::{campaign, estimate};
use crate::store::Store;
use crate::store::ledger::{Campaign, Counts, Holder, LiveSender};

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
    /// The issue folder (issues/2026-02) or its month (2026-02)
    pub issue: IssueArg,
}

/// Stop sending a campaign for now; `lscp-mail send ISSUE` resumes it
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail pause issues/2026-02\n  lscp-mail pause 2026-02\n\n\
Running senders finish the message in hand and stop with status 75.\n\
Exit codes: 0 paused, 1 no campaign or not sending, 3 could not run."
)]
pub struct PauseArgs {
    /// The issue folder (issues/2026-02) or its month (2026-02)
    pub issue: IssueArg,
}

/// Stop a campaign for good: nothing more is sent for this issue
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail cancel issues/2026-02\n  lscp-mail status issues/2026-02\n\n\
The ledger is kept for the record. Exit codes: 0 cancelled, 1 no campaign or already over, 3 could not run."
)]
pub struct CancelArgs {
    /// The issue folder (issues/2026-02) or its month (2026-02)
    pub issue: IssueArg,
}

/// Queue a campaign's failed deliveries again (bounced readers stay out)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail retry-failed issues/2026-02 && lscp-mail send issues/2026-02\n\n\
Exit codes: 0 done, 1 no campaign, 3 could not run."
)]
pub struct RetryFailedArgs {
    /// The issue folder (issues/2026-02) or its month (2026-02)
    pub issue: IssueArg,
}

/// Runs a campaign command, with "no such campaign" and wrong-state answers as exit code 1.
fn with_campaign(
    config: &Config,
    issue: IssueId,
    f: impl AsyncFnOnce(&Store, Campaign) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let result = with_store(config, async |store| {
        let campaign = control::find(store, issue).await.map_err(failure)?;
        f(store, campaign).await
    });
    match result {
        Err(e)
            if e.downcast_ref::<ControlError>()
                .is_some_and(ControlError::is_input_problem) =>
        {
            eprintln!("error: {}", escape_controls(&e.to_string()));
            Ok(code(exit::INPUT))
        }
        other => other,
    }
}

/// A wrong-state answer stays a [`ControlError`] (exit code 1); a failure is reported as the
/// error it wraps, so [`with_store`] and `main` judge it as before.
fn failure(e: ControlError) -> anyhow::Error {
    match e {
        ControlError::Sql(e) => e.into(),
        ControlError::Store(e) => e.into(),
        e => e.into(),
    }
}

impl StatusArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            let status = control::status(store, &c).await.map_err(failure)?;
            let n = &status.counts;
            outln!("{} \"{}\": {}", c.issue_id, c.subject, c.status)?;
            outln!(
                "  began     {}{}",
                c.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                c.finished_at
                    .map(|f| format!(", ended {}", f.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default()
            )?;
            outln!(
                "  recipients {} in all: {} sent, {} failed, {} skipped, {} queued, {} sending",
                n.total(),
                n.sent,
                n.failed,
                n.skipped,
                n.queued,
                n.sending
            )?;
            let b = &status.bounces;
            outln!(
                "  reports   {} hard bounces, {} soft bounces, {} complaints, {} unsubscribes by email",
                b.hard,
                b.soft,
                b.complaints,
                b.unsubscribes
            )?;
            print_senders(&status.live, &status.holders, &c, n)?;
            if let Some((estimate, inputs)) = &status.estimate {
                outln!("  estimate  {}", describe(estimate, inputs))?;
            }
            if !status.last_errors.is_empty() {
                outln!("  last errors:")?;
                for (at, status, reply) in &status.last_errors {
                    outln!("    {} {status:7} {reply}", at.format("%Y-%m-%d %H:%M:%S"))?;
                }
            }
            Ok(code(exit::OK))
        })
    }
}

/// Live senders, and whose claims hold the end of the campaign.
fn print_senders(
    live: &[LiveSender],
    holders: &[Holder],
    c: &Campaign,
    n: &Counts,
) -> Result<(), OutputError> {
    if live.is_empty() {
        outln!("  senders   none running")?;
    }
    for (i, s) in live.iter().enumerate() {
        outln!(
            "  {} {}:{} sending {} since {}, rate {}, {} connection(s){}, holding {} claim(s)",
            if i == 0 { "senders  " } else { "         " },
            s.host,
            s.pid,
            s.issue_id,
            s.started_at.format("%H:%M:%S UTC"),
            s.rate_per_second
                .map_or("unlimited".to_string(), |r| format!("{r:.1}/s")),
            s.concurrency,
            s.daily_cap
                .map(|cap| format!(", daily cap {cap}"))
                .unwrap_or_default(),
            s.claims
        )?;
    }
    // Only when nothing is queued do the claims hold the end of the campaign.
    if n.queued == 0
        && let Some(waiting) = campaign::waiting_for(holders, None)
    {
        outln!("  claims    {waiting}")?;
    }
    for h in holders.iter().filter(|h| !h.alive) {
        outln!(
            "  claims    {} claim(s) of sender {}, which has stopped: the next `lscp-mail send issues/{}` takes them at once",
            h.claims,
            h.name.as_deref().unwrap_or("(unnamed)"),
            c.issue_id
        )?;
    }
    Ok(())
}

fn describe(e: &estimate::Estimate, i: &estimate::Inputs) -> String {
    use estimate::{Basis, Estimate};
    match e {
        Estimate::Done => "nothing left to send".into(),
        Estimate::NoSender => "no sender is running: `lscp-mail send` resumes the campaign".into(),
        Estimate::TooEarly => "sending has just begun with no rate limit: no pace yet".into(),
        Estimate::Stalled { due } => format!(
            "nothing sent in the last minute although {due} could go: is the mail server answering? (see the last errors)"
        ),
        Estimate::Finish {
            at,
            per_second,
            basis,
            waiting_until,
            capped_until,
        } => {
            let secs = (*at - i.now).num_milliseconds().max(0) as f64 / 1000.0;
            let pace = match basis {
                Basis::Configured => format!("{per_second:.1}/s, the running senders' rate"),
                Basis::Observed { seconds } => {
                    format!("{per_second:.1}/s, as achieved over the last {seconds:.0} s")
                }
            };
            let mut s = format!(
                "finish {} (in {}) at {pace}",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                human(secs)
            );
            if let Some(w) = waiting_until {
                s.push_str(&format!(
                    "; retries after temporary refusals wait until {}",
                    w.format("%H:%M:%S UTC")
                ));
            }
            if let Some(d) = capped_until {
                s.push_str(&format!(
                    "; the daily cap holds the rest until {}",
                    d.format("%Y-%m-%d %H:%M UTC")
                ));
            }
            s
        }
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
            control::pause(store, &c).await.map_err(failure)?;
            outln!(
                "{}: paused; running senders finish the message in hand on each connection and give back the rest. `lscp-mail send issues/{}` resumes it.",
                c.issue_id,
                c.issue_id
            )?;
            Ok(code(exit::OK))
        })
    }
}

impl CancelArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            let left = control::cancel(store, &c).await.map_err(failure)?;
            outln!(
                "{}: cancelled; {} sent before, {} will not be sent{}.",
                c.issue_id,
                left.sent,
                left.not_sent,
                if left.in_hand > 0 {
                    format!(
                        " but for at most {} message(s) in hand (one per connection of the senders running now)",
                        left.in_hand
                    )
                } else {
                    String::new()
                }
            )?;
            Ok(code(exit::OK))
        })
    }
}

impl RetryFailedArgs {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        with_campaign(config, self.issue.0, async |store, c| {
            let n = control::retry_failed(store, &c).await.map_err(failure)?;
            outln!(
                "{}: {n} failed deliveries queued again (bounced and departed readers stay out). `lscp-mail send issues/{}` sends them.",
                c.issue_id,
                c.issue_id
            )?;
            Ok(code(exit::OK))
        })
    }
}
