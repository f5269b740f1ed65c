//! The four newsletters shipped under issues/: each passes `check --strict`, renders to the
//! same HTML and text as its reviewed snapshot, and keeps the promises an email must keep.

use std::path::{Path, PathBuf};

use crate::common::issues::render;
use lscp_mail::cli::report::Report;
use lscp_mail::config::Config;
use lscp_mail::content::{Issue, TopicCatalog, load_issue};
use lscp_mail::render::{Audience, GMAIL_CLIP_BYTES, ReaderLinks, Renderer, variants};

const SHIPPED: [&str; 4] = ["2024-04", "2025-03", "2025-11", "2026-02"];

fn issue_dir(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("issues")
        .join(id)
}

fn load(id: &str) -> Issue {
    let loaded = load_issue(&issue_dir(id), &TopicCatalog::builtin());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.issue.expect("shipped issue loads")
}

#[test]
fn every_shipped_issue_passes_check_strict() {
    for id in SHIPPED {
        let report = Report::build(
            &issue_dir(id),
            &Config::default(),
            None,
            &Audience::Everyone,
        )
        .expect("check runs");
        let found: Vec<String> = report.diagnostics().iter().map(|d| d.to_string()).collect();
        assert!(found.is_empty(), "{id}: {found:#?}");
    }
}

#[test]
fn every_shipped_issue_renders_as_its_reviewed_snapshot() {
    for id in SHIPPED {
        let rendered = render(&load(id), &Audience::Everyone);
        insta::assert_snapshot!(format!("{id}.txt"), rendered.text);
        insta::assert_snapshot!(format!("{id}.html"), rendered.html);
    }
}

