//! `lscp-mail preview`: the page, its variants, and what an editor sees after each save, from a
//! server started in-process on a free port (and once from the binary).

use std::path::Path;
use std::time::Duration;

use crate::common::issues::copy_issue;
use crate::common::preview::Running;
use lscp_mail::preview::Sources;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} holds {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[tokio::test]
async fn the_page_shows_the_issue_and_the_variant_a_reader_of_some_topics_gets() {
    let (_tmp, issue) = copy_issue("2026-02");
    let server = Running::start(&issue, None).await;

    let (status, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("February 2026 newsletter"), "{page}");
    assert!(page.contains("<iframe id=\"email\""), "the email is framed");
    assert!(page.contains("/message.eml"), "a link to the .eml");
    assert!(page.contains("Phone (375 px)") && page.contains("Plain text"));
    assert!(page.contains("<script>"), "the page reloads itself");

    let (_, full) = server.get("/email").await;
    let events_heading = "Shaping the future of contextual safeguarding in Leeds";
    assert!(
        full.contains(events_heading),
        "events section in the full issue"
    );
    assert!(full.contains("LSCP Training - New dates for 2026"));
    assert!(!full.contains("<script"), "the email has no script");

    let (_, training) = server.get("/email?topics=training").await;
    assert!(training.contains("LSCP Training - New dates for 2026"));
    assert!(
        !training.contains(events_heading),
        "a reader of training only gets no events section"
    );
    let (_, page) = server.get("/?topics=training,events").await;
    assert!(
        page.contains("src=\"/email?topics=training%2Cevents\""),
        "{page}"
    );

    let (_, text) = server.get("/email.txt?topics=training").await;
    assert!(text.contains("LSCP Training - New dates for 2026"));
    assert!(!text.contains("<"), "the plain-text part is text");

    let eml = reqwest::get(format!("{}/message.eml", server.base))
        .await
        .expect("eml");
    assert_eq!(
        eml.headers()["content-type"].to_str().expect("ascii"),
        "message/rfc822"
    );
    let bytes = eml.bytes().await.expect("body");
    let message = mail_parser::MessageParser::default()
        .parse(&bytes[..])
        .expect("a message");
    assert_eq!(
        message.subject(),
        Some("Update your OSA, Safer Sleep Week and new training dates for 2026")
    );
    server.stop().await;
}

#[tokio::test]
async fn saving_a_section_sends_an_event_and_the_page_shows_the_new_text() {
    let (_tmp, issue) = copy_issue("2026-02");
    let server = Running::start(&issue, None).await;
    let mut events = server.events().await;
    let first = events.next_built().await;

    edit(
        &issue.join("02-safer-sleep-week.toml"),
        "heading = \"Safer Sleep Week\"",
        "heading = \"Safer Sleep Week is coming\"",
    );
    let next = events.next_built().await;
    assert!(next > first, "a newer build: {next} after {first}");
    let (_, email) = server.get("/email").await;
    assert!(
        email.contains("Safer Sleep Week is coming"),
        "the new heading"
    );
    let (_, page) = server.get("/").await;
    assert!(page.contains(&format!("data-generation=\"{next}\"")));
    server.stop().await;
}

#[tokio::test]
async fn a_broken_file_shows_its_error_with_file_and_line_instead_of_the_email_until_fixed() {
    let (_tmp, issue) = copy_issue("2026-02");
    let server = Running::start(&issue, None).await;
    let mut events = server.events().await;
    events.next_built().await;

    let section = issue.join("02-safer-sleep-week.toml");
    let good = std::fs::read_to_string(&section).expect("read");
    // Line 2 loses its closing quote.
    std::fs::write(
        &section,
        good.replacen(
            "heading = \"Safer Sleep Week\"",
            "heading = \"Safer Sleep Week",
            1,
        ),
    )
    .expect("write");
    events.next_built().await;

    let (status, page) = server.get("/").await;
    assert_eq!(status, 200);
    let place = format!("{}:2:", section.display());
    assert!(page.contains(&place), "the error names {place}:\n{page}");
    assert!(page.contains("error:"), "{page}");
    assert!(
        !page.contains("<iframe"),
        "no email while the issue is broken"
    );
    let (status, _) = server.get("/email").await;
    assert_eq!(status, 503, "never the previous email as if current");

    std::fs::write(&section, &good).expect("fix");
    events.next_built().await;
    let (_, page) = server.get("/").await;
    assert!(page.contains("<iframe"), "the email is back");
    let (status, email) = server.get("/email").await;
    assert_eq!(status, 200);
    assert!(email.contains("Safer Sleep Week"));
    server.stop().await;
}

#[tokio::test]
async fn saving_the_configuration_or_a_template_in_use_updates_the_page_too() {
    let (tmp, issue) = copy_issue("2026-02");
    let config = tmp.path().join("lscp-mail.toml");
    std::fs::copy(root().join("lscp-mail.toml"), &config).expect("config");
    let templates = tmp.path().join("templates");
    std::fs::create_dir_all(templates.join("partials")).expect("mkdir");
    let footer = templates.join("partials/footer.mjml.hbs");
    std::fs::copy(root().join("templates/partials/footer.mjml.hbs"), &footer).expect("footer");
    let server = Running::start_with(Sources {
        issue: issue.clone(),
        config: Some(config.clone()),
        templates: Some(templates),
    })
    .await;
    let mut events = server.events().await;
    events.next_built().await;

    edit(
        &config,
        "footer_reason = \"You are receiving this",
        "footer_reason = \"Configured a moment ago. You are receiving this",
    );
    events.next_built().await;
    let (_, email) = server.get("/email").await;
    assert!(
        email.contains("Configured a moment ago."),
        "the new setting"
    );

    edit(&footer, "Unsubscribe</a>", "Stop these emails</a>");
    events.next_built().await;
    let (_, email) = server.get("/email").await;
    assert!(email.contains("Stop these emails"), "the edited template");
    server.stop().await;
}

#[tokio::test]
async fn warnings_are_listed_above_the_email() {
    let (_tmp, issue) = copy_issue("2026-02");
    let templates = tempfile::tempdir().expect("templates");
    std::fs::write(
        templates.path().join("fotter.mjml.hbs"),
        "<mj-text>x</mj-text>",
    )
    .expect("write");
    let server = Running::start(&issue, Some(templates.path().to_path_buf())).await;
    let (_, page) = server.get("/").await;
    let warnings = page.find("id=\"warnings\"").expect("a warnings list");
    let frame = page.find("<iframe").expect("the email");
    assert!(warnings < frame, "warnings come first");
    assert!(
        page.contains("`fotter.mjml.hbs` replaces no template"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_binary_takes_the_next_port_when_its_own_is_taken_and_says_so() {
    use tokio::io::AsyncBufReadExt;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut child = tokio::process::Command::from(crate::common::lscp_mail(&["preview"]))
        .args(["issues/2026-02", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lscp-mail starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a line within 10 s")
        .expect("read")
        .expect("a line");
    assert!(
        line.contains(&format!("(port {port} was taken)")),
        "says which port: {line}"
    );
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("an address")
        .trim_end_matches(';');
    let page = reqwest::get(url)
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    assert!(page.contains("February 2026 newsletter"));
    child.kill().await.expect("stop the preview");
}

/// The page's own script, in a real browser: the email reloads itself after a save, errors
/// replace it while the issue is broken, and the page passes axe-core.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_the_page_follows_each_save_and_passes_axe() {
    use super::common::browser::Browser;
    let (_tmp, issue) = copy_issue("2026-02");
    let server = Running::start(&issue, None).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/?width=phone", server.base))
        .await
        .expect("the page opens");
    let email_has = |text: &str| {
        format!(
            "const f = document.getElementById('email'); \
             return !!f && !!f.contentDocument && f.contentDocument.readyState === 'complete' \
             && !!f.contentDocument.body && f.contentDocument.body.textContent.includes({});",
            serde_json::Value::String(text.to_string())
        )
    };
    browser
        .wait_until("the email", &email_has("Safer Sleep Week"))
        .await;
    assert_eq!(
        browser
            .js_u32("return document.getElementById('email').clientWidth")
            .await,
        375,
        "phone width"
    );
    browser.axe("the preview page").await;

    let section = issue.join("02-safer-sleep-week.toml");
    edit(
        &section,
        "heading = \"Safer Sleep Week\"",
        "heading = \"Safer Sleep Week starts soon\"",
    );
    browser
        .wait_until(
            "the new heading",
            &email_has("Safer Sleep Week starts soon"),
        )
        .await;

    edit(
        &section,
        "heading = \"Safer Sleep Week starts soon\"",
        "heading = [",
    );
    browser
        .wait_until(
            "the errors instead of the email",
            "return !!document.getElementById('errors') && !document.getElementById('email');",
        )
        .await;
    browser.close().await;
    server.stop().await;
}
