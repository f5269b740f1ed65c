//! Dates and times as the newsletters write them: "Tuesday 14 April 2026, 9am to 3.15pm",
//! "9.30am", "17 to 21 November 2025". Parsing is strict and formatting is canonical, so a
//! session reads the same in every issue whatever way its writer typed it.

use chrono::{Datelike, Month, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Europe::London;

/// A training session: one day, a start and an end time, Europe/London.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// What a session string said, before it is judged: the weekday the writer typed is kept so
/// that `check` can report a mismatch instead of silently trusting the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionText {
    pub weekday: Option<Weekday>,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    #[error("`{0}` is not a session like \"Tuesday 14 April 2026, 9am to 3.15pm\"")]
    SessionShape(String),
    #[error("`{0}` is not a time like \"9am\", \"3.15pm\" or \"14:30\"")]
    Time(String),
    #[error("`{0}` is not a date like \"14 April 2026\"")]
    Date(String),
    #[error("{date} is a {actual}, not a {written}")]
    WeekdayMismatch {
        date: String,
        written: String,
        actual: String,
    },
    #[error("the session ends ({end}) before it starts ({start})")]
    EndBeforeStart { start: String, end: String },
    #[error("{0} does not exist in Europe/London (the clocks change then)")]
    NoSuchLocalTime(String),
}

impl SessionText {
    /// Parses `[Weekday] D Month YYYY(, | at )TIME (to|-|–) TIME`.
    pub fn parse(input: &str) -> Result<Self, WhenError> {
        let shape = || WhenError::SessionShape(input.to_string());
        let s = input.trim();
        let (day_part, time_part) = s
            .split_once(", ")
            .or_else(|| s.split_once(" at "))
            .ok_or_else(shape)?;
        let (start, end) = split_range(time_part).ok_or_else(shape)?;

        let mut words: Vec<&str> = day_part.split_whitespace().collect();
        let weekday = match words.first().and_then(|w| parse_weekday(w)) {
            Some(w) => {
                words.remove(0);
                Some(w)
            }
            None => None,
        };
        if words.len() != 3 {
            return Err(shape());
        }
        let date = parse_date_words(&words).ok_or_else(|| WhenError::Date(words.join(" ")))?;
        Ok(Self {
            weekday,
            date,
            start: parse_time(start)?,
            end: parse_time(end)?,
        })
    }

    /// Judges the parsed text: the weekday must match, the end must follow the start, and both
    /// times must exist on that day in Europe/London.
    pub fn validate(self) -> Result<Session, WhenError> {
        if let Some(written) = self.weekday
            && written != self.date.weekday()
        {
            return Err(WhenError::WeekdayMismatch {
                date: format_date(self.date),
                written: weekday_name(written),
                actual: weekday_name(self.date.weekday()),
            });
        }
        if self.end <= self.start {
            return Err(WhenError::EndBeforeStart {
                start: format_time(self.start),
                end: format_time(self.end),
            });
        }
        for t in [self.start, self.end] {
            let local = self.date.and_time(t);
            if London.from_local_datetime(&local).single().is_none() {
                return Err(WhenError::NoSuchLocalTime(format!(
                    "{}, {}",
                    format_date(self.date),
                    format_time(t)
                )));
            }
        }
        Ok(Session {
            date: self.date,
            start: self.start,
            end: self.end,
        })
    }
}

impl Session {
    pub fn starts_at(&self) -> NaiveDateTime {
        self.date.and_time(self.start)
    }

    pub fn ends_at(&self) -> NaiveDateTime {
        self.date.and_time(self.end)
    }
}

impl std::fmt::Display for Session {
    /// "Tuesday 14 April 2026, 9am to 3.15pm"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}, {} to {}",
            weekday_name(self.date.weekday()),
            format_date(self.date),
            format_time(self.start),
            format_time(self.end)
        )
    }
}

fn split_range(s: &str) -> Option<(&str, &str)> {
    for sep in [" to ", " - ", " – ", "-", "–"] {
        if let Some((a, b)) = s.split_once(sep) {
            return Some((a.trim(), b.trim()));
        }
    }
    None
}

