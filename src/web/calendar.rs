//! "Add to calendar": every training session and diary date of an issue as an RFC 5545
//! iCalendar file, `/issues/{YYYY-MM}/events/{id}.ics`.
//!
//! Sessions are Europe/London times (`DTSTART;TZID=Europe/London`, with the zone's rules in a
//! `VTIMEZONE` so calendars need no outside lookup); diary dates are all-day events, their
//! `DTEND` the day after the last (RFC 5545's end is exclusive). `UID` is stable, so adding
//! the same event twice updates it rather than doubling it; `DTSTAMP` is the issue's
//! publication, so the file is the same every time it is asked for. Lines end in CRLF and are
//! folded at 75 octets, never inside a UTF-8 character.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use icalendar::{CalendarDateTime, Component, EventLike};

use crate::content::{Booking, Issue, Link, SectionBody};
use crate::render::view::session_event_id;

/// One event of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique within the issue: `training-3-session-2`, `dates-for-your-diary-1`.
    pub id: String,
    pub summary: String,
    pub description: String,
    pub url: Option<Link>,
    pub when: When,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Europe/London wall-clock times.
    Timed {
        start: NaiveDateTime,
        end: NaiveDateTime,
    },
    /// Whole days, `last` included.
    AllDay { first: NaiveDate, last: NaiveDate },
}

/// Every session of every course, then every diary date, in the issue's order.
pub fn events(issue: &Issue, issue_url: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for section in &issue.sections {
        match &section.body {
            SectionBody::Training(training) => {
                for course in &training.courses {
                    for (i, session) in course.sessions.iter().enumerate() {
                        events.push(Event {
                            id: session_event_id(course, i + 1),
                            summary: course.title.clone(),
                            description: course
                                .booking
                                .as_ref()
                                .map(booking_text)
                                .unwrap_or_default(),
                            url: course.booking.as_ref().and_then(Booking::url).cloned(),
                            when: When::Timed {
                                start: session.starts_at(),
                                end: session.ends_at(),
                            },
                        });
                    }
                }
            }
            SectionBody::Diary(diary) => {
                for date in &diary.dates {
                    events.push(Event {
                        id: date.id.clone(),
                        summary: date.label.clone(),
                        description: format!("From the {}: {issue_url}", issue.title),
                        url: Link::parse(issue_url).ok(),
                        when: When::AllDay {
                            first: date.when.first(),
                            last: date.when.last(),
                        },
                    });
                }
            }
            SectionBody::Article(_) | SectionBody::Links(_) | SectionBody::Resources(_) => {}
        }
    }
    events
}

fn booking_text(booking: &Booking) -> String {
    match (booking.url(), booking.email()) {
        (Some(url), Some(email)) => format!(
            "{}: {} (or by email: {})",
            booking.label(),
            url.as_str(),
            email.as_str()
        ),
        (Some(url), None) => format!("{}: {}", booking.label(), url.as_str()),
        (None, Some(email)) => format!("{} by email: {}", booking.label(), email.as_str()),
        (None, None) => String::new(),
    }
}

/// The Europe/London rules since 1996 (EU summer time): last Sunday of March to last Sunday
/// of October.
const VTIMEZONE: &[&str] = &[
    "BEGIN:VTIMEZONE",
    "TZID:Europe/London",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0000",
    "TZOFFSETTO:+0100",
    "TZNAME:BST",
    "DTSTART:19700329T010000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0000",
    "TZNAME:GMT",
    "DTSTART:19701025T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
];

