//! The values every kind of section shares, each judged the same way wherever it appears:
//! dates, topics, headings, links and their words, Markdown.

use std::ops::Range;

use chrono::NaiveDate;
use toml::Spanned;
use toml::value::Datetime;

use super::super::accessibility::{skipped_heading, vague_link_text};
use super::super::diagnostic::{Diagnostic, Rule};
use super::super::issue::*;
use super::super::topic::Topic;
use super::Cx;
use super::file::File;

const VAGUE_LINK_HINT: &str =
    "say where the link goes, e.g. [book safer sleep training](…) rather than [click here](…)";

impl Cx<'_> {
    pub(super) fn date(
        &mut self,
        file: &File,
        value: &Spanned<Datetime>,
        field: &str,
    ) -> Option<NaiveDate> {
        let d = value.get_ref();
        let date = match (d.date, d.time, d.offset) {
            (Some(date), None, None) => {
                NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
            }
            _ => None,
        };
        if date.is_none() {
            self.push(
                file.error(
                    Rule::BadValue,
                    value.span(),
                    format!("`{d}` is not a plain date"),
                )
                .field(field)
                .hint("write a date without a time, such as 2026-02-02"),
            );
        }
        date
    }

    pub(super) fn topic(&mut self, file: &File, topic: Option<Spanned<String>>) -> Option<Topic> {
        let topic = topic?;
        match self.topics.parse(topic.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(
                    file.error(Rule::UnknownTopic, topic.span(), e.to_string())
                        .field("topic")
                        .hint("leave `topic` out for a section every reader gets"),
                );
                None
            }
        }
    }

    pub(super) fn heading(&mut self, file: &File, heading: &Spanned<String>) -> String {
        let h = heading.get_ref().trim().to_string();
        if h.is_empty() {
            self.push(
                file.error(Rule::BadValue, heading.span(), "the heading is empty")
                    .field("heading"),
            );
        }
        h
    }

    pub(super) fn link(
        &mut self,
        file: &File,
        value: &Spanned<String>,
        field: &str,
    ) -> Option<Link> {
        match Link::parse(value.get_ref()) {
            Ok(link) => {
                if !link.is_https() {
                    self.push(
                        file.warning(
                            Rule::InsecureLink,
                            value.span(),
                            format!("`{}` is not https", link.as_str()),
                        )
                        .field(field)
                        .hint("mail filters and readers trust https links more"),
                    );
                }
                Some(link)
            }
            Err(e) => {
                self.push(
                    file.error(Rule::BadLink, value.span(), e.to_string())
                        .field(field),
                );
                None
            }
        }
    }

    /// Markdown text, its links judged as `check` judges every link: each destination must be
    /// one a reader can safely follow from an email (see [`markdown_link_target`]).
    pub(super) fn markdown(
        &mut self,
        file: &File,
        value: Option<Spanned<String>>,
        field: &str,
        under: u8,
    ) -> Option<Markdown> {
        let span = value.as_ref()?.span();
        let md = Markdown(value?.into_inner());
        let at = |offset| {
            Some(file.src.position(markdown_offset_in_source(
                file.src.text,
                span.clone(),
                &md.0,
                offset,
            )))
        };
        for (offset, dest) in md.link_destinations() {
            if let Err(e) = markdown_link_target(&dest) {
                self.push(
                    Diagnostic::error(Rule::BadLink, file.src.path, e.to_string())
                        .at(at(offset))
                        .field(field)
                        .hint("link to a web page (https://…), an address (mailto:…, tel:…) or a heading in this email (#…)"),
                );
            }
        }
        for (offset, text, dest) in md.link_texts() {
            if let Some(why) = vague_link_text(&text, &dest) {
                self.push(
                    Diagnostic::warning(Rule::VagueLinkText, file.src.path, why)
                        .at(at(offset))
                        .field(field)
                        .hint(VAGUE_LINK_HINT),
                );
            }
        }
        let headings = md.headings();
        let levels: Vec<u8> = headings.iter().map(|&(_, level)| level).collect();
        for (i, expected) in skipped_heading(under, &levels) {
            let (offset, level) = headings[i];
            let before = if i == 0 { under } else { levels[i - 1] };
            self.push(
                Diagnostic::warning(
                    Rule::HeadingSkip,
                    file.src.path,
                    format!(
                        "a level-{level} heading follows a level-{before} heading, skipping a level"
                    ),
                )
                .at(at(offset))
                .field(field)
                .hint(format!(
                    "write it with {} (screen reader users move between headings by level)",
                    "#".repeat(expected.into())
                )),
            );
        }
        Some(md)
    }

    /// A button's or saved link's words, judged as Markdown links are.
    pub(super) fn link_words(
        &mut self,
        file: &File,
        span: Range<usize>,
        text: &str,
        dest: &str,
        field: String,
    ) {
        if let Some(why) = vague_link_text(text, dest) {
            self.push(
                file.warning(Rule::VagueLinkText, span, why)
                    .field(field)
                    .hint(VAGUE_LINK_HINT),
            );
        }
    }

    pub(super) fn empty(&mut self, file: &File, heading: &Spanned<String>, what: &str) {
        self.push(
            file.error(
                Rule::EmptySection,
                heading.span(),
                format!("the section \"{}\" is empty", heading.get_ref().trim()),
            )
            .hint(what.to_string()),
        );
    }
}

/// Where, in a TOML file, the character at `offset` of a string value (spanning `span`, quotes
/// included) was written: its line, counted from the value's opening quote. TOML drops a line
/// break right after an opening `"""`, which is counted back in.
fn markdown_offset_in_source(text: &str, span: Range<usize>, value: &str, offset: usize) -> usize {
    let end = span.end.min(text.len());
    let raw = text.get(span.start..end).unwrap_or("");
    let mut at = span.start;
    let mut lines = value[..value.floor_char_boundary(offset)]
        .matches('\n')
        .count();
    let opening = raw.trim_start_matches(['"', '\'']);
    if raw.len() - opening.len() == 3 && (opening.starts_with('\n') || opening.starts_with("\r\n"))
    {
        lines += 1;
    }
    while lines > 0 {
        match text.get(at..end).and_then(|rest| rest.find('\n')) {
            Some(n) => at += n + 1,
            None => break,
        }
        lines -= 1;
    }
    at
}
