//! The one way the tests run the `lscp-mail` binary: in an environment of the test's making,
//! so that a developer's shell (an exported `LSCP_MAIL_SEND__RATE`, `DATABASE_URL`,
//! `SMTP_URL`, a `~/.cache`) cannot change what a test sees.

use std::process::{Command, Output};

/// What the child keeps from the test's own environment: where programs are, where temporary
/// files go, backtraces for a panic, and where a coverage run (`cargo llvm-cov`) collects the
/// child's counts. Nothing here is read as configuration.
const KEPT: [&str; 4] = ["PATH", "TMPDIR", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"];

/// `lscp-mail ARGS` in the repository's folder (its `lscp-mail.toml`, its `issues/`), with
/// no other variable than [`KEPT`]: a test sets what the run reads (`DATABASE_URL`,
/// `SMTP_URL`, `LSCP_MAIL_…`, `XDG_CACHE_HOME`), and another folder with `.current_dir`.
pub fn lscp_mail(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lscp-mail"));
    cmd.args(args)
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for key in KEPT {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd
}

/// `lscp-mail ARGS` run to its end in an empty folder (no `lscp-mail.toml` read) against
/// `database_url` (none: no database configured).
pub fn run_lscp_mail(database_url: Option<&str>, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = lscp_mail(args);
    cmd.current_dir(dir.path());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("lscp-mail runs").into()
}

/// How a run ended: its exit code (-1 when a signal ended it) and what it printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
