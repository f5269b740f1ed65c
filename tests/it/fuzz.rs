//! Property tests that feed arbitrary and hostile input to the TOML loader and the Markdown
//! renderer: neither may panic, a loaded issue always renders, and no rendering carries a link
//! `check` would refuse or markup the editor wrote. Each runs a fixed number of cases so CI
//! time stays a few seconds; `PROPTEST_CASES=5000 cargo test --test it fuzz::` runs more.

use std::path::Path;

use proptest::prelude::*;

use lscp_mail::config::Config;
use lscp_mail::content::{Markdown, TopicCatalog, load_issue, markdown_link_target};
use lscp_mail::render::markdown::{to_html, to_text};
use lscp_mail::render::{ReaderLinks, Renderer};

/// Enough to catch a panic on the common paths in a few seconds of a debug build.
const LOADER_CASES: u32 = 96;
/// About one case in five loads and is rendered in every variant.
const HOSTILE_TOML_CASES: u32 = 192;
const MARKDOWN_CASES: u32 = 512;

fn cases(n: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, still wins: `with_cases` is only the default here.
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(n)
    }
}

/// Writes an issue folder of `issue.toml` and one section file, loads it, and when it loads
/// renders every variant of it: returns the HTML and text of all of them.
fn load_and_render(issue_toml: &[u8], section: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("issue.toml"), issue_toml).expect("write issue.toml");
    std::fs::write(dir.path().join("01-section.toml"), section).expect("write section");
    render_folder(dir.path())
}

fn render_folder(dir: &Path) -> Vec<(String, String)> {
    let catalog = TopicCatalog::builtin();
    let loaded = load_issue(dir, &catalog);
    let Some(issue) = loaded.issue else {
        assert!(loaded.errors().next().is_some(), "refused without an error");
        return Vec::new();
    };
    let config = Config::default();
    let links = ReaderLinks::preview(&config, &issue);
    let all = Renderer::new(None)
        .expect("built-in templates")
        .render_variants(&issue, &config, &catalog, &links)
        .expect("a loaded issue renders");
    std::iter::once(all.full)
        .chain(all.by_topics.into_iter().map(|(_, r)| r))
        .map(|r| (r.html, r.text))
        .collect()
}

/// Every `href="…"` of a tag in `html` (not in its text), entities undone as a browser would.
fn hrefs(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .flat_map(|tag| tag.split("href=\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .map(|h| {
            h.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The element names of every tag in `html`.
fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|rest| {
            rest.trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .collect()
}

const MARKDOWN_TAGS: &[&str] = &[
    "p",
    "a",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "hr",
];

/// A string with the characters that have broken parsers: controls, quotes, brackets,
/// backslashes, line breaks, non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[\\x00-\\x1f\\x7f\"'\\\\<>\\[\\]()#:;, \r\n\u{2028}é’]{0,40}",
        Just(String::new()),
    ]
}

/// Text with no control character, so that it loads, but with everything that means something
/// to HTML, MJML, handlebars, Markdown or a calendar.
fn printable_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => r#"[\x22'\\<>&\[\]()#:;,{}/=*_`~|!-]{0,4}[a-zA-Z0-9 é’\x{2028}\x{202e}\x22<>&{}]{0,30}"#,
        1 => Just("</mj-text></mj-column><mj-raw><script>alert(1)</script>".to_string()),
        1 => Just("{{{brand.organisation}}} {{#each x}}".to_string()),
        1 => Just("<lscp-cut data-s=\"leak\"></lscp-cut>".to_string()),
        1 => Just("BEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM".to_string()),
    ]
}

/// Mostly printable, sometimes not: both the refusing and the rendering paths get exercised.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![4 => printable_text(), 1 => hostile_text()]
}

