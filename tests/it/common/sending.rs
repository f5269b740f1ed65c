//! Running a campaign in-process against a test database and an SMTP port.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lscp_mail::config::Config;
use lscp_mail::content::{Issue, TopicCatalog, load_issue};
use lscp_mail::mail::smtp::SmtpTarget;
use lscp_mail::render::Renderer;
use lscp_mail::send::campaign::{self, Quiet, RunReport, SendError, SendOptions};
use lscp_mail::send::personalise::Personaliser;
use lscp_mail::send::throttle::Rate;
use lscp_mail::store::Store;
use secrecy::SecretString;

pub fn shipped_issue(id: &str) -> Issue {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("issues")
        .join(id);
    load_issue(&dir, &TopicCatalog::builtin())
        .issue
        .expect("shipped issue loads")
}

/// No rate limit, short retries: tests wait on outcomes, not on the clock.
pub fn fast_options() -> SendOptions {
    SendOptions {
        rate: Rate::Unlimited,
        concurrency: 2,
        batch: 5,
        retry_after: Duration::from_millis(300),
        smtp_timeout: Duration::from_secs(10),
        lease: Duration::from_secs(30),
        ..SendOptions::from_config(&Config::default())
    }
}

/// Prepares the campaign and runs it to its end with SMTP at 127.0.0.1:`port`.
pub async fn send_with(
    store: &Store,
    issue: &Issue,
    port: u16,
    options: &SendOptions,
) -> RunReport {
    send_with_config(store, issue, port, options, &Config::default()).await
}

/// As [`send_with`], with settings of the test's own (DKIM, say).
pub async fn send_with_config(
    store: &Store,
    issue: &Issue,
    port: u16,
    options: &SendOptions,
    config: &Config,
) -> RunReport {
    let target = SmtpTarget::parse(&SecretString::from(format!("smtp://127.0.0.1:{port}")))
        .expect("smtp url");
    send_to(store, issue, &target, options, config).await
}

/// As [`send_with_config`], to any mail server (one with STARTTLS and a login, say).
pub async fn send_to(
    store: &Store,
    issue: &Issue,
    target: &SmtpTarget,
    options: &SendOptions,
    config: &Config,
) -> RunReport {
    try_send_to(store, issue, target, options, config)
        .await
        .expect("sends")
}

/// As [`send_to`], for a run expected to fail: how it ended.
pub async fn try_send_to(
    store: &Store,
    issue: &Issue,
    target: &SmtpTarget,
    options: &SendOptions,
    config: &Config,
) -> Result<RunReport, SendError> {
    let catalog = TopicCatalog::builtin();
    let renderer = Renderer::new(None).expect("templates");
    let personaliser = Personaliser::new(issue, config, &catalog, &renderer).expect("renders");
    let campaign = campaign::prepare(store, issue, options)
        .await
        .expect("campaign");
    let (_stop, rx) = campaign::stop_channel();
    campaign::run(
        store,
        issue,
        campaign,
        options,
        target,
        personaliser,
        rx,
        Arc::new(Quiet),
    )
    .await
}
