//! The site as readers meet it, in a real headless Chromium over WebDriver at 375 px: from the
//! links in the message `send --dry-run` wrote to the database, sign-up with the confirmation email from a real SMTP
//! server, and Quick leave. Every page passes axe-core's WCAG A and AA rules, fits the width,
//! and is saved as a screenshot in target/screenshots/.

use crate::common::store;

use std::time::Duration;

use crate::common::browser::Browser;
use crate::common::smtp_sink::SmtpSink;
use crate::common::web::Site;
use fantoccini::Locator;
use fantoccini::key::Key;
use lscp_mail::store::SubscriberStatus;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const PHONE: u32 = 375;

/// Checks the page a reader is on and keeps a picture of it.
async fn look_at(browser: &Browser, name: &str) {
    browser.fits_width(name).await;
    browser.axe(name).await;
    browser
        .full_screenshot(&format!("web-{name}-{PHONE}px"), PHONE)
        .await;
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

/// The preferences and unsubscribe links in the message `lscp-mail send --dry-run` writes
/// for `address`: the binary, run against the test's database, as an editor would run it.
fn links_in_their_message(site: &Site, database_url: &str, address: &str) -> (String, String) {
    let out = tempfile::tempdir().expect("temp dir");
    let issue = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("issues/2026-02");
    let run = crate::common::lscp_mail(&["send"])
        .arg(&issue)
        .args(["--dry-run", "--out"])
        .arg(out.path())
        .current_dir(out.path())
        .env("DATABASE_URL", database_url)
        .env("LSCP_MAIL_SITE__BASE_URL", &site.base)
        .output()
        .expect("lscp-mail runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Files are `NNNNN-address.eml`, the counter keeping them unique.
    let theirs = std::fs::read_dir(out.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(&format!("-{address}.eml")))
        .expect("their message's file");
    let raw = std::fs::read(theirs).expect("their message");
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a message");
    let html = message.body_html(0).expect("an HTML part").into_owned();
    let link_before = |label: &str| {
        let end = html.find(label).expect("the footer link");
        let start = html[..end].rfind("href=\"").expect("its href") + 6;
        html[start..].split('"').next().expect("a URL").to_string()
    };
    (
        link_before(">Choose the topics you receive<"),
        link_before(">Unsubscribe<"),
    )
}

#[sqlx::test]
async fn a_reader_changes_topics_unsubscribes_and_comes_back_from_their_message(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool_options
        .connect_with(options.clone())
        .await
        .expect("pool");
    let site = Site::start(pool).await;
    let (ann, token) = site
        .reader("ann.smith@example.org", "training,events")
        .await;
    let (preferences, unsubscribe) =
        links_in_their_message(&site, &store::url_of(&options), "ann.smith@example.org");
    assert_eq!(preferences, site.url(&format!("/p/{token}")));
    let browser = Browser::start().await;
    browser.viewport(PHONE, 800).await;

    browser.client.goto(&preferences).await.expect("opens");
    browser.wait_for_heading("Your newsletter choices").await;
    look_at(&browser, "preferences").await;
    click(&browser, "#topic-events").await;
    click(&browser, &format!("form[action='/p/{token}'] button")).await;
    browser.wait_for_heading("Your choices are saved").await;
    look_at(&browser, "preferences-saved").await;
    assert_eq!(site.now(&ann).await.topics, ["training"]);
    assert_eq!(
        site.last_log().await,
        ("topics_changed".to_string(), "web".to_string())
    );

    browser.client.goto(&unsubscribe).await.expect("opens");
    browser.wait_for_heading("Unsubscribe").await;
    look_at(&browser, "unsubscribe").await;
    assert_eq!(
        site.now(&ann).await.status,
        SubscriberStatus::Active,
        "GET changed nothing"
    );
    click(&browser, &format!("form[action='/u/{token}'] button")).await;
    browser.wait_for_heading("You are unsubscribed").await;
    look_at(&browser, "unsubscribed").await;
    assert_eq!(site.now(&ann).await.status, SubscriberStatus::Unsubscribed);

    click(
        &browser,
        &format!("form[action='/p/{token}/resubscribe'] button"),
    )
    .await;
    browser.wait_for_heading("Welcome back").await;
    look_at(&browser, "resubscribed").await;
    let now = site.now(&ann).await;
    assert_eq!(
        (now.status, now.topics),
        (SubscriberStatus::Active, vec!["training".to_string()])
    );
    browser.close().await;
}

#[sqlx::test]
async fn a_practitioner_signs_up_and_confirms_from_the_email(pool: PgPool) {
    let sink = SmtpSink::start(&[]);
    let site = Site::start_with(pool, &sink.url(), |_| {}).await;
    let browser = Browser::start().await;
    browser.viewport(PHONE, 800).await;

    browser
        .client
        .goto(&site.url("/subscribe"))
        .await
        .expect("opens");
    browser.wait_for_heading("Sign up for the newsletter").await;
    look_at(&browser, "subscribe").await;
    click(&browser, "form[action='/subscribe'] button").await;
    browser
        .wait_until(
            "the error summary",
            "return !!document.querySelector('.error-summary')",
        )
        .await;
    look_at(&browser, "subscribe-errors").await;

    let email = browser
        .client
        .find(Locator::Id("email"))
        .await
        .expect("email box");
    email
        .send_keys("dev.patel@example.org")
        .await
        .expect("types");
    click(&browser, "#topic-reviews").await;
    click(&browser, "form[action='/subscribe'] button").await;
    browser.wait_for_heading("Check your inbox").await;
    look_at(&browser, "check-inbox").await;

    let mail = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mail[0].recipients(), ["dev.patel@example.org"]);
    let text = mail[0].text();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with(&site.url("/confirm/")))
        .unwrap_or_else(|| panic!("no confirmation link in:\n{text}"))
        .to_string();
    browser.client.goto(&link).await.expect("opens");
    browser.wait_for_heading("Confirm your subscription").await;
    look_at(&browser, "confirm").await;
    let dev = site
        .store
        .subscriber(&"dev.patel@example.org".parse().expect("address"))
        .await
        .expect("added");
    assert_eq!(dev.status, SubscriberStatus::Pending);
    // The name is asked here, of the mailbox's owner, not on the sign-up form.
    let name = browser
        .client
        .find(Locator::Id("name"))
        .await
        .expect("name box");
    name.send_keys("Dev Patel").await.expect("types");
    click(&browser, "form[action^='/confirm/'] button").await;
    browser.wait_for_heading("You are subscribed").await;
    look_at(&browser, "confirmed").await;
    let now = site.now(&dev).await;
    assert_eq!(now.status, SubscriberStatus::Active);
    assert_eq!(now.topics, ["training", "protocols", "events"]);
    assert_eq!(now.name.as_deref(), Some("Dev Patel"));
    browser.close().await;
}

