use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{code, exit};
use crate::preview::{self, Sources};

/// Show the issue as the email in a browser, updated on every save
///
/// Serves a page with the email as `compose` makes it, a bar above it to pick a reader's
/// topics, phone (375 px) or desktop (640 px) width, the plain-text part and the .eml. Saving a
/// file of the issue, of the templates or the configuration updates the open page at once; while
/// the issue has errors the page lists them instead of the email.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lscp-mail preview issues/2026-02 --open\n  \
lscp-mail preview issues/2026-02 --listen 127.0.0.1:9000 --templates my-templates\n\n\
If the port is taken, the next free one is used; the address is printed.\n\
Stop it with Ctrl-C.\n\n\
Exit codes: 0 stopped, 2 bad usage, 3 could not start."
)]
pub struct Args {
    /// The issue folder, such as issues/2026-02
    pub issue: PathBuf,

    /// Address and port to listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8025")]
    pub listen: SocketAddr,

    /// Open the preview in the default browser
    #[arg(long)]
    pub open: bool,

    /// A folder of templates that replace the built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl Args {
    pub fn run(self, config_file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
        let sources = Sources {
            issue: self.issue.clone(),
            config: config_file,
            templates: self.templates,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let listener = preview::bind(self.listen).await.with_context(|| {
                format!("cannot listen on {} or the ports after it", self.listen)
            })?;
            let addr = listener.local_addr()?;
            let url = format!("http://{addr}/");
            let taken = if addr.port() != self.listen.port() && self.listen.port() != 0 {
                format!(" (port {} was taken)", self.listen.port())
            } else {
                String::new()
            };
            eprintln!(
                "preview of {} at {url}{taken}; it updates on every save (Ctrl-C stops)",
                self.issue.display()
            );
            if self.open {
                open::that_detached(&url)
                    .with_context(|| format!("cannot open {url} in a browser"))?;
            }
            preview::serve(sources, listener, shutdown()).await?;
            eprintln!("stopped");
            Ok(code(exit::OK))
        })
    }
}

async fn shutdown() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
