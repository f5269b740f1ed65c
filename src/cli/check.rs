use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::report::Report;
use super::{code, exit};
use crate::config::Config;
use crate::links;
use crate::render::Audience;

/// Validate an issue without writing anything
///
/// Reports every problem with its file, line and column: TOML errors, unknown keys and topics,
/// a weekday that does not match its date, sessions that end before they start or fall before
/// the issue is published, courses with no way to book, images without alt text, empty
/// sections, and an email too large for Gmail. With --links, also every address the issue
/// gives (links, buttons, booking and saved links, remote images): HEAD, else GET, redirects
/// followed; a dead one is an error, a permanent redirect a warning with the new address.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail check issues/2026-02\n  lscp-mail check issues/2026-02 --strict\n  \
lscp-mail check issues/2026-02 --links\n\n\
Exit codes: 0 no errors (warnings allowed unless --strict), 1 errors found (or warnings, with \
--strict), 2 bad usage (an unknown option, --link-timeout without --links), 3 could not run \
(the configuration, a file)."
)]
pub struct Args {
    /// The issue folder, such as issues/2026-02
    pub issue: PathBuf,

    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,

    /// A folder of templates that replace the built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Also request every address of the issue (needs the network); working ones are
    /// remembered for a day in $XDG_CACHE_HOME/lscp-mail/links.json (~/.cache/…)
    #[arg(long)]
    pub links: bool,

    /// With --links: how long one request may take
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "links")]
    pub link_timeout: u64,
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        let mut report = Report::build(
            &self.issue,
            config,
            self.templates.as_deref(),
            &Audience::Everyone,
        )?;
        if self.links {
            let options = links::Options {
                timeout: Duration::from_secs(self.link_timeout),
                ..Default::default()
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let found = runtime.block_on(links::check(&self.issue, &options));
            report.loaded.diagnostics.extend(found);
        }
        for d in report.diagnostics() {
            outln!("{d}")?;
        }
        let (errors, warnings) = (report.error_count(), report.warning_count());
        let failed = errors > 0 || (self.strict && warnings > 0);
        outln!(
            "{}: {} error{}, {} warning{}{}",
            self.issue.display(),
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" },
            if self.strict && warnings > 0 && errors == 0 {
                " (--strict: warnings fail the check)"
            } else {
                ""
            }
        )?;
        Ok(code(if failed { exit::INPUT } else { exit::OK }))
    }
}