#[sqlx::test]
async fn quick_leave_replaces_the_page_and_leaves_no_way_back_to_it(pool: PgPool) {
    let site = Site::start(pool).await;
    let (_, token) = site.reader("ann@example.org", "training").await;
    let neutral = site.url("/healthz");
    let before = site.url("/issues");
    let page = site.url(&format!("/p/{token}"));
    let browser = Browser::start().await;
    browser.viewport(PHONE, 800).await;
    let left = format!(
        "return location.href === {};",
        serde_json::Value::String(neutral.clone())
    );

    // By the button.
    browser.client.goto(&before).await.expect("opens");
    browser.client.goto(&page).await.expect("opens");
    browser.wait_for_heading("Your newsletter choices").await;
    let shown = browser
        .js_u32(
            "const r = document.querySelector('a.quick-leave').getBoundingClientRect(); \
             return (r.top >= 0 && r.right <= window.innerWidth && r.width > 0) ? 1 : 0",
        )
        .await;
    assert_eq!(
        shown, 1,
        "the button is in view at the top of a phone screen"
    );
    let history = browser.js_u32("return history.length").await;
    click(&browser, "a.quick-leave").await;
    browser.wait_until("the neutral site", &left).await;
    assert_eq!(
        browser.js_u32("return history.length").await,
        history,
        "no new entry"
    );
    browser.client.back().await.expect("back");
    browser
        .wait_until(
            "the page before",
            &format!(
                "return location.href === {};",
                serde_json::Value::String(before.clone())
            ),
        )
        .await;

    // By the Escape key.
    browser.client.goto(&page).await.expect("opens");
    browser.wait_for_heading("Your newsletter choices").await;
    let history = browser.js_u32("return history.length").await;
    let body = browser
        .client
        .find(Locator::Css("body"))
        .await
        .expect("body");
    body.send_keys(&Key::Escape.to_string())
        .await
        .expect("Escape");
    browser.wait_until("the neutral site", &left).await;
    assert_eq!(browser.js_u32("return history.length").await, history);
    browser.client.back().await.expect("back");
    browser
        .wait_until(
            "not the page left",
            &format!(
                "return location.href !== {};",
                serde_json::Value::String(page.clone())
            ),
        )
        .await;
    assert_ne!(browser.url().await, page);
    browser.close().await;
}

#[sqlx::test]
async fn the_archive_and_the_not_found_page_read_well_on_a_phone(pool: PgPool) {
    let site = Site::start(pool).await;
    site.mark_sent("2026-02").await;
    site.mark_sent("2025-11").await;
    let browser = Browser::start().await;
    browser.viewport(PHONE, 800).await;

    browser
        .client
        .goto(&site.url("/issues"))
        .await
        .expect("opens");
    browser.wait_for_heading("Newsletter archive").await;
    look_at(&browser, "archive").await;
    click(&browser, "a[href='/issues/2026-02']").await;
    browser.wait_for_heading("February 2026 newsletter").await;
    look_at(&browser, "issue-2026-02").await;
    browser
        .client
        .goto(&site.url("/issues/2025-11"))
        .await
        .expect("opens");
    browser.wait_for_heading("November 2025 newsletter").await;
    look_at(&browser, "issue-2025-11").await;
    browser
        .client
        .goto(&site.url("/p/forged"))
        .await
        .expect("opens");
    browser.wait_for_heading("Page not found").await;
    look_at(&browser, "not-found").await;
    browser.close().await;
}
