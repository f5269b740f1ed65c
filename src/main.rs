use std::process::ExitCode;

use clap::Parser;
use lscp_mail::cli::output::{escape_controls, is_closed_stdout};
use lscp_mail::cli::{Cli, exit_code_for};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LSCP_MAIL_LOG")
                // sqlx warns about a URL parameter it ignores with its value, which may be a
                // password (`?sslpassword=…`).
                .unwrap_or_else(|_| "warn,sqlx_postgres::options=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.run() {
        Ok(code) => code,
        // `lscp-mail status 2026-02 | head -1`: the reader has what it wanted.
        Err(err) if is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors quote addresses and names as given: escaped like everything printed.
            eprintln!("error: {}", escape_controls(&err.to_string()));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", escape_controls(&cause.to_string()));
            }
            ExitCode::from(exit_code_for(&err))
        }
    }
}
