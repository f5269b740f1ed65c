//! `lscp-mail compose` and `check` as a user runs them: files written, summary printed,
//! exit codes a script can trust, and nothing written when the issue is broken.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::lscp_mail;
use mail_parser::MimeHeaders;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("lscp-mail runs");
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

#[test]
fn compose_writes_the_html_the_text_and_a_message_and_prints_a_summary() {
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 path");
    let (code, stdout, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2026-02",
        "--out",
        out_dir,
    ]));
    assert_eq!(code, 0, "{stderr}");
    for file in ["index.html", "index.txt", "message.eml"] {
        assert!(out.path().join(file).is_file(), "{file} written");
    }
    for line in [
        "February 2026 newsletter (2026-02) for every reader",
        "sections  7 of 7",
        "KB HTML",
        "of Gmail's 102.0 KB clip limit",
        "links",
        "warnings  0",
    ] {
        assert!(stdout.contains(line), "summary lacks {line:?}:\n{stdout}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left behind");
}

#[test]
fn the_message_is_multipart_alternative_with_text_then_html_and_a_message_id() {
    let out = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2025-11",
        "--out",
        out.path().to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let raw = std::fs::read(out.path().join("message.eml")).expect("eml");
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a parseable message");
    let subject = std::fs::read_to_string(root().join("issues/2025-11/issue.toml"))
        .expect("issue.toml")
        .lines()
        .find_map(|l| {
            l.strip_prefix("subject = \"")
                .map(|s| s.trim_end_matches('"').to_string())
        })
        .expect("a subject line");
    assert_eq!(message.subject(), Some(subject.as_str()));
    let ct = message.root_part().content_type().expect("content type");
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("alternative"));
    let id = message.message_id().expect("Message-ID");
    assert!(id.ends_with("@news.leedsscp.org.uk"), "{id}");
    assert!(message.date().is_some(), "Date header");
    let from = message.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.address(), Some("lscp.info@leeds.gov.uk"));
    let text = message.body_text(0).expect("text part");
    let html = message.body_html(0).expect("html part");
    assert!(text.contains("Partnership Intelligence Portal"));
    assert!(html.contains("<html lang=\"en-GB\""));
    let text_at = raw
        .windows(10)
        .position(|w| w == b"text/plain")
        .expect("text part");
    let html_at = raw
        .windows(9)
        .position(|w| w == b"text/html")
        .expect("html part");
    assert!(text_at < html_at, "text first, then HTML (RFC 2046 order)");
}

#[test]
fn topics_previews_only_what_a_reader_of_those_topics_receives() {
    let out = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2026-02",
        "--topics",
        "training",
        "--out",
        out.path().to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("for a reader of training"), "{stdout}");
    let text = std::fs::read_to_string(out.path().join("index.txt")).expect("text");
    assert!(text.contains("LSCP Training - New dates for 2026"));
    assert!(
        !text.contains("Safer Sleep Week"),
        "an events section leaked in"
    );
}

#[test]
fn an_unknown_topic_on_the_command_line_is_a_usage_error() {
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2026-02",
        "--topics",
        "trainig",
    ]));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown topic `trainig`"), "{stderr}");
}

#[test]
fn a_broken_issue_is_refused_and_nothing_is_written() {
    let out = tempfile::tempdir().expect("temp dir");
    let target = out.path().join("preview");
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "compose",
        &fixture("weekday-mismatch"),
        "--out",
        target.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("01-training.toml:9:3: error: 15 April 2026 is a Wednesday, not a Tuesday"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!target.exists(), "no preview folder for a broken issue");
}

#[test]
fn check_exits_0_when_clean_and_1_on_errors() {
    let (code, stdout, _) = run(&mut lscp_mail(&["check", "issues/2024-04", "--strict"]));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 errors, 0 warnings"));

    let (code, stdout, _) = run(&mut lscp_mail(&["check", &fixture("no-way-to-book")]));
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "01-training.toml:4:1: error: the course \"Training for trainers\" has no way to book"
        ),
        "{stdout}"
    );
}

#[test]
fn warnings_fail_check_only_with_strict() {
    let (code, stdout, _) = run(&mut lscp_mail(&["check", &fixture("insecure-link")]));
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = run(&mut lscp_mail(&[
        "check",
        &fixture("insecure-link"),
        "--strict",
    ]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("--strict"), "{stdout}");
}

#[test]
fn a_missing_config_file_is_a_clear_failure() {
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "--config",
        "nowhere.toml",
        "check",
        "issues/2024-04",
    ]));
    assert_eq!(code, 3);
    assert!(stderr.contains("nowhere.toml does not exist"), "{stderr}");
}

#[test]
fn a_config_syntax_error_names_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lscp-mail.toml");
    std::fs::write(&config, "[brand]\norganisation = \"Leeds\n").expect("write");
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "--config",
        config.to_str().expect("utf-8"),
        "check",
        "issues/2024-04",
    ]));
    assert_eq!(code, 3);
    assert!(stderr.contains("lscp-mail.toml:2:"), "{stderr}");
}

#[test]
fn the_environment_overrides_the_configuration_file() {
    let out = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = run(lscp_mail(&[
        "compose",
        "issues/2024-04",
        "--out",
        out.path().to_str().expect("utf-8"),
    ])
    .env("LSCP_MAIL_SITE__BASE_URL", "https://newsletter.example.org")
    .env(
        "LSCP_MAIL_BRAND__ORGANISATION",
        "Example Safeguarding Partnership",
    ));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(out.path().join("index.txt")).expect("text");
    assert!(
        text.contains("https://newsletter.example.org/issues/2024-04"),
        "{text}"
    );
    assert!(text.contains("Example Safeguarding Partnership"));
}

