//! `kind = "diary"`: dates for the diary, a day or a range, each with a label.

use chrono::NaiveDate;
use toml::Spanned;

use super::super::diagnostic::Rule;
use super::super::issue::*;
use super::super::model::*;
use super::super::when::format_date;
use super::file::File;
use super::{Cx, Judged};

impl Cx<'_> {
    /// `kind = "diary"`: dates for the diary.
    pub(super) fn diary_section(
        &mut self,
        file: &File,
        anchor: &Anchor,
        published: Option<NaiveDate>,
    ) -> Option<Judged> {
        let raw: DiaryToml = self.parse(file)?;
        let heading = self.heading(file, &raw.heading);
        let topic = self.topic(file, raw.topic);
        let intro = self.markdown(file, raw.intro, "intro", 2);
        if raw.dates.is_empty() {
            self.empty(file, &raw.heading, "add at least one [[dates]] table");
        }
        let dates: Vec<_> = raw
            .dates
            .into_iter()
            .enumerate()
            .map(|(i, d)| self.diary_date(file, anchor, i, d, published))
            .collect();
        let body = dates
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|dates| SectionBody::Diary(Diary { intro, dates }));
        Some((heading, topic, body))
    }

    pub(super) fn diary_date(
        &mut self,
        file: &File,
        anchor: &str,
        i: usize,
        date: Spanned<DiaryDateToml>,
        published: Option<NaiveDate>,
    ) -> Option<DiaryDate> {
        let span = date.span();
        let d = date.into_inner();
        let field = |k: &str| format!("dates[{i}].{k}");
        let when = match (&d.date, &d.from, &d.to) {
            (Some(day), None, None) => DateSpan::Day(self.date(file, day, &field("date"))?),
            (None, Some(from), Some(to)) => {
                let f = self.date(file, from, &field("from"));
                let t = self.date(file, to, &field("to"));
                let (f, t) = (f?, t?);
                if t <= f {
                    self.push(
                        file.error(
                            Rule::EndBeforeStart,
                            to.span(),
                            format!(
                                "the range ends ({}) on or before it starts ({})",
                                format_date(t),
                                format_date(f)
                            ),
                        )
                        .field(field("to"))
                        .hint("for a single day, write `date = …` instead of from/to"),
                    );
                    return None;
                }
                DateSpan::Range { from: f, to: t }
            }
            _ => {
                self.push(
                    file.error(
                        Rule::BadValue,
                        span,
                        format!(
                            "\"{}\" needs either `date`, or both `from` and `to`",
                            d.label
                        ),
                    )
                    .field(format!("dates[{i}]")),
                );
                return None;
            }
        };
        if let Some(published) = published
            && when.last() < published
        {
            self.push(
                file.warning(
                    Rule::DateBeforePublication,
                    span,
                    format!(
                        "\"{}\" ({when}) is over before the issue is published ({})",
                        d.label,
                        format_date(published)
                    ),
                )
                .field(format!("dates[{i}]")),
            );
        }
        Some(DiaryDate {
            id: format!("{anchor}-{}", i + 1),
            label: d.label.trim().to_string(),
            when,
        })
    }
}
