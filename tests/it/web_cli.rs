//! `lscp-mail serve` as a newcomer runs it: it migrates, listens, answers, and stops cleanly on
//! Ctrl-C; without a mail server it says what to set.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::store_support::url_of;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrations = false)]
async fn serve_migrates_answers_and_stops_cleanly_on_ctrl_c(
    _pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_lscp-mail"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env("DATABASE_URL", url_of(&options))
        .env("SMTP_URL", "smtp://127.0.0.1:9")
        .env("LSCP_MAIL_SITE__BASE_URL", &base)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lscp-mail starts");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        match http.get(format!("{base}/healthz")).send().await {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => {
                assert!(server.try_wait().ok().flatten().is_none(), "serve exited");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("serve did not answer within a minute: {e}"),
        }
    };
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let signup = http
        .get(format!("{base}/subscribe"))
        .send()
        .await
        .expect("answers");
    assert_eq!(signup.status(), reqwest::StatusCode::OK);

    let interrupted = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on Ctrl-C");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::io::read_to_string(server.stderr.take().expect("stderr")).unwrap_or_default();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains(&format!("listening on {base} for the links to {base}")),
        "{stderr}"
    );
}

#[test]
fn serve_without_a_mail_server_says_what_to_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_lscp-mail"))
        .arg("serve")
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env_remove("SMTP_URL")
        .output()
        .expect("lscp-mail runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SMTP_URL"), "{stderr}");
}
