//! Every `check` rule against a fixture under tests/fixtures/ that breaks exactly that rule:
//! the right rule fires, at the right file, line and field, and the issue is refused.

use std::path::{Path, PathBuf};

use lscp_mail::cli::report::Report;
use lscp_mail::config::Config;
use lscp_mail::content::{Diagnostic, Loaded, Rule, Severity, TopicCatalog, load_issue};
use lscp_mail::render::Audience;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> Loaded {
    load_issue(&fixture(name), &TopicCatalog::builtin())
}

/// The single diagnostic of `rule`, failing with everything found when there is not exactly one.
fn only(loaded: &Loaded, rule: Rule) -> Diagnostic {
    let found: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {rule:?}, got: {:#?}",
        loaded.diagnostics
    );
    found[0].clone()
}

fn assert_refused(loaded: &Loaded) {
    assert!(
        loaded.issue.is_none(),
        "an issue with errors must not be composed"
    );
}

/// Asserts the diagnostic points at `file` (name only), `line`, and `field` when given.
fn assert_at(d: &Diagnostic, file: &str, line: usize, field: Option<&str>) {
    assert_eq!(
        d.file.file_name().and_then(|f| f.to_str()),
        Some(file),
        "{d}"
    );
    assert_eq!(d.position.map(|p| p.0), Some(line), "{d}");
    assert_eq!(d.field.as_deref(), field, "{d}");
}

#[test]
fn the_valid_fixture_has_no_diagnostics_at_all() {
    let loaded = load("valid");
    assert_eq!(loaded.diagnostics, vec![]);
    let issue = loaded.issue.expect("the valid fixture loads");
    assert_eq!(issue.sections.len(), 4);
}

#[test]
fn a_toml_syntax_error_names_file_line_and_column() {
    let loaded = load("toml-syntax");
    let d = only(&loaded, Rule::TomlSyntax);
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.position, Some((2, 28)), "{d}");
    assert!(d.to_string().contains("01-news.toml:2:28: error:"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_misspelt_key_is_an_error_that_lists_the_keys() {
    let loaded = load("unknown-field");
    let d = only(&loaded, Rule::UnknownField);
    assert_at(&d, "01-news.toml", 3, None);
    assert!(d.message.contains("`bodt`"), "{d}");
    assert!(
        d.message.contains("`body`"),
        "the message lists the keys: {d}"
    );
    assert_refused(&loaded);
}

#[test]
fn an_unknown_section_kind_lists_the_kinds() {
    let loaded = load("unknown-kind");
    let d = only(&loaded, Rule::UnknownKind);
    assert_at(&d, "01-news.toml", 1, Some("kind"));
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("article, training, links, diary"))
    );
    assert_refused(&loaded);
}

#[test]
fn an_unknown_topic_is_an_error_that_lists_the_topics() {
    let loaded = load("unknown-topic");
    let d = only(&loaded, Rule::UnknownTopic);
    assert_at(&d, "01-news.toml", 3, Some("topic"));
    assert!(
        d.message.contains("training, protocols, reviews, events"),
        "{d}"
    );
    assert_refused(&loaded);
}

#[test]
fn a_weekday_that_does_not_match_its_date_is_an_error() {
    let loaded = load("weekday-mismatch");
    let d = only(&loaded, Rule::WeekdayMismatch);
    assert_at(&d, "01-training.toml", 9, Some("courses[0].sessions[1]"));
    assert_eq!(d.message, "15 April 2026 is a Wednesday, not a Tuesday");
    assert_refused(&loaded);
}

#[test]
fn a_session_that_ends_before_it_starts_is_an_error() {
    let loaded = load("end-before-start");
    let d = only(&loaded, Rule::EndBeforeStart);
    assert_at(&d, "01-training.toml", 7, Some("courses[0].sessions[0]"));
    assert_refused(&loaded);
}

