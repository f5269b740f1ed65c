//! A special edition (tests/fixtures/special-edition, modelled on a safeguarding week's):
//! training listed by title under sub-headings declared once, each title a link, shown as a
//! list rather than a block and a button per course; a table of resources (subject, photo and
//! description per row); Markdown in every description a reader sees, in the HTML and in the
//! plain text.

use std::path::{Path, PathBuf};

use lscp_mail::content::{Diagnostic, Issue, Loaded, Rule, Severity, TopicCatalog, load_issue};
use lscp_mail::render::{Audience, Rendered};

pub fn special_edition_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/special-edition")
}

fn special_edition() -> Issue {
    let loaded = load_issue(&special_edition_dir(), &TopicCatalog::builtin());
    assert_eq!(loaded.diagnostics, vec![], "the special edition is clean");
    loaded.issue.expect("the special edition loads")
}

fn render(issue: &Issue) -> Rendered {
    render_for(issue, &Audience::Everyone)
}

fn render_for(issue: &Issue, audience: &Audience) -> Rendered {
    crate::common::issues::render(issue, audience)
}

/// Loads a one-section issue whose section file is `section`.
fn load_section(section: &str) -> Loaded {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("issue.toml"),
        "title = \"T\"\nmonth = \"2026-06\"\npublished = 2026-06-15\nsubject = \"S\"\npreheader = \"A preheader long enough to say something about the issue.\"\n",
    )
    .expect("issue.toml");
    std::fs::write(dir.path().join("01-training.toml"), section).expect("section");
    load_issue(dir.path(), &TopicCatalog::builtin())
}

/// The issue's only error, failing with everything found when there is not exactly one.
fn the_one_error(loaded: &Loaded) -> Diagnostic {
    assert!(loaded.issue.is_none(), "an issue with errors is refused");
    let errors: Vec<_> = loaded.errors().cloned().collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].clone()
}

#[test]
fn courses_listed_by_title_are_a_list_of_links_under_each_group_heading() {
    let html = render(&special_edition()).html;
    for group in [
        "Live training sessions",
        "Recorded sessions on YouTube",
        "Live briefings",
    ] {
        assert_eq!(
            html.matches(&format!("<h3>{group}</h3>")).count(),
            1,
            "{group}"
        );
    }
    assert!(
        html.contains("<a href=\"https://www.youtube.com/watch?v=safer-sleep-2026\""),
        "the title links to its page"
    );
    // One list item per course; no block heading, no button, no booking words.
    assert_eq!(html.matches("<li id=\"training-").count(), 6, "{html}");
    assert!(!html.contains("<h4 id=\"training-"), "{html}");
    assert!(!html.contains("Book your place"), "{html}");
    assert!(html.contains("<a href=\"https://www.leeds.gov.uk/early-help\""));
}

#[test]
fn the_plain_text_lists_each_course_title_with_its_address_under_its_group() {
    let text = render(&special_edition()).text;
    assert!(
        text.contains(
            "RECORDED SESSIONS ON YOUTUBE\n\n\
             - Safer sleep for babies\n  https://www.youtube.com/watch?v=safer-sleep-2026\n\
             - Child exploitation: spotting the signs\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  For practitioners in early help (https://www.leeds.gov.uk/early-help)"),
        "{text}"
    );
    assert!(!text.contains("Book your place"), "{text}");
}

#[test]
fn markdown_in_saved_links_and_intros_becomes_lists_links_and_bold() {
    let rendered = render(&special_edition());
    let html = rendered.html;
    assert!(
        html.contains("<strong>Leeds Safeguarding Week</strong>"),
        "issue intro"
    );
    assert!(
        html.contains("<strong>at any time</strong>"),
        "section intro"
    );
    assert!(
        html.contains(
            "<br />Procedures <strong>all practitioners</strong> in Leeds should follow.</p>"
        ),
        "a one-paragraph description stays on the link's line: {html}"
    );
    assert!(
        html.contains("<li>the concerns resolution process,</li>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://www.leedsscp.org.uk/interpreters\""),
        "{html}"
    );
    assert!(!html.contains("**"), "no Markdown left as written: {html}");

    let text = rendered.text;
    assert!(
        text.contains("Local protocols: Procedures all practitioners in Leeds should follow.\nhttps://www.leedsscp.org.uk/practitioners/local-protocols"),
        "{text}"
    );
    assert!(
        text.contains(
            "Team meeting briefings:\nStructured discussions for your next team meeting:\n\n\
             - the concerns resolution process,\n\
             - working with interpreters (https://www.leedsscp.org.uk/interpreters),\n\
             - and safer sleep.\n\
             https://www.leedsscp.org.uk/practitioners/briefings"
        ),
        "{text}"
    );
    assert!(!text.contains("**"), "{text}");
}

