//! The command line: one `Args` struct with a `run` per subcommand file. `main.rs` only parses
//! and reports; everything here is callable from tests.

// First, so that `outln!` and `out!` are in scope in every command's module.
#[macro_use]
pub mod output;
mod bounces;
mod campaign;
mod check;
mod compose;
mod db;
mod doctor;
mod new;
mod preview;
pub mod report;
mod send;
mod serve;
mod subscribers;
mod topics;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Exit codes a script can rely on.
pub mod exit {
    /// Done; for `check`, no errors (and no warnings with `--strict`).
    pub const OK: u8 = 0;
    /// The input has problems: `check` found errors, or `compose` refused a broken issue.
    pub const INPUT: u8 = 1;
    /// The command line is wrong (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// Anything else failed: configuration, files, database, mail server.
    pub const FAILURE: u8 = 3;
    /// `send` stopped before finishing (interrupted, paused, daily cap): run it again to resume.
    /// (EX_TEMPFAIL from sysexits.h: try again later.)
    pub const RESUMABLE: u8 = 75;
}

#[derive(Debug, Parser)]
#[command(
    name = "lscp-mail",
    version,
    about = "Compose, check, send and serve the LSCP practitioners' newsletter",
    long_about = "Compose, check, send and serve the LSCP practitioners' newsletter.\n\n\
An issue is a folder such as issues/2026-02 holding issue.toml and one TOML file per section.\n\
Settings come from --config, else ./lscp-mail.toml when present, else built-in defaults; \
the environment overrides them (DATABASE_URL, SMTP_URL, LSCP_MAIL_<SECTION>__<KEY>).",
    after_help = "Examples:\n  lscp-mail compose issues/2026-02\n  lscp-mail check issues/2026-02 --strict\n\n\
Exit codes: 0 done, 1 the input has errors, 2 bad usage, 3 other failure, \
75 send stopped before finishing (run it again to resume)."
)]
pub struct Cli {
    /// Settings file [default: ./lscp-mail.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Compose(compose::Args),
    Check(check::Args),
    Preview(preview::Args),
    New(new::Args),
    Db(db::Args),
    Subscribers(subscribers::Args),
    Topics(topics::Args),
    Serve(serve::Args),
    Send(send::Args),
    Status(campaign::StatusArgs),
    Pause(campaign::PauseArgs),
    Cancel(campaign::CancelArgs),
    RetryFailed(campaign::RetryFailedArgs),
    Doctor(doctor::Args),
    Bounces(bounces::Args),
}

/// An error the user can fix by calling the command differently: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let command = self.command;
        match command {
            // doctor reports a configuration that does not load as one of its checks.
            Command::Doctor(args) => return args.run(self.config.as_deref()),
            // preview reads the configuration again on every rebuild, and shows a broken one.
            Command::Preview(args) => return args.run(self.config),
            _ => {}
        }
        let config = Config::load(self.config.as_deref())?;
        // Said as the configuration loads, whatever the command: a colour that fails one reader
        // fails them in every issue. `check` and `compose` list them with the issue's own.
        if !matches!(command, Command::Check(_) | Command::Compose(_)) {
            for warning in config.contrast_warnings() {
                eprintln!("warning: {warning}");
            }
        }
        match command {
            Command::Compose(args) => args.run(&config),
            Command::Check(args) => args.run(&config),
            Command::New(args) => args.run(&config),
            Command::Db(args) => args.run(&config),
            Command::Subscribers(args) => args.run(&config),
            Command::Topics(args) => args.run(&config),
            Command::Serve(args) => args.run(config),
            Command::Send(args) => args.run(&config),
            Command::Status(args) => args.run(&config),
            Command::Pause(args) => args.run(&config),
            Command::Cancel(args) => args.run(&config),
            Command::RetryFailed(args) => args.run(&config),
            Command::Doctor(args) => args.run(self.config.as_deref()),
            Command::Preview(args) => args.run(self.config),
            Command::Bounces(args) => args.run(&config),
        }
    }
}

/// The exit code for an error that reached `main`.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        exit::USAGE
    } else {
        exit::FAILURE
    }
}

pub(crate) fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