/// The `.ics` file of one event. `domain` makes the UID globally unique (the site's host).
///
/// icalendar writes every line: it escapes TEXT values and folds long lines, so nothing an
/// editor wrote can start a line of its own. The URL is a parsed [`crate::content::Link`]
/// (which has no control characters), and text values have their line breaks made plain
/// `\n`, which icalendar escapes.
pub fn ics(event: &Event, issue: &Issue, organisation: &str, domain: &str) -> String {
    let mut vevent = icalendar::Event::new();
    vevent
        .uid(&format!("{}-{}@{domain}", issue.id, event.id))
        .timestamp(issue.published.and_time(NaiveTime::MIN).and_utc())
        .summary(&one_text(&event.summary));
    match event.when {
        When::Timed { start, end } => {
            let london = |date_time| CalendarDateTime::WithTimezone {
                date_time,
                tzid: "Europe/London".to_string(),
            };
            vevent.starts(london(start)).ends(london(end));
        }
        When::AllDay { first, last } => {
            vevent
                .starts(first)
                .ends(last.succ_opt().unwrap_or(last))
                .add_property("TRANSP", "TRANSPARENT");
        }
    }
    if !event.description.is_empty() {
        vevent.description(&one_text(&event.description));
    }
    if let Some(url) = &event.url {
        vevent.url(url.as_str());
    }
    let mut calendar = icalendar::Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(icalendar::Property::new(
            "PRODID",
            format!("-//{}//lscp-mail//EN", one_text(organisation)),
        ))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .push(vevent.done());
    let written = calendar.to_string();
    if matches!(event.when, When::Timed { .. }) {
        // icalendar has no VTIMEZONE builder; ours is a constant of this file, no input in it.
        let zone: String = VTIMEZONE.iter().map(|l| format!("{l}\r\n")).collect();
        return written.replacen("BEGIN:VEVENT\r\n", &format!("{zone}BEGIN:VEVENT\r\n"), 1);
    }
    written
}

/// A TEXT value with every kind of line break made `\n` (which icalendar escapes) and any
/// other control character dropped: RFC 5545 allows none in TEXT, and a lone CR ends a line
/// for some readers.
fn one_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|&c| c == '\n' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::content::IssueId;

    fn issue() -> Issue {
        Issue {
            id: IssueId::parse("2026-02").expect("a month"),
            dir: "issues/2026-02".into(),
            title: "February 2026 newsletter".into(),
            published: NaiveDate::from_ymd_opt(2026, 2, 2).expect("a date"),
            subject: "s".into(),
            preheader: "p".into(),
            intro: None,
            contents: false,
            sections: vec![],
        }
    }

    /// The names of the content lines of an .ics, long lines unfolded.
    fn property_names(ics: &str) -> Vec<String> {
        ics.replace("\r\n ", "")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.split([':', ';']).next().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_hostile_value_cannot_add_a_line_to_the_calendar() {
        let hostile =
            "Course\r\nATTENDEE:mailto:x@evil.example\r\nBEGIN:VALARM\nTRIGGER:-PT5M\rEND:VALARM";
        let at = |h| {
            NaiveDate::from_ymd_opt(2026, 4, 14)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .expect("a time")
        };
        let event = Event {
            id: "training-1-session-1".into(),
            summary: hostile.into(),
            description: hostile.into(),
            url: Link::parse("https://example.org/book?a=1,b;c").ok(),
            when: When::Timed {
                start: at(9),
                end: at(15),
            },
        };
        let ics = ics(&event, &issue(), hostile, "example.org");
        let names = property_names(&ics);
        for forbidden in ["ATTENDEE", "TRIGGER"] {
            assert!(!names.iter().any(|n| n == forbidden), "{ics}");
        }
        assert_eq!(names.iter().filter(|n| *n == "BEGIN").count(), 5, "{ics}");
        assert!(
            !ics.replace("\r\n", "").contains(['\r', '\n']),
            "bare CR or LF: {ics:?}"
        );
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(
            unfolded.contains("\r\nSUMMARY:Course\\nATTENDEE:mailto:x@evil.example\\nBEGIN:VALARM"),
            "{unfolded}"
        );
        assert!(
            unfolded.contains("\r\nDTSTART;TZID=Europe/London:20260414T090000\r\n"),
            "{unfolded}"
        );
        assert!(
            unfolded.contains("\r\nUID:2026-02-training-1-session-1@example.org\r\n"),
            "{unfolded}"
        );
        assert!(
            unfolded.contains("\r\nDTSTAMP:20260202T000000Z\r\n"),
            "{unfolded}"
        );
        assert!(
            unfolded.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
            "{unfolded}"
        );
    }

    #[test]
    fn text_values_lose_their_line_breaks_and_control_characters() {
        assert_eq!(one_text("a\r\nb\rc\nd\u{1b}[0m\u{7f}"), "a\nb\nc\nd[0m");
    }
}
