//! `check --links` against a local server on 127.0.0.1 (no other host is ever asked): a dead
//! link is an error with its file, line and field; a permanent redirect a warning with the new
//! address; HEAD refused means GET; a slow server is a timeout; good answers are cached.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// Counts the requests each path gets, by method.
type Hits = Arc<Mutex<HashMap<String, usize>>>;

async fn answer(hits: Hits, method: Method, uri: Uri) -> Response {
    *hits
        .lock()
        .expect("lock")
        .entry(format!("{method} {}", uri.path()))
        .or_default() += 1;
    match uri.path() {
        "/ok" => StatusCode::OK.into_response(),
        "/gone" => StatusCode::NOT_FOUND.into_response(),
        "/moved" => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/ok")]).into_response(),
        "/elsewhere-for-now" => (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response(),
        "/no-head" if method == Method::HEAD => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        "/no-head" => StatusCode::OK.into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn start_server() -> (String, Hits) {
    let hits: Hits = Arc::default();
    let h = hits.clone();
    let app =
        Router::new().fallback(move |method: Method, uri: Uri| answer(h.clone(), method, uri));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

/// An issue whose every address points at the local server.
fn write_issue(dir: &Path, base: &str) {
    std::fs::write(
        dir.join("issue.toml"),
        "title = \"Links\"\nmonth = \"2026-02\"\npublished = 2026-02-02\n\
         subject = \"A subject\"\npreheader = \"A preheader long enough to read well in an inbox list.\"\n",
    )
    .expect("issue.toml");
    std::fs::write(
        dir.join("01-news.toml"),
        format!(
            "kind = \"article\"\nheading = \"News\"\nbody = \"\"\"\n\
             Read [the guidance]({base}/ok) and [the old page]({base}/gone).\n\
             Write to [us](mailto:lscp.info@leeds.gov.uk) or [nobody](mailto:not-an-address).\n\
             \"\"\"\n\n[[buttons]]\nlabel = \"Moved\"\nurl = \"{base}/moved\"\n\n\
             [[buttons]]\nlabel = \"No HEAD\"\nurl = \"{base}/no-head\"\n\n\
             [[buttons]]\nlabel = \"Temporary\"\nurl = \"{base}/elsewhere-for-now\"\n"
        ),
    )
    .expect("news");
    std::fs::write(
        dir.join("02-links.toml"),
        format!(
            "kind = \"links\"\nheading = \"Saved\"\n\n[[links]]\ntitle = \"Slow\"\nurl = \"{base}/slow\"\n"
        ),
    )
    .expect("links");
}

fn check_links(issue: &Path, cache_home: &Path) -> (i32, String) {
    let out = crate::common::lscp_mail(&["check", "--links", "--link-timeout", "1"])
        .arg(issue)
        .env("XDG_CACHE_HOME", cache_home)
        .output()
        .expect("lscp-mail runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_links_reports_each_dead_or_moved_address_with_its_place_and_caches_the_good_ones() {
    let (base, hits) = start_server().await;
    let issue = tempfile::tempdir().expect("issue");
    let cache = tempfile::tempdir().expect("cache");
    write_issue(issue.path(), &base);
    let news = issue.path().join("01-news.toml");
    let links = issue.path().join("02-links.toml");

    let (code, stdout) = {
        let (i, c) = (issue.path().to_path_buf(), cache.path().to_path_buf());
        tokio::task::spawn_blocking(move || check_links(&i, &c))
            .await
            .expect("join")
    };
    assert_eq!(code, 1, "dead links are errors:\n{stdout}");
    let at = |file: &Path, needle: &str| {
        let text = std::fs::read_to_string(file).expect("read");
        let (n, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .expect("needle");
        format!(
            "{}:{}:{}",
            file.display(),
            n + 1,
            line.find(needle).expect("col") + 1
        )
    };
    let expect = [
        format!(
            "{}: error: `{base}/gone` does not work: 404 Not Found (field `body`)",
            at(&news, &format!("{base}/gone"))
        ),
        format!(
            "{}: error: `mailto:not-an-address` does not work: `not-an-address` is not an email address (field `body`)",
            at(&news, "mailto:not-an-address")
        ),
        format!(
            "{}: warning: `{base}/moved` has moved permanently to `{base}/ok` (field `buttons[0].url`)",
            at(&news, &format!("\"{base}/moved"))
        ),
        format!(
            "{}:6:7: error: `{base}/slow` does not work: no answer in time (timeout) (field `links[0].url`)",
            links.display()
        ),
    ];
    for line in &expect {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    for fine in [
        "/ok`",
        "/no-head`",
        "/elsewhere-for-now`",
        "mailto:lscp.info",
    ] {
        assert!(
            !stdout.contains(&format!("{fine} does not work"))
                && !stdout.contains(&format!("{fine} has moved")),
            "{fine} works:\n{stdout}"
        );
    }
    let first: HashMap<String, usize> = hits.lock().expect("lock").clone();
    assert_eq!(first.get("HEAD /no-head"), Some(&1));
    assert_eq!(
        first.get("GET /no-head"),
        Some(&1),
        "GET after HEAD is refused"
    );
    assert_eq!(
        first.get("GET /ok"),
        None,
        "HEAD is enough when it is answered"
    );

    // A second run asks only about what did not work.
    let (code, again) = {
        let (i, c) = (issue.path().to_path_buf(), cache.path().to_path_buf());
        tokio::task::spawn_blocking(move || check_links(&i, &c))
            .await
            .expect("join")
    };
    assert_eq!(code, 1);
    assert!(
        again.contains(&expect[0]) && again.contains(&expect[2]),
        "{again}"
    );
    let second = hits.lock().expect("lock").clone();
    assert_eq!(
        second.get("HEAD /no-head"),
        first.get("HEAD /no-head"),
        "cached"
    );
    assert_eq!(
        second.get("HEAD /moved"),
        first.get("HEAD /moved"),
        "cached"
    );
    assert_eq!(
        second.get("HEAD /gone").copied(),
        first.get("HEAD /gone").map(|n| n + 1),
        "a failure is asked again"
    );
    assert!(cache.path().join("lscp-mail/links.json").is_file());
}

#[test]
fn check_requests_nothing_without_links() {
    let issue = tempfile::tempdir().expect("issue");
    // An address nothing listens on: without --links it is never asked.
    write_issue(issue.path(), "http://127.0.0.1:9");
    let out = crate::common::lscp_mail(&["check"])
        .arg(issue.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("does not work"), "{stdout}");
}