#[test]
fn a_session_before_the_issue_is_published_is_an_error() {
    let loaded = load("session-before-publication");
    let d = only(&loaded, Rule::SessionBeforePublication);
    assert_at(&d, "01-training.toml", 7, Some("courses[0].sessions[0]"));
    assert!(d.message.contains("27 January 2026"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_course_with_no_way_to_book_is_an_error() {
    let loaded = load("no-way-to-book");
    let d = only(&loaded, Rule::NoWayToBook);
    assert_at(&d, "01-training.toml", 4, Some("courses[0]"));
    assert!(d.message.contains("Training for trainers"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn an_image_without_alt_text_is_an_error() {
    let loaded = load("missing-alt-text");
    let d = only(&loaded, Rule::MissingAltText);
    assert_at(&d, "01-news.toml", 5, Some("image.alt"));
    assert_refused(&loaded);
}

#[test]
fn blank_alt_text_counts_as_missing() {
    let loaded = load("empty-alt-text");
    let d = only(&loaded, Rule::MissingAltText);
    assert_at(&d, "01-news.toml", 7, Some("image.alt"));
    assert_refused(&loaded);
}

#[test]
fn a_section_with_nothing_in_it_is_an_error() {
    for (fixture, file) in [
        ("empty-section", "01-links.toml"),
        ("empty-article", "01-news.toml"),
    ] {
        let loaded = load(fixture);
        let d = only(&loaded, Rule::EmptySection);
        assert_at(&d, file, 2, None);
        assert_refused(&loaded);
    }
}

#[test]
fn a_link_that_is_not_an_absolute_url_is_an_error() {
    let loaded = load("bad-link");
    let d = only(&loaded, Rule::BadLink);
    assert_at(&d, "01-news.toml", 7, Some("buttons[0].url"));
    assert_refused(&loaded);
}

#[test]
fn a_line_break_inside_a_link_is_an_error_not_quietly_dropped() {
    let loaded = load("control-character-in-link");
    let d = only(&loaded, Rule::BadLink);
    assert_at(&d, "01-training.toml", 9, Some("courses[0].booking_url"));
    assert!(d.message.contains("control character (U+000D)"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_control_character_in_any_text_is_an_error() {
    let loaded = load("control-character-in-text");
    let d = only(&loaded, Rule::ControlCharacter);
    assert_at(&d, "01-diary.toml", 7, Some("dates[0].label"));
    assert!(d.message.contains("U+001B"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_script_link_in_markdown_is_an_error_at_its_line() {
    let loaded = load("script-link-in-markdown");
    let d = only(&loaded, Rule::BadLink);
    assert_at(&d, "01-news.toml", 6, Some("body"));
    assert!(d.message.contains("`javascript` scheme"), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_date_range_that_ends_before_it_starts_is_an_error() {
    let loaded = load("reversed-date-range");
    let d = only(&loaded, Rule::EndBeforeStart);
    assert_at(&d, "01-diary.toml", 7, Some("dates[0].to"));
    assert_refused(&loaded);
}

#[test]
fn a_date_that_does_not_exist_is_an_error() {
    let loaded = load("impossible-date");
    let d = only(&loaded, Rule::TomlSyntax);
    assert_at(&d, "01-diary.toml", 6, None);
    assert_refused(&loaded);
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_at_the_first_bad_byte() {
    let loaded = load("not-utf8");
    let d = only(&loaded, Rule::TomlSyntax);
    assert_eq!(d.position, Some((2, 15)), "{d}");
    assert_refused(&loaded);
}

#[test]
fn a_folder_without_issue_toml_says_what_it_needs() {
    let loaded = load("missing-issue-toml");
    let d = only(&loaded, Rule::Io);
    assert!(d.file.ends_with("issue.toml"), "{d}");
    assert!(d.hint.as_deref().is_some_and(|h| h.contains("subject")));
    assert_refused(&loaded);
}

#[test]
fn an_insecure_link_is_a_warning_only() {
    let loaded = load("insecure-link");
    let d = only(&loaded, Rule::InsecureLink);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-news.toml", 7, Some("buttons[0].url"));
    assert!(loaded.issue.is_some(), "warnings do not stop compose");
}

#[test]
fn a_diary_date_over_before_publication_is_a_warning() {
    let loaded = load("diary-date-before-publication");
    let d = only(&loaded, Rule::DateBeforePublication);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-diary.toml", 4, Some("dates[0]"));
}

#[test]
fn a_preheader_longer_than_inboxes_show_is_a_warning() {
    let loaded = load("long-preheader");
    let d = only(&loaded, Rule::PreheaderLength);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "issue.toml", 5, Some("preheader"));
}

#[test]
fn a_folder_named_for_another_month_is_a_warning() {
    let loaded = load("month-mismatch/2026-03");
    let d = only(&loaded, Rule::IssueMonth);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "issue.toml", 2, Some("month"));
}

#[test]
fn an_email_over_gmails_clipping_limit_is_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixture("valid/issue.toml"), dir.path().join("issue.toml")).expect("copy");
    let paragraph =
        "Practitioners should read this sentence, which is here to make the email long. ";
    let body = (0..600)
        .map(|_| paragraph.repeat(4))
        .collect::<Vec<_>>()
        .join("\n\n");
    std::fs::write(
        dir.path().join("01-long.toml"),
        format!(
            "kind = \"article\"\nheading = \"A very long article\"\nbody = \"\"\"\n{body}\n\"\"\"\n"
        ),
    )
    .expect("write");
    let report =
        Report::build(dir.path(), &Config::default(), None, &Audience::Everyone).expect("renders");
    let d = only(&report.loaded, Rule::EmailSize);
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.message.contains("102.0 KB"), "{d}");
}

#[test]
fn link_words_that_say_nothing_out_of_context_are_a_warning() {
    let loaded = load("vague-link-text");
    let d = only(&loaded, Rule::VagueLinkText);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-news.toml", 6, Some("body"));
    assert!(d.message.contains("\"click here\""), "{d}");
    assert!(loaded.issue.is_some(), "warnings do not stop compose");
}

#[test]
fn a_bare_address_as_link_words_is_a_warning() {
    let loaded = load("bare-url-link-text");
    let d = only(&loaded, Rule::VagueLinkText);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-news.toml", 4, Some("body"));
    assert!(d.message.contains("bare address"), "{d}");
}

#[test]
fn a_saved_link_titled_read_more_is_a_warning() {
    let loaded = load("vague-button-label");
    let d = only(&loaded, Rule::VagueLinkText);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-links.toml", 8, Some("links[1].title"));
}

#[test]
fn a_heading_that_skips_a_level_is_a_warning() {
    let loaded = load("heading-skip");
    let d = only(&loaded, Rule::HeadingSkip);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-news.toml", 10, Some("body"));
    assert!(
        d.message.contains("level-5 heading follows a level-3"),
        "{d}"
    );
    assert!(d.hint.as_deref().is_some_and(|h| h.contains("####")), "{d}");
}

#[test]
fn an_image_wider_than_the_email_is_a_warning() {
    let loaded = load("image-too-wide");
    let d = only(&loaded, Rule::ImageTooWide);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "01-news.toml", 5, Some("image.width"));
    assert!(d.message.contains("600 px"), "{d}");
    assert!(d.message.contains("552 px"), "{d}");
}

#[test]
fn brand_colours_below_wcag_aa_are_a_warning_naming_the_key_and_the_ratio() {
    let config = Config::load(Some(&fixture("low-contrast/lscp-mail.toml"))).expect("loads");
    let warnings = config.contrast_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.text, "brand.accent_colour");
    assert!((w.ratio - 2.07).abs() < 0.01, "{w}");
    let said = w.to_string();
    assert!(said.contains("`brand.accent_colour`"), "{said}");
    assert!(said.contains("2.07:1"), "{said}");
}

#[test]
fn check_reports_a_low_contrast_brand_colour_at_its_line_and_strict_fails() {
    let config_file = fixture("low-contrast/lscp-mail.toml");
    let config = Config::load(Some(&config_file)).expect("loads");
    let report =
        Report::build(&fixture("valid"), &config, None, &Audience::Everyone).expect("renders");
    let d = only(&report.loaded, Rule::LowContrast);
    assert_eq!(d.severity, Severity::Warning);
    assert_at(&d, "lscp-mail.toml", 3, Some("brand.accent_colour"));
    assert!(d.message.contains("2.07:1"), "{d}");

    let out = crate::common::lscp_mail(&["--config"])
        .arg(&config_file)
        .args(["check", "--strict"])
        .arg(fixture("valid"))
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(
        said.matches("`brand.accent_colour` on white (#ffffff) has a contrast of 2.07:1")
            .count(),
        1,
        "said once: {said}"
    );
}