fn hostile_url() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("https://www.leedsscp.org.uk/training".to_string()),
        3 => printable_text().prop_map(|t| format!("https://www.leedsscp.org.uk/{t}")),
        1 => hostile_text(),
        1 => hostile_text().prop_map(|t| format!("https://example.org/{t}")),
        1 => hostile_text().prop_map(|t| format!("javascript:{t}")),
        1 => hostile_text().prop_map(|t| format!("mailto:{t}")),
        1 => Just("https://example.org/book\r\nATTENDEE:mailto:x@example.org".to_string()),
    ]
}

/// Markdown that reaches for what an email must not carry: script links, raw HTML,
/// entities that spell a scheme, autolinks, as well as ordinary text.
fn hostile_markdown() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("javascript:"),
        Just("JaVaScRiPt:"),
        Just("jav&#x61;script:"),
        Just("java\\tscript:"),
        Just("data:text/html,"),
        Just("vbscript:"),
        Just("file:///"),
        Just("https://example.org/"),
        Just("mailto:a@example.org?"),
        Just("tel:"),
        Just("#"),
        Just(""),
    ];
    let piece = prop_oneof![
        3 => field_text(),
        1 => (scheme.clone(), field_text(), printable_text())
            .prop_map(|(s, label, rest)| format!("[{label}]({s}{rest})")),
        1 => (scheme.clone(), hostile_text()).prop_map(|(s, rest)| format!("<{s}{rest}>")),
        1 => (scheme.clone(), hostile_text())
            .prop_map(|(s, rest)| format!("[x][r]\n\n[r]: {s}{rest}\n")),
        1 => (scheme, hostile_text()).prop_map(|(s, rest)| format!("![img]({s}{rest})")),
        1 => hostile_text().prop_map(|t| format!("<a href=\"javascript:{t}\">x</a>")),
        1 => Just("<script>alert(1)</script>".to_string()),
        1 => Just("<img src=x onerror=alert(1)>".to_string()),
        2 => Just("\n\n- item\n  - nested\n\n> quote\n\n```\ncode\n```\n".to_string()),
        2 => Just("[the Lullaby Trust](https://www.lullabytrust.org.uk/) **bold**".to_string()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.join(" "))
}

/// A Markdown field of an issue: usually one that loads, so that rendering is exercised too.
fn field_markdown() -> impl Strategy<Value = String> {
    prop_oneof![3 => printable_text(), 2 => hostile_markdown()]
}

/// An issue.toml whose every value has the right type and a hostile content.
fn hostile_issue_toml() -> impl Strategy<Value = String> {
    (
        field_text(),
        prop_oneof![4 => Just("2026-02".to_string()), 1 => hostile_text()],
        field_text(),
        field_text(),
        field_markdown(),
        any::<bool>(),
    )
        .prop_map(|(title, month, subject, preheader, intro, contents)| {
            let mut t = toml::Table::new();
            t.insert("title".into(), title.into());
            t.insert("month".into(), month.into());
            t.insert(
                "published".into(),
                toml::Value::Datetime("2026-02-02".parse().expect("a date")),
            );
            t.insert("subject".into(), subject.into());
            t.insert("preheader".into(), preheader.into());
            t.insert("intro".into(), intro.into());
            t.insert("contents".into(), contents.into());
            toml::to_string(&t).expect("a table serialises")
        })
}

