//! `lscp-mail new`: next month's issue, started from the last one. What stays true is carried
//! over (diary dates still ahead, courses with a session still to come, the saved links); what
//! must be written again is a placeholder that `check` warns about; articles stay behind.
//!
//! The files are edited with `toml_edit`, so the editor's comments and layout survive.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::content::load::ISSUE_FILE;
use crate::content::when::SessionText;
use crate::content::{IssueId, PLACEHOLDER};

#[derive(Debug, thiserror::Error)]
pub enum NewIssueError {
    #[error("{0} already exists; nothing was written")]
    Exists(PathBuf),
    #[error("there is no issue before {month} in {dir}")]
    NoEarlierIssue { month: IssueId, dir: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not TOML")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NewIssueError {
    /// The editor's input is the trouble (the folder exists, no issue to start from), not
    /// the machine.
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Exists(_) | Self::NoEarlierIssue { .. })
    }
}

/// The issue to be written: every file's name and text, and what happened to each section.
#[derive(Debug)]
pub struct Plan {
    pub dir: PathBuf,
    pub from: PathBuf,
    pub published: NaiveDate,
    pub files: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// The first Monday-to-Friday of the month.
pub fn first_weekday(month: IssueId) -> NaiveDate {
    let mut day = NaiveDate::from_ymd_opt(month.year().into(), month.month().into(), 1)
        .unwrap_or(NaiveDate::MIN);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap_or(day);
    }
    day
}

/// The latest issue folder in `issues_dir` before `month`.
pub fn latest_before(issues_dir: &Path, month: IssueId) -> Result<PathBuf, NewIssueError> {
    let entries = fs::read_dir(issues_dir).map_err(|source| NewIssueError::Read {
        path: issues_dir.to_path_buf(),
        source,
    })?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(ISSUE_FILE).is_file())
        .filter_map(|e| {
            let id = IssueId::parse(e.file_name().to_str()?).ok()?;
            (id < month).then(|| (id, e.path()))
        })
        .max_by_key(|(id, _)| *id)
        .map(|(_, p)| p)
        .ok_or_else(|| NewIssueError::NoEarlierIssue {
            month,
            dir: issues_dir.to_path_buf(),
        })
}

/// Works out the new issue in `dir` from the issue in `from`, writing nothing.
pub fn plan(dir: &Path, month: IssueId, from: &Path) -> Result<Plan, NewIssueError> {
    if dir.exists() {
        return Err(NewIssueError::Exists(dir.to_path_buf()));
    }
    let published = first_weekday(month);
    let mut files = vec![(
        ISSUE_FILE.to_string(),
        issue_toml(&read(&from.join(ISSUE_FILE))?, month, published)?,
    )];
    let mut notes = Vec::new();
    let mut sections: Vec<PathBuf> = fs::read_dir(from)
        .map_err(|source| NewIssueError::Read {
            path: from.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name().is_some_and(|n| n != ISSUE_FILE)
        })
        .collect();
    sections.sort();
    for path in sections {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = read(&path)?;
        let mut doc: DocumentMut = text.parse().map_err(|source| NewIssueError::Toml {
            path: path.clone(),
            source,
        })?;
        let kind = doc
            .get("kind")
            .and_then(Item::as_str)
            .unwrap_or("")
            .to_string();
        let kept = match kind.as_str() {
            "links" => Some("kept as it is".to_string()),
            "diary" => keep_dates_ahead(&mut doc, published),
            "training" => keep_sessions_ahead(&mut doc, published),
            "article" => None,
            _ => None,
        };
        match kept {
            Some(note) => {
                let new_name = format!("{:02}-{}", files.len(), unnumbered(&name));
                notes.push(format!("{new_name}: {note}"));
                let text = if kind == "links" {
                    text
                } else {
                    doc.to_string()
                };
                files.push((new_name, text));
            }
            None if kind == "article" => notes.push(format!("{name}: an article, not copied")),
            None if kind == "diary" || kind == "training" => {
                notes.push(format!("{name}: nothing still ahead, not copied"))
            }
            None => notes.push(format!("{name}: a `{kind}` section, not copied")),
        }
    }
    Ok(Plan {
        dir: dir.to_path_buf(),
        from: from.to_path_buf(),
        published,
        files,
        notes,
    })
}

/// Writes the planned folder whole or not at all: into a hidden sibling first, then renamed.
pub fn write(plan: &Plan) -> Result<(), NewIssueError> {
    let parent = plan.dir.parent().unwrap_or(Path::new("."));
    let name = plan
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let w = |path: &Path, source| NewIssueError::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(&staging).map_err(|e| w(&staging, e))?;
    let written = (|| {
        for (file, text) in &plan.files {
            let path = staging.join(file);
            fs::write(&path, text).map_err(|e| w(&path, e))?;
        }
        if plan.dir.exists() {
            return Err(NewIssueError::Exists(plan.dir.clone()));
        }
        fs::rename(&staging, &plan.dir).map_err(|e| w(&plan.dir, e))
    })();
    if written.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_dir_all(&staging);
    }
    written
}

