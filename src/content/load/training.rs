//! `kind = "training"`: courses with their sessions and booking, or listed by title in groups.

use chrono::NaiveDate;
use toml::Spanned;

use super::super::diagnostic::Rule;
use super::super::issue::*;
use super::super::model::*;
use super::super::when::{SessionText, WhenError, format_date};
use super::file::File;
use super::{Cx, Judged};

impl Cx<'_> {
    /// `kind = "training"`: courses, loose or declared in `[[groups]]`.
    pub(super) fn training_section(
        &mut self,
        file: &File,
        anchor: &Anchor,
        published: Option<NaiveDate>,
    ) -> Option<Judged> {
        let raw: TrainingToml = self.parse(file)?;
        let heading = self.heading(file, &raw.heading);
        let topic = self.topic(file, raw.topic);
        let intro = self.markdown(file, raw.intro, "intro", 2);
        if raw.courses.is_empty() && raw.groups.iter().all(|g| g.get_ref().courses.is_empty()) {
            self.empty(
                file,
                &raw.heading,
                "add at least one [[courses]] table, or [[groups]] with [[groups.courses]]",
            );
        }
        if !raw.courses.is_empty() && !raw.groups.is_empty() {
            self.push(
                file.error(
                    Rule::BadValue,
                    raw.groups[0].span(),
                    "the section has both [[courses]] and [[groups]]",
                )
                .field("groups")
                .hint("put every course in a group, or give each course `group = \"…\"`"),
            );
        }
        let mut courses: Vec<_> = raw
            .courses
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let group = c.get_ref().group.as_ref().map(|g| g.get_ref().clone());
                self.course(
                    file,
                    anchor,
                    (format!("courses[{i}]"), i),
                    c,
                    group,
                    published,
                )
            })
            .collect();
        for (g, group) in raw.groups.into_iter().enumerate() {
            let group = group.into_inner();
            let name = group.heading.get_ref().trim().to_string();
            if name.is_empty() {
                self.push(
                    file.error(
                        Rule::BadValue,
                        group.heading.span(),
                        "the group's heading is empty",
                    )
                    .field(format!("groups[{g}].heading")),
                );
            }
            if group.courses.is_empty() {
                self.empty(
                    file,
                    &raw.heading,
                    "add at least one [[groups.courses]] table under each [[groups]]",
                );
            }
            for (i, c) in group.courses.into_iter().enumerate() {
                let field = format!("groups[{g}].courses[{i}]");
                if let Some(own) = &c.get_ref().group {
                    self.push(
                        file.error(
                            Rule::BadValue,
                            own.span(),
                            format!("the course is in the group \"{name}\" and names a `group` of its own"),
                        )
                        .field(format!("{field}.group"))
                        .hint("remove `group`; the course's [[groups]] table gives it"),
                    );
                }
                let n = courses.len();
                courses.push(self.course(
                    file,
                    anchor,
                    (field, n),
                    c,
                    Some(name.clone()),
                    published,
                ));
            }
        }
        let body = courses
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|courses| SectionBody::Training(Training { intro, courses }));
        Some((heading, topic, body))
    }

    pub(super) fn course(
        &mut self,
        file: &File,
        anchor: &str,
        (at, i): (String, usize),
        course: Spanned<CourseToml>,
        group: Option<String>,
        published: Option<NaiveDate>,
    ) -> Option<Course> {
        let span = course.span();
        let c = course.into_inner();
        let mut sessions = Vec::new();
        let mut ok = true;
        for (j, s) in c.sessions.iter().enumerate() {
            let field = format!("{at}.sessions[{j}]");
            let parsed = SessionText::parse(s.get_ref()).and_then(SessionText::validate);
            match parsed {
                Ok(session) => {
                    if let Some(published) = published
                        && session.date < published
                    {
                        self.push(
                            file.error(
                                Rule::SessionBeforePublication,
                                s.span(),
                                format!(
                                    "the session on {} is before the issue is published ({})",
                                    format_date(session.date),
                                    format_date(published)
                                ),
                            )
                            .field(field)
                            .hint("remove the past session, or check the year"),
                        );
                    }
                    sessions.push(session);
                }
                Err(e) => {
                    ok = false;
                    let (rule, hint) = match &e {
                        WhenError::WeekdayMismatch { .. } => {
                            (Rule::WeekdayMismatch, "correct the weekday or the date")
                        }
                        WhenError::EndBeforeStart { .. } => {
                            (Rule::EndBeforeStart, "check the times and am/pm")
                        }
                        _ => (
                            Rule::BadSession,
                            "write it like \"Tuesday 14 April 2026, 9am to 3.15pm\"",
                        ),
                    };
                    self.push(
                        file.error(rule, s.span(), e.to_string())
                            .field(field)
                            .hint(hint),
                    );
                }
            }
        }
        let description = self
            .markdown(file, c.description, &format!("{at}.description"), 4)
            .unwrap_or_default();
        let audience = self.markdown(file, c.audience, &format!("{at}.audience"), 4);
        let url = match &c.booking_url {
            Some(u) => Some(self.link(file, u, &format!("{at}.booking_url"))?),
            None => None,
        };
        let email = match &c.booking_email {
            Some(e) => match EmailAddress::parse(e.get_ref()) {
                Ok(a) => Some(a),
                Err(err) => {
                    self.push(
                        file.error(Rule::BadLink, e.span(), err.to_string())
                            .field(format!("{at}.booking_email")),
                    );
                    return None;
                }
            },
            None => None,
        };
        let label = c
            .booking_label
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "Book your place".to_string());
        let page = match &c.url {
            Some(u) => Some(self.link(file, u, &format!("{at}.url"))?),
            None => None,
        };
        let booking = match (url, email) {
            (Some(url), None) => Some(Booking::Online { label, url }),
            (None, Some(address)) => Some(Booking::Email { label, address }),
            (Some(url), Some(address)) => Some(Booking::OnlineOrEmail {
                label,
                url,
                address,
            }),
            // Listed by title only: a recording or a briefing's page, nothing to book.
            (None, None) if c.sessions.is_empty() && page.is_some() => None,
            (None, None) => {
                let hint = if c.sessions.is_empty() {
                    "add booking_url = \"https://…\" or booking_email = \"…\", or url = \"https://…\" for a course listed by title"
                } else {
                    "add booking_url = \"https://…\" or booking_email = \"…\""
                };
                self.push(
                    file.error(
                        Rule::NoWayToBook,
                        span,
                        format!("the course \"{}\" has no way to book", c.title.trim()),
                    )
                    .field(at)
                    .hint(hint),
                );
                return None;
            }
        };
        if !ok {
            return None;
        }
        Some(Course {
            id: format!("{anchor}-{}", i + 1),
            title: c.title.trim().to_string(),
            group: group
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty()),
            description,
            audience,
            sessions,
            page,
            booking,
        })
    }
}
