//! `lscp-mail serve` as a newcomer runs it: it migrates, listens, answers, and stops cleanly on
//! Ctrl-C; without a mail server it says what to set.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::smtp_sink::SmtpSink;
use crate::common::store::url_of;
use crate::common::web::Visitor;
use sqlx::Connection;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrations = false)]
async fn serve_migrates_answers_and_stops_cleanly_on_ctrl_c(
    _pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, base) = start_serve(&options, "smtp://127.0.0.1:9", &dir, Stdio::piped());
    let health = healthy(&mut server, &base).await;
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let signup = reqwest::Client::new()
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
    let out = common::lscp_mail(&["serve"])
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .output()
        .expect("lscp-mail runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SMTP_URL"), "{stderr}");
}

#[sqlx::test(migrations = false)]
async fn serve_logs_no_address_or_token_when_the_mail_server_refuses_a_sign_up(
    _pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    // As postfix answers, quoting the address.
    let sink = SmtpSink::start(&[
        "-f",
        "RCPT",
        "-B",
        "550 5.1.1 <Refused.Reader@example.org>: Recipient address rejected: User unknown",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.log");
    let (mut server, base) = start_serve(
        &options,
        &sink.url(),
        &dir,
        std::fs::File::create(&log).expect("log file").into(),
    );
    healthy(&mut server, &base).await;
    let mut visitor = Visitor::new(&base);
    let form = visitor.get("/subscribe").await;
    let csrf = form.form_token("/subscribe");
    let page = visitor
        .post(
            "/subscribe",
            &[
                ("csrf", csrf.as_str()),
                ("email", "Refused.Reader@example.org"),
                ("topic", "training"),
            ],
        )
        .await;
    assert_eq!(page.status, reqwest::StatusCode::OK);
    let token: Vec<u8> = sqlx::query_scalar!("SELECT token_hash FROM signup_confirmations")
        .fetch_one(
            &mut PgConnection::connect_with(&options)
                .await
                .expect("connects"),
        )
        .await
        .expect("a confirmation link was made");
    assert_eq!(token.len(), 32);

    let deadline = Instant::now() + Duration::from_secs(30);
    let logged = loop {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.contains("a sign-up email was not sent") {
            break logged;
        }
        assert!(
            Instant::now() < deadline,
            "no warning was logged:\n{logged}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();

    assert!(
        logged.contains("5.1.1 <[address]>: Recipient address rejected"),
        "the reason is kept: {logged}"
    );
    let lower = logged.to_lowercase();
    assert!(
        !lower.contains("refused.reader") && !lower.contains("example.org"),
        "the address is in the log:\n{logged}"
    );
    assert!(
        !logged.contains("/confirm/"),
        "a link is in the log:\n{logged}"
    );
}

/// `lscp-mail serve` on a free port in `dir`, its standard error (where it logs, at info
/// level and above) to `stderr`; the server and its base URL.
fn start_serve(
    options: &PgConnectOptions,
    smtp_url: &str,
    dir: &tempfile::TempDir,
    stderr: Stdio,
) -> (std::process::Child, String) {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = common::lscp_mail(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env("DATABASE_URL", url_of(options))
        .env("SMTP_URL", smtp_url)
        .env("LSCP_MAIL_SITE__BASE_URL", &base)
        .env("LSCP_MAIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("lscp-mail starts");
    (server, base)
}

/// Waits (up to a minute) for the server's /healthz to answer.
async fn healthy(server: &mut std::process::Child, base: &str) -> reqwest::Response {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http.get(format!("{base}/healthz")).send().await {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => {
                assert!(server.try_wait().ok().flatten().is_none(), "serve exited");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("serve did not answer within a minute: {e}"),
        }
    }
}