fn read(path: &Path) -> Result<String, NewIssueError> {
    fs::read_to_string(path).map_err(|source| NewIssueError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `05-lscp-training.toml` → `lscp-training.toml`
fn unnumbered(name: &str) -> &str {
    let rest = name.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_');
    if rest.is_empty() || rest == ".toml" {
        name
    } else {
        rest
    }
}

/// The last issue's `issue.toml` with the new month and date, and placeholders where the new
/// issue must say something new. Other keys (`contents`) and their comments stay.
fn issue_toml(text: &str, month: IssueId, published: NaiveDate) -> Result<String, NewIssueError> {
    let mut doc: DocumentMut = text.parse().map_err(|source| NewIssueError::Toml {
        path: PathBuf::from(ISSUE_FILE),
        source,
    })?;
    let toml_date = |d: NaiveDate| {
        d.format("%Y-%m-%d")
            .to_string()
            .parse::<toml_edit::Datetime>()
            .ok()
    };
    let placeholder = |what: &str| format!("{PLACEHOLDER}: {what}");
    let set = |doc: &mut DocumentMut, key: &str, item: Item, comment: &str| {
        doc[key] = item;
        // The old comment was about the old value.
        if let Some(mut k) = doc.key_mut(key) {
            k.leaf_decor_mut().set_prefix(comment);
        }
    };
    set(
        &mut doc,
        "title",
        value(placeholder(&format!(
            "the title, such as \"{}\"",
            month_title(month)
        ))),
        "",
    );
    set(&mut doc, "month", value(month.to_string()), "");
    if let Some(d) = toml_date(published) {
        set(
            &mut doc,
            "published",
            value(d),
            "# The first weekday of the month: change it to the day the issue goes out.\n",
        );
    }
    set(
        &mut doc,
        "subject",
        value(placeholder(
            "the subject, what is new this month, under 90 characters",
        )),
        "",
    );
    set(
        &mut doc,
        "preheader",
        value(placeholder("one sentence that adds to the subject")),
        "",
    );
    set(
        &mut doc,
        "intro",
        value(placeholder(
            "a few words of welcome (Markdown), or delete this line",
        )),
        "",
    );
    Ok(doc.to_string())
}

fn month_title(month: IssueId) -> String {
    let first = NaiveDate::from_ymd_opt(month.year().into(), month.month().into(), 1)
        .unwrap_or(NaiveDate::MIN);
    format!("{} newsletter", first.format("%B %Y"))
}

/// Diary dates that end on or after `published`; `None` when none do.
fn keep_dates_ahead(doc: &mut DocumentMut, published: NaiveDate) -> Option<String> {
    let dates = doc
        .get_mut("dates")
        .and_then(Item::as_array_of_tables_mut)?;
    let before = dates.len();
    dates.retain(|t| last_day(t).is_none_or(|d| d >= published));
    let after = dates.len();
    (after > 0).then(|| format!("{after} of {before} dates still ahead"))
}

fn last_day(date: &Table) -> Option<NaiveDate> {
    let day = date.get("to").or_else(|| date.get("date"))?;
    let d = day.as_datetime()?.date?;
    NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
}

/// Courses with their sessions on or after `published`; a course whose sessions have all
/// passed is dropped, one that never had dates (booked any time) stays. `None` when no course
/// is left.
fn keep_sessions_ahead(doc: &mut DocumentMut, published: NaiveDate) -> Option<String> {
    let mut count = CourseCount::default();
    if let Some(courses) = doc
        .get_mut("courses")
        .and_then(Item::as_array_of_tables_mut)
    {
        count.keep_ahead(courses, published);
    }
    // A special edition's `[[groups]]`: each group keeps the courses still on, and a group left
    // with none goes with its sub-heading.
    if let Some(groups) = doc.get_mut("groups").and_then(Item::as_array_of_tables_mut) {
        let keep: Vec<bool> = groups
            .iter_mut()
            .map(|group| {
                group
                    .get_mut("courses")
                    .and_then(Item::as_array_of_tables_mut)
                    .is_some_and(|courses| count.keep_ahead(courses, published) > 0)
            })
            .collect();
        retain_flagged(groups, &keep);
    }
    let CourseCount {
        before,
        after,
        dropped_sessions,
    } = count;
    (after > 0).then(|| {
        format!(
            "{after} of {before} courses with a session still ahead ({dropped_sessions} past session{} dropped)",
            if dropped_sessions == 1 { "" } else { "s" }
        )
    })
}

/// The courses of a training section before and after `new` dropped what is over.
#[derive(Default)]
struct CourseCount {
    before: usize,
    after: usize,
    dropped_sessions: usize,
}

impl CourseCount {
    /// Drops the past sessions of `courses`, and the courses left with none (a course that
    /// never had dates, such as a recording, stays); returns how many courses remain.
    fn keep_ahead(&mut self, courses: &mut ArrayOfTables, published: NaiveDate) -> usize {
        let keep: Vec<bool> = courses
            .iter_mut()
            .map(|course| {
                let Some(sessions) = course.get_mut("sessions").and_then(Item::as_array_mut) else {
                    return true;
                };
                let n = sessions.len();
                // A session `check` cannot read stays, for `check` to report.
                sessions.retain(|s| {
                    s.as_str()
                        .and_then(|s| SessionText::parse(s).ok())
                        .is_none_or(|s| s.date >= published)
                });
                self.dropped_sessions += n - sessions.len();
                n == 0 || !sessions.is_empty()
            })
            .collect();
        self.before += courses.len();
        retain_flagged(courses, &keep);
        self.after += courses.len();
        courses.len()
    }
}

/// Keeps the tables of `tables` whose flag in `keep` is set.
fn retain_flagged(tables: &mut ArrayOfTables, keep: &[bool]) {
    let mut i = 0;
    tables.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> IssueId {
        IssueId::parse(s).expect("a month")
    }

    #[test]
    fn an_issue_is_published_on_the_first_weekday_of_its_month() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        // Sunday 1 February 2026, Saturday 1 November 2025, Wednesday 1 April 2026.
        assert_eq!(first_weekday(id("2026-02")), day(2026, 2, 2));
        assert_eq!(first_weekday(id("2025-11")), day(2025, 11, 3));
        assert_eq!(first_weekday(id("2026-04")), day(2026, 4, 1));
    }

    #[test]
    fn a_course_that_never_had_dates_stays_and_one_whose_dates_passed_goes() {
        let mut doc: DocumentMut = r#"kind = "training"
heading = "Training"

[[courses]]
title = "Any time"
booking_url = "https://example.org/a"

[[courses]]
title = "Over"
sessions = ["Tuesday 24 February 2026, 10am to 11.30am"]
booking_url = "https://example.org/b"

[[courses]]
title = "Half over"
# the spring dates
sessions = [
  "Tuesday 24 February 2026, 10am to 11.30am",
  "Tuesday 14 April 2026, 9am to 3.15pm",
]
booking_url = "https://example.org/c"
"#
        .parse()
        .expect("toml");
        let note = keep_sessions_ahead(&mut doc, first_weekday(id("2026-03")));
        let text = doc.to_string();
        assert!(text.contains("Any time") && text.contains("Half over"));
        assert!(!text.contains("\"Over\""), "{text}");
        assert!(!text.contains("24 February"), "{text}");
        assert!(
            text.contains("# the spring dates"),
            "comments survive: {text}"
        );
        assert_eq!(
            note.as_deref(),
            Some("2 of 3 courses with a session still ahead (2 past sessions dropped)")
        );
    }

    #[test]
    fn groups_keep_their_courses_still_on_and_a_group_with_none_left_goes() {
        let mut doc: DocumentMut = r#"kind = "training"
heading = "Safeguarding Week training"

[[groups]]
heading = "Live training sessions"

[[groups.courses]]
title = "Over"
sessions = ["Tuesday 24 February 2026, 10am to 11.30am"]
booking_url = "https://example.org/b"

[[groups]]
heading = "Recorded sessions on YouTube"

[[groups.courses]]
title = "Safer sleep for babies"
url = "https://www.youtube.com/watch?v=safer-sleep-2026"

[[groups.courses]]
title = "Half over"
sessions = [
  "Tuesday 24 February 2026, 10am to 11.30am",
  "Tuesday 14 April 2026, 9am to 3.15pm",
]
booking_url = "https://example.org/c"
"#
        .parse()
        .expect("toml");
        let note = keep_sessions_ahead(&mut doc, first_weekday(id("2026-03")));
        let text = doc.to_string();
        assert!(!text.contains("Live training sessions"), "{text}");
        assert!(!text.contains("\"Over\""), "{text}");
        assert!(text.contains("Recorded sessions on YouTube"), "{text}");
        assert!(text.contains("Safer sleep for babies") && text.contains("Half over"));
        assert!(!text.contains("24 February"), "{text}");
        assert_eq!(
            note.as_deref(),
            Some("2 of 3 courses with a session still ahead (2 past sessions dropped)")
        );
    }
}
