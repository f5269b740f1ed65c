use std::path::PathBuf;
use std::process::ExitCode;

use super::{UsageError, code, exit};
use crate::config::Config;
use crate::content::IssueId;
use crate::next_issue::{self, NewIssueError};

/// Start next month's issue from the last one
///
/// Creates issues/YYYY-MM with an issue.toml for the new month (published on its first
/// weekday) whose title, subject, preheader and intro are placeholders to write, and the
/// sections that stay true: diary dates still ahead, courses with a session still to come (past
/// sessions dropped) and the saved links. Articles are not copied. The placeholders are `check`
/// warnings, so the new issue passes `check` and fails `check --strict` until they are written.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail new 2026-03\n  \
lscp-mail new 2026-03 --from issues/2026-02\n\n\
The folder goes in serve.issues_dir (./issues by default). An existing folder is never \
overwritten.\n\n\
Exit codes: 0 created, 1 the folder exists or there is no issue to start from (nothing \
written), 2 bad usage, 3 could not run.")]
pub struct Args {
    /// The new issue's month, such as 2026-03
    pub month: String,

    /// The issue to start from [default: the latest one before MONTH]
    #[arg(long, value_name = "ISSUE")]
    pub from: Option<PathBuf>,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let month = IssueId::parse(&self.month).map_err(|e| UsageError(e.to_string()))?;
        let issues = &config.serve.issues_dir;
        let dir = issues.join(month.to_string());
        let made = (|| {
            let from = match &self.from {
                Some(f) => f.clone(),
                None => next_issue::latest_before(issues, month)?,
            };
            let plan = next_issue::plan(&dir, month, &from)?;
            next_issue::write(&plan)?;
            Ok::<_, NewIssueError>(plan)
        })();
        let plan = match made {
            Ok(plan) => plan,
            Err(e) if e.is_input() => {
                eprintln!("error: {e}");
                return Ok(code(exit::INPUT));
            }
            Err(e) => return Err(e.into()),
        };
        outln!(
            "created {} from {}, to be published {}",
            plan.dir.display(),
            plan.from.display(),
            plan.published.format("%A %-d %B %Y")
        )?;
        outln!("  issue.toml: title, subject, preheader and intro still to write")?;
        for note in &plan.notes {
            outln!("  {note}")?;
        }
        outln!(
            "next: write the placeholders and the new articles, with `lscp-mail preview {}` open",
            plan.dir.display()
        )?;
        Ok(code(exit::OK))
    }
}