#[test]
fn the_email_is_british_english_600px_wide_with_a_preheader() {
    for id in SHIPPED {
        let issue = load(id);
        let html = render(&issue, &Audience::Everyone).html;
        assert!(html.contains(r#"<html lang="en-GB""#), "{id}: lang");
        assert!(html.contains("max-width:600px"), "{id}: 600px body");
        assert!(
            !html.contains("width:601px") && !html.contains(r#"width="700""#),
            "{id}: nothing wider"
        );
        assert!(
            html.contains(r#"name="viewport" content="width=device-width, initial-scale=1""#),
            "{id}: responsive viewport"
        );
        let preheader_at = html.find(issue.preheader.as_str()).expect("preheader");
        let body_at = html.find("<body").expect("body");
        assert!(
            preheader_at > body_at,
            "{id}: the preheader is the body's first text"
        );
    }
}

/// Screen reader users move between headings by level: a course under a section's heading is
/// one level down, under its group's sub-heading two.
#[test]
fn no_heading_of_the_email_skips_a_level() {
    let mut issues: Vec<(String, Issue)> = SHIPPED
        .iter()
        .map(|id| (id.to_string(), load(id)))
        .collect();
    issues.push((
        "special-edition".into(),
        load_issue(
            &crate::special_edition::special_edition_dir(),
            &TopicCatalog::builtin(),
        )
        .issue
        .expect("the special edition loads"),
    ));
    for (id, issue) in issues {
        let html = render(&issue, &Audience::Everyone).html;
        let levels: Vec<u8> = html
            .match_indices("<h")
            .filter_map(|(i, _)| html[i + 2..].bytes().next())
            .filter(|b| (b'1'..=b'6').contains(b))
            .map(|b| b - b'0')
            .collect();
        assert!(!levels.is_empty(), "{id}");
        for pair in levels.windows(2) {
            assert!(
                pair[1] <= pair[0] + 1,
                "{id}: an h{} follows an h{}: {levels:?}",
                pair[1],
                pair[0]
            );
        }
    }
}

#[test]
fn every_image_has_alt_text() {
    for id in SHIPPED {
        let html = render(&load(id), &Audience::Everyone).html;
        for img in html.split("<img").skip(1) {
            let tag = img.split('>').next().unwrap_or_default();
            assert!(
                tag.contains("alt=\"") && !tag.contains("alt=\"\""),
                "{id}: <img{tag}>"
            );
        }
    }
}

#[test]
fn every_issue_in_full_fits_under_gmails_clipping_limit() {
    for id in SHIPPED {
        let issue = load(id);
        let full = render(&issue, &Audience::Everyone);
        assert!(
            full.html.len() < GMAIL_CLIP_BYTES,
            "{id}: {} bytes",
            full.html.len()
        );
    }
}

#[test]
fn the_plain_text_writes_out_every_link_the_html_has() {
    for id in SHIPPED {
        let rendered = render(&load(id), &Audience::Everyone);
        for link in rendered.links() {
            let written = link.strip_prefix("mailto:").unwrap_or(link);
            assert!(
                rendered.text.contains(written),
                "{id}: {written} is in the HTML but not the text"
            );
        }
        assert!(
            !rendered.text.contains('<') || !rendered.text.contains("</"),
            "{id}: no markup in text"
        );
    }
}

#[test]
fn a_reader_gets_the_sections_of_their_topics_and_the_untagged_ones_only() {
    let catalog = TopicCatalog::builtin();
    for id in SHIPPED {
        let issue = load(id);
        for topics in variants(&issue) {
            let text = render(&issue, &Audience::Topics(topics.clone())).text;
            for section in &issue.sections {
                let wanted = section.topic.as_ref().is_none_or(|t| topics.contains(t));
                let heading_line = format!("\n{}\n=", section.heading);
                assert_eq!(
                    text.contains(&heading_line),
                    wanted,
                    "{id} for {:?}: \"{}\" ({:?})",
                    topics,
                    section.heading,
                    section.topic.as_ref().and_then(|t| catalog.get(t))
                );
            }
        }
    }
}

#[test]
fn sessions_and_diary_dates_read_the_way_the_newsletters_write_them() {
    let text = render(&load("2026-02"), &Audience::Everyone).text;
    for expected in [
        "- Tuesday 14 April 2026, 9am to 3.15pm",
        "- Thursday 12 March 2026, 9.30am to 10.30am",
        "- Thursday 26 March 2026, 10am to 11am",
        "- 9 to 15 March 2026: Safer Sleep Week",
        "- 18 March 2026: CSE Awareness Day",
    ] {
        assert!(text.contains(expected), "missing {expected:?}");
    }
    let november = render(&load("2025-11"), &Audience::Everyone).text;
    assert!(november.contains("25 November to 10 December 2025"));
}

#[test]
fn every_variant_assembled_from_one_rendering_is_what_rendering_it_alone_gives() {
    let config = Config::default();
    let catalog = TopicCatalog::builtin();
    let renderer = Renderer::new(None).expect("built-in templates");
    for id in SHIPPED {
        let issue = load(id);
        let links = ReaderLinks::preview(&config, &issue);
        let all = renderer
            .render_variants(&issue, &config, &catalog, &links)
            .expect("renders");
        let alone = |a: &Audience| {
            renderer
                .render(&issue, &config, &catalog, a, &links)
                .expect("renders")
        };
        let full = alone(&Audience::Everyone);
        assert!(all.full.html == full.html, "{id}: full HTML differs");
        assert!(all.full.text == full.text, "{id}: full text differs");
        assert_eq!(all.by_topics.len(), variants(&issue).len());
        for (set, assembled) in &all.by_topics {
            let single = alone(&Audience::Topics(set.clone()));
            // Booleans, not assert_eq!: a failure would otherwise print two whole emails.
            assert!(assembled.html == single.html, "{id} {set:?}: HTML differs");
            assert!(assembled.text == single.text, "{id} {set:?}: text differs");
            assert!(assembled.mjml == single.mjml, "{id} {set:?}: MJML differs");
            assert!(!assembled.html.contains("lscp-cut"), "no marks left");
        }
    }
}

#[test]
fn templates_without_cut_marks_still_give_every_reader_only_their_sections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = include_str!("../../templates/email.mjml.hbs")
        .replace("{{{cut-block anchor}}}", "")
        .replace("{{{cut-block \"\"}}}", "");
    std::fs::write(dir.path().join("email.mjml.hbs"), layout).expect("write");
    let config = Config::default();
    let catalog = TopicCatalog::builtin();
    let renderer = Renderer::new(Some(dir.path())).expect("templates");
    let issue = load("2026-02");
    let links = ReaderLinks::preview(&config, &issue);
    let all = renderer
        .render_variants(&issue, &config, &catalog, &links)
        .expect("renders");
    for (set, assembled) in &all.by_topics {
        let single = renderer
            .render(
                &issue,
                &config,
                &catalog,
                &Audience::Topics(set.clone()),
                &links,
            )
            .expect("renders");
        assert!(assembled.html == single.html, "{set:?}: HTML differs");
    }
}

/// The value of `property` in the first inline style of `tag`.
fn style_value<'a>(tag: &'a str, property: &str) -> Option<&'a str> {
    let style = tag.split("style=\"").nth(1)?.split('"').next()?;
    style
        .split(';')
        .filter_map(|decl| decl.split_once(':'))
        .find(|(name, _)| name.trim() == property)
        .map(|(_, value)| value.trim())
}

#[test]
fn every_layout_table_is_presentation_only_for_screen_readers() {
    for id in SHIPPED {
        let html = render(&load(id), &Audience::Everyone).html;
        let tables: Vec<&str> = html
            .split("<table")
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or_default())
            .collect();
        assert!(!tables.is_empty(), "{id}: no tables");
        for tag in tables {
            assert!(tag.contains(r#"role="presentation""#), "{id}: <table{tag}>");
        }
    }
}

#[test]
fn the_language_and_direction_are_on_the_html_and_on_the_bodys_wrapper() {
    for id in SHIPPED {
        let html = render(&load(id), &Audience::Everyone).html;
        let html_tag = html.split("<html").nth(1).and_then(|t| t.split('>').next());
        let body = html.split("<body").nth(1).unwrap_or_default();
        let wrapper = body.split("<div").nth(1).and_then(|t| t.split('>').next());
        for (what, tag) in [("<html>", html_tag), ("the body's wrapper", wrapper)] {
            let tag = tag.unwrap_or_default();
            assert!(tag.contains(r#"lang="en-GB""#), "{id}: {what}: {tag}");
            assert!(tag.contains(r#"dir=""#), "{id}: {what}: {tag}");
        }
    }
}

#[test]
fn the_hidden_preheader_is_not_coloured_like_its_background() {
    use lscp_mail::config::{Colour, MIN_TEXT_CONTRAST};
    for id in SHIPPED {
        let issue = load(id);
        let html = render(&issue, &Audience::Everyone).html;
        let body_tag = html.split("<body").nth(1).and_then(|t| t.split('>').next());
        let background = body_tag
            .and_then(|t| style_value(t, "background-color"))
            .expect("the body's background");
        let preheader_at = html.find(issue.preheader.as_str()).expect("preheader");
        let div = html[..preheader_at]
            .rsplit("<div")
            .next()
            .expect("the preheader's element");
        assert_eq!(style_value(div, "display"), Some("none"), "{id}: {div}");
        let colour = style_value(div, "color").expect("the preheader's colour");
        let ratio = Colour::parse(colour)
            .expect("colour")
            .contrast_ratio(&Colour::parse(background).expect("colour"));
        assert!(
            ratio >= MIN_TEXT_CONTRAST,
            "{id}: the preheader is {colour} on {background} ({ratio:.2}:1)"
        );
    }
}