fn parse_weekday(w: &str) -> Option<Weekday> {
    let w = w.trim_end_matches(',');
    std::iter::successors(Some(Weekday::Mon), |d| Some(d.succ()))
        .take(7)
        .find(|d| weekday_name(*d).eq_ignore_ascii_case(w))
}

/// A month written in full ("April", "april"), by chrono's names.
fn parse_month(word: &str) -> Option<Month> {
    (1..=12u8)
        .filter_map(|n| Month::try_from(n).ok())
        .find(|m| m.name().eq_ignore_ascii_case(word))
}

fn parse_date_words(words: &[&str]) -> Option<NaiveDate> {
    let [day, month, year] = words else {
        return None;
    };
    let day: u32 = day
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .ok()?;
    let month = parse_month(month)?.number_from_month();
    let year: i32 = year.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// "9am", "9.30am", "9:30 am", "12pm", "14:30".
pub fn parse_time(input: &str) -> Result<NaiveTime, WhenError> {
    let err = || WhenError::Time(input.to_string());
    let s = input.trim().to_ascii_lowercase();
    let (digits, meridiem) = if let Some(d) = s.strip_suffix("am") {
        (d.trim(), Some(false))
    } else if let Some(d) = s.strip_suffix("pm") {
        (d.trim(), Some(true))
    } else {
        (s.as_str(), None)
    };
    let (h, m) = match digits.split_once(['.', ':']) {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return Err(err()),
        None if meridiem.is_some() => (digits, "00"),
        None => return Err(err()),
    };
    let h: u32 = h.parse().map_err(|_| err())?;
    let m: u32 = m.parse().map_err(|_| err())?;
    let h = match meridiem {
        Some(pm) if (1..=12).contains(&h) => (h % 12) + if pm { 12 } else { 0 },
        Some(_) => return Err(err()),
        None => h,
    };
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(err)
}

/// "9am", "3.15pm", "12pm": the newsletters' style, minutes only when they are not zero.
pub fn format_time(t: NaiveTime) -> String {
    let (pm, h12) = t.hour12();
    let suffix = if pm { "pm" } else { "am" };
    match t.minute() {
        0 => format!("{h12}{suffix}"),
        m => format!("{h12}.{m:02}{suffix}"),
    }
}

/// "14 April 2026"
pub fn format_date(d: NaiveDate) -> String {
    format!("{} {} {}", d.day(), month_name(d.month()), d.year())
}

/// "Tuesday 14 April 2026"
pub fn format_date_with_weekday(d: NaiveDate) -> String {
    format!("{} {}", weekday_name(d.weekday()), format_date(d))
}

/// "17 to 21 November 2025", "25 November to 10 December 2025",
/// "30 December 2025 to 2 January 2026".
pub fn format_date_range(from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        format_date(from)
    } else if from.year() != to.year() {
        format!("{} to {}", format_date(from), format_date(to))
    } else if from.month() != to.month() {
        format!(
            "{} {} to {}",
            from.day(),
            month_name(from.month()),
            format_date(to)
        )
    } else {
        format!("{} to {}", from.day(), format_date(to))
    }
}

/// "Tuesday": chrono's name for the weekday (its `%A`), taken from a week that has every one.
pub fn weekday_name(d: Weekday) -> String {
    NaiveDate::from_isoywd_opt(2001, 1, d)
        .map(|date| date.format("%A").to_string())
        .unwrap_or_default()
}

fn month_name(m: u32) -> &'static str {
    u8::try_from(m)
        .ok()
        .and_then(|n| Month::try_from(n).ok())
        .map_or("", |m| m.name())
}

