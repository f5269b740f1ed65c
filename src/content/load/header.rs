//! `issue.toml`: the month, the dates, the subject and preheader, and the texts still to write.

use std::ops::Range;
use std::path::Path;

use chrono::NaiveDate;

use super::super::diagnostic::{Diagnostic, Rule};
use super::super::issue::*;
use super::super::model::IssueToml;
use super::file::File;
use super::{Cx, PLACEHOLDER};

/// Inbox apps show roughly this much of a preheader.
const PREHEADER_MAX: usize = 140;
/// Longer subjects are cut off on phones and in most inbox lists.
const SUBJECT_MAX: usize = 90;

impl Cx<'_> {
    pub(super) fn header(&mut self, file: &File, dir: &Path, raw: IssueToml) -> Option<Header> {
        let id = match IssueId::parse(raw.month.get_ref()) {
            Ok(id) => Some(id),
            Err(e) => {
                self.push(
                    file.error(Rule::BadValue, raw.month.span(), e.to_string())
                        .field("month"),
                );
                None
            }
        };
        // A folder named for another month is the mistake worth catching; a draft folder with
        // another kind of name is the editor's choice.
        let folder = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| IssueId::parse(n).is_ok());
        if let (Some(id), Some(name)) = (id, folder)
            && name != id.to_string()
        {
            self.push(
                file.warning(
                    Rule::IssueMonth,
                    raw.month.span(),
                    format!("the month is {id} but the folder is called `{name}`"),
                )
                .field("month")
                .hint(format!("name the folder issues/{id}")),
            );
        }
        let published = self.date(file, &raw.published, "published");
        let subject = raw.subject.get_ref().trim().to_string();
        if subject.is_empty() {
            self.push(
                file.error(Rule::BadValue, raw.subject.span(), "the subject is empty")
                    .field("subject"),
            );
        } else if subject.chars().count() > SUBJECT_MAX {
            self.push(
                file.warning(
                    Rule::SubjectLength,
                    raw.subject.span(),
                    format!(
                        "the subject is {} characters; phones cut it off after about {SUBJECT_MAX}",
                        subject.chars().count()
                    ),
                )
                .field("subject"),
            );
        }
        let preheader = raw.preheader.get_ref().trim().to_string();
        let n = preheader.chars().count();
        if n == 0 || n > PREHEADER_MAX {
            self.push(
                file.warning(
                    Rule::PreheaderLength,
                    raw.preheader.span(),
                    format!("the preheader is {n} characters; inboxes show 40 to {PREHEADER_MAX}"),
                )
                .field("preheader")
                .hint("one sentence that adds to the subject"),
            );
        }
        self.placeholders(
            file,
            [
                ("title", raw.title.as_str(), None),
                ("subject", &subject, Some(raw.subject.span())),
                ("preheader", &preheader, Some(raw.preheader.span())),
                (
                    "intro",
                    raw.intro.as_ref().map_or("", |i| i.get_ref().as_str()),
                    raw.intro.as_ref().map(|i| i.span()),
                ),
            ],
        );
        Some(Header {
            id: id?,
            title: raw.title,
            published: published?,
            subject,
            preheader,
            intro: self.markdown(file, raw.intro, "intro", 1),
            contents: raw.contents,
        })
    }

    pub(super) fn placeholders<'t>(
        &mut self,
        file: &File,
        texts: impl IntoIterator<Item = (&'t str, &'t str, Option<Range<usize>>)>,
    ) {
        for (field, text, span) in texts {
            if text.trim_start().starts_with(PLACEHOLDER) {
                self.push(
                    Diagnostic::warning(
                        Rule::Placeholder,
                        file.src.path,
                        format!("{field} still to write"),
                    )
                    .at(span.and_then(|s| file.pos(s)))
                    .field(field)
                    .hint(format!("replace the `{PLACEHOLDER}: …` text")),
                );
            }
        }
    }
}

pub(super) struct Header {
    pub(super) id: IssueId,
    pub(super) title: String,
    pub(super) published: NaiveDate,
    pub(super) subject: String,
    pub(super) preheader: String,
    pub(super) intro: Option<Markdown>,
    pub(super) contents: bool,
}