/// A section of any kind, valid TOML, with hostile values in every field.
fn hostile_section_toml() -> impl Strategy<Value = String> {
    let topic = prop_oneof![
        2 => Just(None),
        2 => Just(Some("events".to_string())),
        2 => Just(Some("training".to_string())),
        1 => hostile_text().prop_map(Some),
    ];
    let kind = prop_oneof![
        2 => Just("article".to_string()),
        2 => Just("training".to_string()),
        2 => Just("links".to_string()),
        2 => Just("diary".to_string()),
        1 => hostile_text(),
    ];
    let session = prop_oneof![
        3 => Just("Tuesday 14 April 2026, 9am to 3.15pm".to_string()),
        1 => field_text(),
    ];
    (
        kind,
        field_text(),
        topic,
        field_markdown(),
        hostile_url(),
        field_text(),
        session,
        0u8..=31,
    )
        .prop_map(|(kind, heading, topic, body, url, text, session, day)| {
            let table = |pairs: Vec<(&str, toml::Value)>| {
                toml::Value::Table(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
            };
            let mut t = toml::Table::new();
            t.insert("kind".into(), kind.clone().into());
            t.insert("heading".into(), heading.into());
            if let Some(topic) = topic {
                t.insert("topic".into(), topic.into());
            }
            let date = toml::Value::Datetime(
                format!("2026-03-{:02}", day.clamp(1, 28))
                    .parse()
                    .expect("a date"),
            );
            match kind.as_str() {
                "article" => {
                    t.insert("body".into(), body.into());
                    let button = table(vec![("label", text.into()), ("url", url.clone().into())]);
                    t.insert("buttons".into(), toml::Value::Array(vec![button]));
                    t.insert(
                        "image".into(),
                        table(vec![("src", url.into()), ("alt", "A poster".into())]),
                    );
                }
                "training" => {
                    t.insert("intro".into(), body.clone().into());
                    let course = table(vec![
                        ("title", text.into()),
                        ("description", body.into()),
                        ("sessions", toml::Value::Array(vec![session.into()])),
                        ("booking_url", url.into()),
                    ]);
                    t.insert("courses".into(), toml::Value::Array(vec![course]));
                }
                "links" => {
                    let link = table(vec![("title", text.into()), ("url", url.into())]);
                    t.insert("links".into(), toml::Value::Array(vec![link]));
                }
                _ => {
                    let d = table(vec![("label", text.into()), ("date", date)]);
                    t.insert("dates".into(), toml::Value::Array(vec![d]));
                }
            }
            toml::to_string(&t).expect("a table serialises")
        })
}

/// What every rendering of a loaded issue must hold, whatever the input was.
fn assert_safe(renderings: &[(String, String)]) {
    for (html, _) in renderings {
        for href in hrefs(html) {
            let scheme = href
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            assert!(
                !["javascript", "data", "vbscript", "file"].contains(&scheme.as_str()),
                "forbidden href {href:?}"
            );
            assert!(!href.contains(['\r', '\n']), "line break in href {href:?}");
        }
        assert!(!html.to_ascii_lowercase().contains("<script"), "script tag");
    }
}

proptest! {
    #![proptest_config(cases(LOADER_CASES))]

    #[test]
    fn the_loader_takes_any_bytes_without_a_panic(
        issue in prop::collection::vec(any::<u8>(), 0..400),
        section in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        assert_safe(&load_and_render(&issue, &section));
    }

    #[test]
    fn the_loader_takes_any_text_without_a_panic(issue in ".{0,300}", section in ".{0,300}") {
        assert_safe(&load_and_render(issue.as_bytes(), section.as_bytes()));
    }
}

proptest! {
    #![proptest_config(cases(HOSTILE_TOML_CASES))]

    #[test]
    fn hostile_values_in_valid_toml_are_refused_or_render_safely(
        issue in hostile_issue_toml(),
        section in hostile_section_toml(),
    ) {
        assert_safe(&load_and_render(issue.as_bytes(), section.as_bytes()));
    }
}

proptest! {
    #![proptest_config(cases(MARKDOWN_CASES))]

    #[test]
    fn the_markdown_renderer_writes_no_forbidden_link_and_no_raw_html(
        md in prop_oneof![hostile_markdown(), ".{0,200}"],
    ) {
        let md = Markdown(md);
        let html = to_html(&md, "#4b2e83");
        let _ = to_text(&md, 72);
        for href in hrefs(&html) {
            prop_assert!(markdown_link_target(&href).is_ok(), "href {:?} in {}", href, html);
        }
        for tag in tags(&html) {
            prop_assert!(MARKDOWN_TAGS.contains(&tag.as_str()), "<{}> in {}", tag, html);
        }
    }
}
