//! `status`, `pause`, `cancel` and `retry-failed`: looking after a campaign `send` began.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::db::with_store;
use super::output::{OutputError, escape_controls};
use super::{UsageError, code, exit};
use crate::config::Config;
use crate::content::IssueId;
use crate::send::ledger::{self, Campaign, CampaignStatus};
use crate::send::{campaign, estimate};
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
            eprintln!("error: {}", escape_controls(&e.to_string()));
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
            let live = ledger::live_senders(pool).await?;
            let b = store.bounce_counts(c.id).await?;
            outln!(
                "  reports   {} hard bounces, {} soft bounces, {} complaints, {} unsubscribes by email",
                b.hard,
                b.soft,
                b.complaints,
                b.unsubscribes
            )?;
            let holders = ledger::holders(pool, c.id).await?;
            print_senders(&live, &holders, &c, &n)?;
            if c.status == CampaignStatus::Sending && n.remaining() > 0 {
                let ours: Vec<&ledger::LiveSender> =
                    live.iter().filter(|s| s.issue_id == c.issue_id).collect();
                let inputs = estimate_inputs(pool, &c, &n, &ours).await?;
                outln!(
                    "  estimate  {}",
                    describe(&estimate::estimate(&inputs), &inputs)
                )?;
            }
            let errors = ledger::last_errors(pool, c.id, 5).await?;
            if !errors.is_empty() {
                outln!("  last errors:")?;
                for (at, status, reply) in errors {
                    outln!("    {} {status:7} {reply}", at.format("%Y-%m-%d %H:%M:%S"))?;
                }
            }
            Ok(code(exit::OK))
        })
    }
}

/// Live senders, and whose claims hold the end of the campaign.
fn print_senders(
    live: &[ledger::LiveSender],
    holders: &[ledger::Holder],
    c: &Campaign,
    n: &ledger::Counts,
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

/// What the estimate needs, read from the ledger and the live senders.
async fn estimate_inputs(
    pool: &sqlx::PgPool,
    c: &Campaign,
    n: &ledger::Counts,
    senders: &[&ledger::LiveSender],
) -> anyhow::Result<estimate::Inputs> {
    let now = Utc::now();
    let paces: Vec<estimate::Pace> = senders
        .iter()
        .map(|s| estimate::Pace {
            rate_per_second: s.rate_per_second,
            started_at: s.started_at,
        })
        .collect();
    let window = estimate::observed_seconds(&paces, now);
    let sent_recently = if window > 0.0 {
        ledger::sent_in_last(pool, c.id, window).await?
    } else {
        0
    };
    let (due, next_retry) = ledger::due_now(pool, c.id).await?;
    let cap = match senders.iter().filter_map(|s| s.daily_cap).min() {
        Some(per_day) => {
            let today = campaign::start_of_day(now);
            Some(estimate::Cap {
                per_day: per_day.into(),
                used_today: ledger::used_since(pool, today).await?,
                next_day: campaign::start_of_day(today + chrono::Duration::hours(25)),
            })
        }
        None => None,
    };
    Ok(estimate::Inputs {
        now,
        remaining: n.remaining(),
        due,
        next_retry,
        senders: paces,
        sent_recently,
        cap,
    })
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
            if c.status != CampaignStatus::Sending {
                return Err(
                    UsageError(format!("{} is {}, not sending", c.issue_id, c.status)).into(),
                );
            }
            ledger::set_status(store.pool(), c.id, CampaignStatus::Paused).await?;
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
            if matches!(
                c.status,
                CampaignStatus::Finished | CampaignStatus::Cancelled
            ) {
                return Err(UsageError(format!("{} is already {}", c.issue_id, c.status)).into());
            }
            // Running senders hear of it at once (the status trigger notifies them): each
            // connection finishes the message in hand and gives back the rest.
            ledger::set_status(store.pool(), c.id, CampaignStatus::Cancelled).await?;
            let n = ledger::counts(store.pool(), c.id).await?;
            let in_hand = in_hand(store, &c).await?;
            outln!(
                "{}: cancelled; {} sent before, {} will not be sent{}.",
                c.issue_id,
                n.sent,
                n.remaining(),
                if in_hand > 0 {
                    format!(
                        " but for at most {in_hand} message(s) in hand (one per connection of the senders running now)"
                    )
                } else {
                    String::new()
                }
            )?;
            Ok(code(exit::OK))
        })
    }
}

/// How many messages running senders of `c` may have in hand: one per connection.
async fn in_hand(store: &Store, c: &Campaign) -> anyhow::Result<i64> {
    Ok(ledger::live_senders(store.pool())
        .await?
        .iter()
        .filter(|s| s.issue_id == c.issue_id)
        .map(|s| i64::from(s.concurrency).min(s.claims))
        .sum())
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
            outln!(
                "{}: {n} failed deliveries queued again (bounced and departed readers stay out). `lscp-mail send issues/{}` sends them.",
                c.issue_id,
                c.issue_id
            )?;
            Ok(code(exit::OK))
        })
    }
}