use chrono::Timelike;

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    #[test]
    fn times_read_as_the_newsletters_write_them() {
        assert_eq!(format_time(time(9, 0)), "9am");
        assert_eq!(format_time(time(9, 30)), "9.30am");
        assert_eq!(format_time(time(15, 15)), "3.15pm");
        assert_eq!(format_time(time(12, 0)), "12pm");
        assert_eq!(format_time(time(0, 5)), "12.05am");
    }

    #[test]
    fn every_way_the_newsletters_type_a_time_parses() {
        for (text, want) in [
            ("9am", time(9, 0)),
            ("9.00am", time(9, 0)),
            ("9.30am", time(9, 30)),
            ("3.15pm", time(15, 15)),
            ("11:00am", time(11, 0)),
            ("10:00", time(10, 0)),
            ("12pm", time(12, 0)),
            ("12.30 PM", time(12, 30)),
            ("12am", time(0, 0)),
        ] {
            assert_eq!(parse_time(text), Ok(want), "{text}");
        }
        for bad in ["13pm", "9", "9.3am", "half nine", "25:00", "0am"] {
            assert!(parse_time(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn a_session_reads_with_its_weekday_and_both_times() {
        let s = SessionText::parse("Tuesday 14 April 2026, 9am to 3.15pm")
            .and_then(SessionText::validate)
            .expect("valid session");
        assert_eq!(s.to_string(), "Tuesday 14 April 2026, 9am to 3.15pm");
    }

    #[test]
    fn the_newsletters_other_session_spellings_normalise() {
        for (text, want) in [
            (
                "Thursday 12 March 2026, 9.30am - 10.30am",
                "Thursday 12 March 2026, 9.30am to 10.30am",
            ),
            (
                "Thursday 26 March 2026 at 10:00 to 11:00am",
                "Thursday 26 March 2026, 10am to 11am",
            ),
            (
                "Thursday 5 March 2026, 9.00am to 3.30pm",
                "Thursday 5 March 2026, 9am to 3.30pm",
            ),
            ("8 May 2025, 2pm to 3pm", "Thursday 8 May 2025, 2pm to 3pm"),
        ] {
            let s = SessionText::parse(text)
                .and_then(SessionText::validate)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.to_string(), want);
        }
    }

    #[test]
    fn a_weekday_that_does_not_match_its_date_is_refused() {
        let err = SessionText::parse("Tuesday 15 April 2026, 9am to 3.15pm")
            .and_then(SessionText::validate)
            .expect_err("15 April 2026 is a Wednesday");
        assert_eq!(
            err.to_string(),
            "15 April 2026 is a Wednesday, not a Tuesday"
        );
    }

    #[test]
    fn a_session_that_ends_before_it_starts_is_refused() {
        let err = SessionText::parse("Tuesday 14 April 2026, 3pm to 9am")
            .and_then(SessionText::validate)
            .expect_err("ends before start");
        assert!(matches!(err, WhenError::EndBeforeStart { .. }));
    }

    #[test]
    fn a_time_lost_to_the_clocks_going_forward_is_refused() {
        let err = SessionText::parse("Sunday 29 March 2026, 1.30am to 3am")
            .and_then(SessionText::validate)
            .expect_err("1.30am does not exist on 29 March 2026 in London");
        assert!(matches!(err, WhenError::NoSuchLocalTime(_)));
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        assert!(matches!(
            SessionText::parse("Monday 30 February 2026, 9am to 10am"),
            Err(WhenError::Date(_))
        ));
        assert!(SessionText::parse("next Tuesday, 9am to 10am").is_err());
    }

    #[test]
    fn date_ranges_say_the_month_and_year_once_when_they_can() {
        assert_eq!(
            format_date_range(date(2025, 11, 17), date(2025, 11, 21)),
            "17 to 21 November 2025"
        );
        assert_eq!(
            format_date_range(date(2025, 11, 25), date(2025, 12, 10)),
            "25 November to 10 December 2025"
        );
        assert_eq!(
            format_date_range(date(2025, 12, 30), date(2026, 1, 2)),
            "30 December 2025 to 2 January 2026"
        );
        assert_eq!(
            format_date_range(date(2025, 3, 18), date(2025, 3, 18)),
            "18 March 2025"
        );
        assert_eq!(
            format_date_with_weekday(date(2026, 2, 24)),
            "Tuesday 24 February 2026"
        );
    }
}