#[test]
fn a_course_with_no_sessions_needs_a_page_or_a_way_to_book() {
    let loaded = load_section(
        "kind = \"training\"\nheading = \"H\"\n\n[[groups]]\nheading = \"Recorded\"\n\n[[groups.courses]]\ntitle = \"Safer sleep\"\n",
    );
    let d = the_one_error(&loaded);
    assert_eq!(d.rule, Rule::NoWayToBook);
    assert_eq!(d.field.as_deref(), Some("groups[0].courses[0]"));
    assert!(
        d.hint.as_deref().is_some_and(|h| h.contains("url =")),
        "{}",
        d
    );
}

#[test]
fn a_dated_course_still_needs_a_way_to_book_even_with_a_page() {
    let loaded = load_section(
        "kind = \"training\"\nheading = \"H\"\n\n[[courses]]\ntitle = \"Live\"\nurl = \"https://example.org/live\"\nsessions = [\"Tuesday 16 June 2026, 9am to 10am\"]\n",
    );
    let d = the_one_error(&loaded);
    assert_eq!(d.rule, Rule::NoWayToBook);
    assert_eq!(d.field.as_deref(), Some("courses[0]"));
}

#[test]
fn a_group_is_declared_once_not_again_on_its_courses() {
    let loaded = load_section(
        "kind = \"training\"\nheading = \"H\"\n\n[[groups]]\nheading = \"Recorded\"\n\n[[groups.courses]]\ntitle = \"A\"\ngroup = \"Webinars\"\nurl = \"https://example.org/a\"\n",
    );
    let d = the_one_error(&loaded);
    assert_eq!(d.rule, Rule::BadValue);
    assert_eq!(d.field.as_deref(), Some("groups[0].courses[0].group"));
    assert_eq!(d.position.map(|p| p.0), Some(9), "{}", d);

    let both = load_section(
        "kind = \"training\"\nheading = \"H\"\n\n[[courses]]\ntitle = \"A\"\nurl = \"https://example.org/a\"\n\n[[groups]]\nheading = \"G\"\n\n[[groups.courses]]\ntitle = \"B\"\nurl = \"https://example.org/b\"\n",
    );
    let d = the_one_error(&both);
    assert_eq!(d.field.as_deref(), Some("groups"));
}

#[test]
fn an_image_beside_its_text_has_a_column_of_its_own_and_a_caption() {
    let rendered = render(&special_edition());
    let html = rendered.html;
    // Two columns that MJML stacks on a phone: the image's (40%) before the text's (60%).
    let image = html
        .find("amina-khan.jpg")
        .expect("the speaker's photo is in the email");
    let body = html
        .find("<strong>Dr Amina Khan</strong> opened")
        .expect("the text is in the email");
    assert!(image < body, "a left image comes first");
    assert!(html.contains("mj-column-per-40"), "{html}");
    assert!(html.contains("mj-column-per-60"), "{html}");
    assert!(
        html.contains("Dr Amina Khan, <em>designated doctor for safeguarding</em>"),
        "the caption is Markdown: {html}"
    );
    let text = rendered.text;
    assert!(
        text.contains(
            "[Image: Dr Amina Khan speaking at the Safeguarding Week opening]\n\n\
             Dr Amina Khan, designated doctor for safeguarding"
        ),
        "{text}"
    );
}

#[test]
fn an_unknown_image_placement_is_an_error_that_lists_the_placements() {
    let loaded = load_section(
        "kind = \"article\"\nheading = \"H\"\nbody = \"B\"\n\n[image]\nsrc = \"https://example.org/a.png\"\nalt = \"A\"\nplacement = \"centre\"\n",
    );
    let d = the_one_error(&loaded);
    assert_eq!(d.rule, Rule::BadValue);
    assert!(
        d.message.contains("below") && d.message.contains("right"),
        "{}",
        d
    );
}

#[test]
fn a_table_of_resources_is_a_row_per_subject_with_photo_and_description_side_by_side() {
    let html = render(&special_edition()).html;
    // Per row, two columns that MJML stacks on a phone: subject and photo (35%) first, then
    // the description (65%).
    assert!(html.contains("mj-column-per-35"), "{html}");
    assert!(html.contains("mj-column-per-65"), "{html}");
    let subject = html
        .find("<h3 id=\"resources-1\"><a href=\"https://www.leedsscp.org.uk/practitioners/professional-curiosity\"")
        .expect("the subject is a heading linked to its page");
    let photo = html
        .find("alt=\"Jo Bell in front of the Safeguarding Week banner\"")
        .expect("the photo has its alt text");
    let description = html
        .find("<em>safeguarding lead for Leeds Community Healthcare</em>")
        .expect("the description is Markdown");
    assert!(
        subject < photo && photo < description,
        "subject, photo, then description"
    );
    assert!(
        html.contains("Jo Bell, <strong>safeguarding lead</strong>"),
        "the caption is Markdown: {html}"
    );
    assert!(
        html.contains("<li>the slides from the session,</li>"),
        "{html}"
    );
    assert!(
        html.contains("<ol>"),
        "a numbered list stays numbered: {html}"
    );
    // A local photo is published with the issue, resized for its 160 px column.
    let local = special_edition();
    let images = local.local_images();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].target_width, 320, "twice its display width");
    assert!(
        html.contains(&format!("/issues/2026-06/{}\"", images[0].published_name)),
        "the email loads the published photo: {html}"
    );
    assert!(
        html.contains("src=\"https://www.leedsscp.org.uk/images/speakers/ruth-okafor.jpg\""),
        "a remote photo is loaded from its address"
    );
    // A row with no page has a plain heading; a row with no photo has none.
    assert!(
        html.contains("<h3 id=\"resources-3\">When agencies disagree</h3>"),
        "{html}"
    );
}

