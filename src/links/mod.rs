//! `check --links`: every address an issue gives a reader, requested, each failure a `check`
//! error with its file, line and field.
//!
//! [`collect`] reads the TOML files themselves (not the loaded issue), so that each
//! address keeps its place in its file and a file with other errors is still checked;
//! [`probe`] requests them; [`cache`] remembers the good answers for a day.

pub mod cache;
pub mod probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pulldown_cmark::{Event, Parser, Tag};
use toml_edit::{Item, Value};

use crate::content::diagnostic::Source;
use crate::content::{Diagnostic, Rule};
use probe::Outcome;

/// Keys whose value is one address.
const URL_KEYS: &[&str] = &["url", "booking_url", "src", "link"];
/// Keys whose value is Markdown, with links and images in it.
const MARKDOWN_KEYS: &[&str] = &["body", "intro", "description", "audience", "caption"];

/// One address, and where the issue gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub file: PathBuf,
    pub position: Option<(usize, usize)>,
    pub field: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How long one request may take.
    pub timeout: Duration,
    /// Requests at once to one host: enough to be quick, few enough to be polite.
    pub per_host: usize,
    /// Requests at once in all.
    pub total: usize,
    /// Where answers are remembered; `None` asks every time.
    pub cache: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            per_host: 2,
            total: 16,
            cache: cache::default_path(),
        }
    }
}

/// Every address in the issue folder's TOML files, in file order.
pub fn collect(dir: &Path) -> Vec<Target> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut targets = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // A file that does not parse has its own `check` error already.
        let Ok(doc) = toml_edit::Document::parse(text.as_str()) else {
            continue;
        };
        let source = Source {
            path: &path,
            text: &text,
        };
        walk_item(doc.as_item(), "", &source, &mut targets);
    }
    targets
}

fn walk_item(item: &Item, field: &str, src: &Source, out: &mut Vec<Target>) {
    match item {
        Item::Table(t) => {
            for (k, v) in t.iter() {
                walk_item(v, &join(field, k), src, out);
            }
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                for (k, v) in t.iter() {
                    walk_item(v, &join(&format!("{field}[{i}]"), k), src, out);
                }
            }
        }
        Item::Value(v) => walk_value(v, field, src, out),
        Item::None => {}
    }
}

fn walk_value(v: &Value, field: &str, src: &Source, out: &mut Vec<Target>) {
    let key = field.rsplit('.').next().unwrap_or(field);
    match v {
        Value::String(s) => {
            let span = v.span().unwrap_or(0..0);
            if URL_KEYS.contains(&key) {
                out.push(Target {
                    url: s.value().trim().to_string(),
                    file: src.path.to_path_buf(),
                    position: Some(src.position(span.start)),
                    field: field.to_string(),
                });
            } else if MARKDOWN_KEYS.contains(&key) {
                for url in markdown_urls(s.value()) {
                    // The address's own place inside the string, when it is written as is.
                    let at = src.text[span.clone()]
                        .find(&url)
                        .map_or(span.start, |i| span.start + i);
                    out.push(Target {
                        url,
                        file: src.path.to_path_buf(),
                        position: Some(src.position(at)),
                        field: field.to_string(),
                    });
                }
            }
        }
        Value::InlineTable(t) => {
            for (k, v) in t.iter() {
                walk_value(v, &join(field, k), src, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk_value(v, &format!("{field}[{i}]"), src, out);
            }
        }
        _ => {}
    }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// The destinations of a Markdown text's links and images.
fn markdown_urls(markdown: &str) -> Vec<String> {
    Parser::new(markdown)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Checks every address of the issue in `dir`: one diagnostic per failure (an error) and per
/// permanent redirect (a warning with the address to use).
pub async fn check(dir: &Path, options: &Options) -> Vec<Diagnostic> {
    let targets = collect(dir);
    let mut urls: Vec<&str> = targets.iter().map(|t| t.url.as_str()).collect();
    urls.sort_unstable();
    urls.dedup();
    let outcomes = probe::probe_all(&urls, options).await;
    targets
        .iter()
        .filter_map(|t| {
            let outcome = outcomes.get(&t.url)?;
            diagnostic(t, outcome)
        })
        .collect()
}

fn diagnostic(t: &Target, outcome: &Outcome) -> Option<Diagnostic> {
    let d = match outcome {
        Outcome::Fine | Outcome::Skipped => return None,
        Outcome::Moved { to } => Diagnostic::warning(
            Rule::MovedLink,
            &t.file,
            format!("`{}` has moved permanently to `{to}`", t.url),
        )
        .hint(format!("use the new address: {to}")),
        Outcome::Failed(why) => Diagnostic::error(
            Rule::DeadLink,
            &t.file,
            format!("`{}` does not work: {why}", t.url),
        ),
    };
    Some(d.at(t.position).field(t.field.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_in_url_fields_and_in_markdown_with_their_field() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("01-news.toml"),
            "kind = \"article\"\nheading = \"H\"\nbody = \"\"\"\nSee [the posters](https://a.example/p)\nand ![a cot](https://a.example/cot.png).\n\"\"\"\n\n[image]\nsrc = \"https://a.example/i.png\"\n\n[[buttons]]\nlabel = \"Go\"\nurl = \"https://a.example/go\"\n",
        )
        .expect("write");
        type Found = (String, String, Option<(usize, usize)>);
        let found: Vec<Found> = collect(dir.path())
            .into_iter()
            .map(|t| (t.url, t.field, t.position))
            .collect();
        assert_eq!(
            found,
            [
                ("https://a.example/p".into(), "body".into(), Some((4, 19))),
                (
                    "https://a.example/cot.png".into(),
                    "body".into(),
                    Some((5, 14))
                ),
                (
                    "https://a.example/i.png".into(),
                    "image.src".into(),
                    Some((9, 7))
                ),
                (
                    "https://a.example/go".into(),
                    "buttons[0].url".into(),
                    Some((13, 7))
                ),
            ]
        );
    }
}
