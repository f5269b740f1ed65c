use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{code, exit};
use crate::config::Config;
use crate::mail::smtp::SmtpTarget;
use crate::store::Store;
use crate::web::{self, AppState};

/// Run the public site behind the newsletter's links
///
/// Serves the preferences and unsubscribe pages (`/p/TOKEN`, `/u/TOKEN`, including RFC 8058
/// one-click unsubscribes), the sign-up form with double opt-in (`/subscribe`; confirmation
/// emails go out through SMTP_URL), the archive of sent issues (`/issues`) with their calendar
/// files, and `/healthz`. Links in emails start with `site.base_url`: put a TLS-terminating
/// reverse proxy for that address in front of this server.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail serve\n  lscp-mail serve --listen 0.0.0.0:8080 --issues /srv/lscp/issues\n\n\
Needs DATABASE_URL and SMTP_URL (or database_url and [smtp] url in lscp-mail.toml).\n\
Stop it with Ctrl-C: it finishes the requests under way first.\n\n\
Exit codes: 0 stopped, 2 bad usage, 3 could not start (database, mail server URL, address in use)."
)]
pub struct Args {
    /// Address and port to listen on [default: serve.listen, 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The folder of issues the archive shows [default: serve.issues_dir, ./issues]
    #[arg(long, value_name = "DIR")]
    pub issues: Option<PathBuf>,
}

impl Args {
    pub fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        let mut config = config;
        if let Some(dir) = self.issues {
            config.serve.issues_dir = dir;
        }
        let listen = self.listen.unwrap_or(config.serve.listen);
        let smtp = SmtpTarget::from_config(&config.smtp)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let store = Store::connect(&config).await?;
            store.migrate().await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let base = config.site.base_url.clone();
            let state = AppState::new(store, config, smtp).await?;
            eprintln!("listening on http://{listen} for the links to {base} (Ctrl-C stops)");
            web::serve(listener, state, shutdown())
                .await
                .context("the server stopped")?;
            eprintln!("stopped");
            Ok(code(exit::OK))
        })
    }
}

async fn shutdown() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling here: run until killed.
        std::future::pending::<()>().await;
    }
}