#[test]
fn a_bad_setting_from_the_environment_says_where_it_came_from() {
    let (code, _, stderr) =
        run(lscp_mail(&["check", "issues/2024-04"]).env("LSCP_MAIL_BRAND__PRIMARY_COLOUR", "red"));
    assert_eq!(code, 3);
    assert!(stderr.contains("brand.primary_colour"), "{stderr}");
    assert!(
        stderr.contains("LSCP_MAIL_"),
        "names the environment variable: {stderr}"
    );
}

#[test]
fn compose_works_from_any_directory_with_the_built_in_templates() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let issue: PathBuf = root().join("issues/2025-03");
    let (code, stdout, stderr) =
        run(lscp_mail(&["compose", issue.to_str().expect("utf-8")]).current_dir(elsewhere.path()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("wrote out/2025-03/index.html"), "{stdout}");
    assert!(elsewhere.path().join("out/2025-03/index.html").is_file());
}

#[test]
fn a_template_folder_replaces_the_built_in_template_of_the_same_name() {
    let templates = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(templates.path().join("partials")).expect("mkdir");
    std::fs::write(
        templates.path().join("partials/footer.mjml.hbs"),
        "<mj-section><mj-column><mj-text>A footer of our own for {{brand.short_name}}</mj-text></mj-column></mj-section>",
    )
    .expect("write");
    let out = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2025-03",
        "--templates",
        templates.path().to_str().expect("utf-8"),
        "--out",
        out.path().to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(out.path().join("index.html")).expect("html");
    assert!(html.contains("A footer of our own for LSCP"));
    assert!(
        html.contains("Register for your copy"),
        "the other templates stay built in"
    );
}

/// A templates folder with a misspelt footer beside a correctly named header.
fn templates_with_a_misspelt_footer() -> tempfile::TempDir {
    let templates = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(templates.path().join("partials")).expect("mkdir");
    let footer = "<mj-section><mj-column><mj-text>Ours</mj-text></mj-column></mj-section>";
    std::fs::write(templates.path().join("fotter.mjml.hbs"), footer).expect("write");
    std::fs::copy(
        root().join("templates/partials/header.mjml.hbs"),
        templates.path().join("partials/header.mjml.hbs"),
    )
    .expect("copy");
    templates
}

#[test]
fn check_warns_of_a_template_file_that_replaces_no_template() {
    let templates = templates_with_a_misspelt_footer();
    let dir = templates.path().to_str().expect("utf-8");
    let (code, stdout, _) = run(&mut lscp_mail(&[
        "check",
        "issues/2025-03",
        "--templates",
        dir,
    ]));
    assert_eq!(code, 0, "a warning, not an error:\n{stdout}");
    assert!(
        stdout.contains("fotter.mjml.hbs: warning: `fotter.mjml.hbs` replaces no template"),
        "{stdout}"
    );
    assert!(
        stdout.contains("did you mean `partials/footer.mjml.hbs`?"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("header.mjml.hbs: warning"),
        "a file that replaces a template is no warning:\n{stdout}"
    );
    assert!(stdout.contains("0 errors, 1 warning"), "{stdout}");
    let (code, _, _) = run(&mut lscp_mail(&[
        "check",
        "issues/2025-03",
        "--templates",
        dir,
        "--strict",
    ]));
    assert_eq!(code, 1, "--strict fails on it");
}

#[test]
fn compose_warns_of_a_template_file_that_replaces_no_template() {
    let templates = templates_with_a_misspelt_footer();
    let out = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(&mut lscp_mail(&[
        "compose",
        "issues/2025-03",
        "--templates",
        templates.path().to_str().expect("utf-8"),
        "--out",
        out.path().to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: `fotter.mjml.hbs` replaces no template"),
        "{stderr}"
    );
    assert!(stdout.contains("warnings  1"), "{stdout}");
    let html = std::fs::read_to_string(out.path().join("index.html")).expect("html");
    assert!(!html.contains("Ours"), "the misspelt file is not used");
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in ["compose", "check", "preview", "new"] {
        let (code, stdout, _) = run(&mut lscp_mail(&[sub, "--help"]));
        assert_eq!(code, 0);
        assert!(stdout.contains("Examples:"), "{sub} --help:\n{stdout}");
        assert!(stdout.contains("Exit codes:"), "{sub} --help:\n{stdout}");
    }
}

#[test]
fn a_course_booked_online_or_by_email_offers_both_in_the_text() {
    let issue = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(root().join(fixture("valid"))).expect("fixture") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path).expect("fixture file");
        if path.ends_with("02-training.toml") {
            text = text.replace(
                "booking_email = \"safeguarding.lypft@nhs.net\"",
                "booking_url = \"https://www.leedsscp.org.uk/training/parental-mental-health\"\n\
                 booking_email = \"safeguarding.lypft@nhs.net\"",
            );
        }
        std::fs::write(issue.path().join(path.file_name().expect("name")), text).expect("copy");
    }
    let out = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = run(&mut lscp_mail(&[
        "compose",
        issue.path().to_str().expect("utf-8 path"),
        "--out",
        out.path().to_str().expect("utf-8 path"),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(out.path().join("index.txt")).expect("index.txt");
    assert!(
        text.contains("Or book by email: safeguarding.lypft@nhs.net"),
        "{text}"
    );
    assert!(!text.contains("by email by email"), "{text}");
}
