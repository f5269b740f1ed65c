//! The composed email as a reader sees it, in a real headless Chromium: on a 375 px phone and a
//! 640 px desktop pane, every section shows and nothing scrolls sideways.

use std::path::Path;

use crate::common::browser::Browser;
use lscp_mail::config::Config;
use lscp_mail::content::{TopicCatalog, load_issue};
use lscp_mail::render::{Audience, ReaderLinks, Renderer};

const SHIPPED: [&str; 4] = ["2024-04", "2025-03", "2025-11", "2026-02"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issue_shows_every_section_without_sideways_scrolling_at_375_and_640_px() {
    let out = tempfile::tempdir().expect("temp dir");
    let browser = Browser::start().await;
    for id in SHIPPED {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("issues")
            .join(id);
        fits_phone_and_desktop(&browser, out.path(), id, &dir).await;
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_special_edition_shows_every_section_without_sideways_scrolling_at_375_and_640_px() {
    let out = tempfile::tempdir().expect("temp dir");
    let browser = Browser::start().await;
    let dir = crate::special_edition::special_edition_dir();
    fits_phone_and_desktop(&browser, out.path(), "special-edition", &dir).await;
    browser.close().await;
}

/// Opens the email `file` in a window `width` px wide.
async fn open_at(browser: &Browser, file: &Path, width: u32) {
    browser.viewport(width, 900).await;
    browser
        .client
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("page loads");
}

/// Composes the issue in `dir` and, at 375 and 640 px, asserts nothing scrolls sideways and
/// every section's heading shows, then takes a screenshot.
async fn fits_phone_and_desktop(browser: &Browser, out: &Path, id: &str, dir: &Path) {
    let config = Config::default();
    let catalog = TopicCatalog::builtin();
    let renderer = Renderer::new(None).expect("templates");
    let issue = load_issue(dir, &catalog).issue.expect("the issue loads");
    let links = ReaderLinks::preview(&config, &issue);
    let html = renderer
        .render(&issue, &config, &catalog, &Audience::Everyone, &links)
        .expect("renders")
        .html;
    let file = out.join(format!("{id}.html"));
    std::fs::write(&file, html).expect("write html");

    for width in [375u32, 640] {
        open_at(browser, &file, width).await;
        let inner = browser.js_u32("return window.innerWidth").await;
        assert_eq!(inner, width, "{id}: the viewport is {width} px");
        let scroll = browser
            .js_u32("return document.documentElement.scrollWidth")
            .await;
        assert!(
            scroll <= width,
            "{id} at {width} px: the page is {scroll} px wide and scrolls sideways"
        );
        for section in &issue.sections {
            let script = format!(
                "const h = document.getElementById('{}'); if (!h) return 0; \
                 const r = h.getBoundingClientRect(); \
                 return (r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= window.innerWidth) ? 1 : 2;",
                section.anchor
            );
            let shown = browser.js_u32(&script).await;
            assert_eq!(
                shown,
                1,
                "{id} at {width} px: section \"{}\" is {}",
                section.heading,
                if shown == 0 {
                    "missing"
                } else {
                    "cut off or hidden"
                }
            );
        }
        let height = browser
            .js_u32("return document.documentElement.scrollHeight")
            .await;
        browser.viewport(width, height.min(12_000)).await;
        browser.screenshot(&format!("email-{id}-{width}px")).await;
    }
}

/// The special edition's table of resources, composed as `compose` writes it (its photo
/// published beside the email): on a desktop each row's photo sits beside its description, on
/// a phone above it; nothing scrolls sideways and axe-core finds no WCAG A/AA violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_resources_is_two_columns_on_a_desktop_and_stacked_on_a_phone() {
    let out = tempfile::tempdir().expect("temp dir");
    let config = Config::default();
    let catalog = TopicCatalog::builtin();
    let issue = load_issue(&crate::special_edition::special_edition_dir(), &catalog)
        .issue
        .expect("the special edition loads");
    let links = ReaderLinks::preview(&config, &issue).with_relative_images();
    let html = Renderer::new(None)
        .expect("templates")
        .render(&issue, &config, &catalog, &Audience::Everyone, &links)
        .expect("renders")
        .html;
    for image in lscp_mail::render::images::publish(&issue).expect("photos publish") {
        std::fs::write(out.path().join(&image.name), &image.bytes).expect("write photo");
    }
    let file = out.path().join("index.html");
    std::fs::write(&file, html).expect("write html");

    // The photo's and the description's boxes, as [left, top, right, bottom].
    let boxes = "const img = document.querySelector('img[alt=\"Jo Bell in front of the Safeguarding Week banner\"]'); \
         const text = [...document.querySelectorAll('p')].find(p => p.textContent.startsWith('Jo Bell, safeguarding lead for')); \
         if (!img || !text) return 0; \
         const a = img.getBoundingClientRect(), b = text.getBoundingClientRect();";
    let browser = Browser::start().await;
    for width in [375u32, 640] {
        open_at(&browser, &file, width).await;
        browser
            .wait_until(
                "the local photo loads",
                "const img = document.querySelector('img[alt^=\"Jo Bell\"]'); return img && img.complete && img.naturalWidth > 0;",
            )
            .await;
        browser
            .fits_width(&format!("the resources at {width} px"))
            .await;
        let beside = browser
            .js_u32(&format!("{boxes} return a.right <= b.left ? 1 : 2;"))
            .await;
        let above = browser
            .js_u32(&format!("{boxes} return a.bottom <= b.top ? 1 : 2;"))
            .await;
        if width == 640 {
            assert_eq!(beside, 1, "at 640 px the photo is beside its description");
        } else {
            assert_eq!(above, 1, "at 375 px the photo is above its description");
        }
        browser
            .full_screenshot(&format!("email-special-edition-resources-{width}px"), width)
            .await;
    }
    browser.axe("the special edition's email").await;
    browser.close().await;
}
