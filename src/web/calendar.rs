//! "Add to calendar": every training session and diary date of an issue as an RFC 5545
//! iCalendar file, `/issues/{YYYY-MM}/events/{id}.ics`.
//!
//! Sessions are Europe/London times (`DTSTART;TZID=Europe/London`, with the zone's rules in a
//! `VTIMEZONE` so calendars need no outside lookup); diary dates are all-day events, their
//! `DTEND` the day after the last (RFC 5545's end is exclusive). `UID` is stable, so adding
//! the same event twice updates it rather than doubling it; `DTSTAMP` is the issue's
//! publication, so the file is the same every time it is asked for. Lines end in CRLF and are
//! folded at 75 octets, never inside a UTF-8 character.

use chrono::{NaiveDate, NaiveDateTime};

use crate::content::{Booking, Issue, SectionBody};
use crate::render::view::session_event_id;

/// One event of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique within the issue: `training-3-session-2`, `dates-for-your-diary-1`.
    pub id: String,
    pub summary: String,
    pub description: String,
    pub url: Option<String>,
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
                            description: booking_text(&course.booking),
                            url: course.booking.url().map(|u| u.as_str().to_string()),
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
                        url: Some(issue_url.to_string()),
                        when: When::AllDay {
                            first: date.when.first(),
                            last: date.when.last(),
                        },
                    });
                }
            }
            SectionBody::Article(_) | SectionBody::Links(_) => {}
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
pub fn ics(event: &Event, issue: &Issue, organisation: &str, domain: &str) -> String {
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        format!("PRODID:-//{}//lscp-mail//EN", text(organisation)),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
    ];
    if matches!(event.when, When::Timed { .. }) {
        lines.extend(VTIMEZONE.iter().map(|l| l.to_string()));
    }
    lines.push("BEGIN:VEVENT".into());
    lines.push(format!("UID:{}-{}@{domain}", issue.id, event.id));
    lines.push(format!(
        "DTSTAMP:{}T000000Z",
        issue.published.format("%Y%m%d")
    ));
    match event.when {
        When::Timed { start, end } => {
            let at = |t: NaiveDateTime| t.format("%Y%m%dT%H%M%S");
            lines.push(format!("DTSTART;TZID=Europe/London:{}", at(start)));
            lines.push(format!("DTEND;TZID=Europe/London:{}", at(end)));
        }
        When::AllDay { first, last } => {
            let day = |d: NaiveDate| d.format("%Y%m%d");
            let after = last.succ_opt().unwrap_or(last);
            lines.push(format!("DTSTART;VALUE=DATE:{}", day(first)));
            lines.push(format!("DTEND;VALUE=DATE:{}", day(after)));
            lines.push("TRANSP:TRANSPARENT".into());
        }
    }
    lines.push(format!("SUMMARY:{}", text(&event.summary)));
    if !event.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", text(&event.description)));
    }
    if let Some(url) = &event.url {
        lines.push(format!("URL:{url}"));
    }
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    lines.iter().map(|l| fold(l)).collect()
}

/// RFC 5545 TEXT: backslash, semicolon, comma and newline escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded so no line is longer than 75 octets (a continuation line starts
/// with a space, which counts), and ended with CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        assert!(folded.ends_with("\r\n"));
        for part in folded.trim_end_matches("\r\n").split("\r\n") {
            assert!(part.len() <= 75, "{} octets: {part:?}", part.len());
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, line);
    }

    #[test]
    fn text_values_escape_what_rfc_5545_reserves() {
        assert_eq!(text("a, b; c\\d\nе"), "a\\, b\\; c\\\\d\\nе");
    }

    #[test]
    fn a_short_line_is_left_alone() {
        assert_eq!(fold("BEGIN:VEVENT"), "BEGIN:VEVENT\r\n");
    }
}