#[test]
fn the_plain_text_gives_each_resource_its_subject_address_photo_and_description() {
    let text = render(&special_edition()).text;
    assert!(
        text.contains(
            "Professional curiosity\n----------------------\n\n\
             https://www.leedsscp.org.uk/practitioners/professional-curiosity\n\n\
             [Image: Jo Bell in front of the Safeguarding Week banner]\n\n\
             Jo Bell, safeguarding lead\n\n\
             Jo Bell, safeguarding lead for Leeds Community Healthcare, on asking the\n\
             second question:\n\n\
             - the seven-minute briefing\n  \
             (https://www.leedsscp.org.uk/briefings/professional-curiosity),"
        ),
        "{text}"
    );
    assert!(
        text.contains("When agencies disagree\n----------------------\n\nWhen you disagree"),
        "a row with no page or photo: {text}"
    );
    assert!(
        text.contains("1. talk to the worker,\n2. then to their manager,\n3. then follow"),
        "a numbered list keeps its numbers: {text}"
    );
}

#[test]
fn a_table_of_resources_reaches_only_the_readers_of_its_topic() {
    let issue = special_edition();
    let catalog = TopicCatalog::builtin();
    let training = Audience::Topics(catalog.parse_list("training").expect("topic"));
    let events = Audience::Topics(catalog.parse_list("events").expect("topic"));
    for (audience, shown) in [(training, false), (events, true)] {
        let rendered = render_for(&issue, &audience);
        assert_eq!(
            rendered.html.contains("Resources from the week"),
            shown,
            "{audience:?}: html"
        );
        assert_eq!(
            rendered.text.contains("Resources from the week"),
            shown,
            "{audience:?}: text"
        );
    }
}

const PHOTO_ROW: &str = "kind = \"resources\"\nheading = \"Speakers\"\n\n[[resources]]\nsubject = \"Professional curiosity\"\n\n[resources.photo]\nsrc = \"https://example.org/jo.jpg\"\n";

#[test]
fn a_resource_photo_without_alt_text_is_an_error_at_its_line() {
    let d = the_one_error(&load_section(PHOTO_ROW));
    assert_eq!(d.rule, Rule::MissingAltText);
    assert_eq!(d.field.as_deref(), Some("resources[0].photo.alt"));
    assert_eq!(
        d.position.map(|(line, _)| line),
        Some(7),
        "the photo's table: {d}"
    );
}

#[test]
fn a_resource_row_with_an_unknown_key_is_an_error_at_its_line_and_column() {
    let d = the_one_error(&load_section(&format!(
        "{PHOTO_ROW}alt = \"Jo\"\n\n[[resources]]\nsubject = \"Escalation\"\nlinks = \"https://example.org/e\"\n"
    )));
    assert_eq!(d.rule, Rule::UnknownField);
    assert!(d.message.contains("links"), "{d}");
    assert_eq!(d.position, Some((13, 1)), "{d}");
}

#[test]
fn a_missing_local_photo_is_an_error_naming_the_photo() {
    let d = the_one_error(&load_section(
        &(PHOTO_ROW.replace("https://example.org/jo.jpg", "jo.jpg") + "alt = \"Jo\"\n"),
    ));
    assert_eq!(d.rule, Rule::ImageFile);
    assert_eq!(d.field.as_deref(), Some("resources[0].photo.src"));
    assert_eq!(d.position, Some((8, 7)), "{d}");
}

#[test]
fn a_resource_subject_that_says_nothing_out_of_context_is_a_warning() {
    let loaded = load_section(
        "kind = \"resources\"\nheading = \"Speakers\"\n\n[[resources]]\nsubject = \"Click here\"\nurl = \"https://example.org/e\"\n",
    );
    assert!(loaded.issue.is_some(), "a warning, not an error");
    let warnings: Vec<_> = loaded.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert_eq!(warnings[0].rule, Rule::VagueLinkText);
    assert_eq!(warnings[0].field.as_deref(), Some("resources[0].subject"));
    assert_eq!(warnings[0].position, Some((5, 11)));
}

#[test]
fn an_empty_table_of_resources_is_an_error() {
    let d = the_one_error(&load_section(
        "kind = \"resources\"\nheading = \"Speakers\"\n",
    ));
    assert_eq!(d.rule, Rule::EmptySection);
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("[[resources]]")),
        "{d}"
    );
}
