//! Each reader's email holds exactly the sections of their topics, even when an issue's section
//! files are named so that their anchors would collide (`09-leak.toml`, `10_leak.toml`).

use std::path::Path;

use lscp_mail::config::Config;
use lscp_mail::content::{Issue, TopicCatalog, load_issue};
use lscp_mail::render::{Audience, ReaderLinks, Rendered, Renderer, variants};

fn colliding() -> Issue {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/colliding-anchors");
    let loaded = load_issue(&dir, &TopicCatalog::builtin());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.issue.expect("the fixture loads")
}

/// Every section heading is in both parts of `rendered` exactly when `audience` gets it.
fn assert_exactly_its_sections(issue: &Issue, audience: &Audience, rendered: &Rendered) {
    for section in &issue.sections {
        let wanted = audience.includes(section);
        for (part, body) in [("html", &rendered.html), ("text", &rendered.text)] {
            assert_eq!(
                body.contains(&section.heading),
                wanted,
                "{audience:?} {part}: \"{}\" ({}, {:?})",
                section.heading,
                section.file.display(),
                section.topic
            );
        }
    }
}

#[test]
fn section_files_named_alike_get_anchors_of_their_own() {
    let issue = colliding();
    let anchors: Vec<&str> = issue.sections.iter().map(|s| s.anchor.as_str()).collect();
    assert_eq!(anchors, ["welcome", "leak", "leak-2", "leak-2-2"]);
}

#[test]
fn every_variant_of_an_issue_built_to_collide_has_exactly_the_sections_of_its_topics() {
    let issue = colliding();
    let config = Config::default();
    let catalog = TopicCatalog::builtin();
    let links = ReaderLinks::preview(&config, &issue);
    let renderer = Renderer::new(None).expect("built-in templates");
    let all = renderer
        .render_variants(&issue, &config, &catalog, &links)
        .expect("renders");
    assert_exactly_its_sections(&issue, &Audience::Everyone, &all.full);
    assert_eq!(all.by_topics.len(), variants(&issue).len());
    assert_eq!(all.by_topics.len(), 7, "three topics, seven variants");
    for (set, assembled) in &all.by_topics {
        let audience = Audience::Topics(set.clone());
        assert_exactly_its_sections(&issue, &audience, assembled);
        let alone = renderer
            .render(&issue, &config, &catalog, &audience, &links)
            .expect("renders");
        assert_exactly_its_sections(&issue, &audience, &alone);
    }
}
