//! Reading an issue folder: parse each TOML file, then judge what it says, turning the raw
//! model into the domain types. Every problem becomes a [`Diagnostic`] with its place; the
//! issue is only returned when there is no error, so `compose` never renders a broken issue.
//!
//! This module reads the folder and the files and hands each section to the loader of its
//! kind: [`article`], [`training`], [`links`], [`diary`], [`resources`]; [`header`] judges `issue.toml`,
//! [`values`] the values every kind shares (dates, links, Markdown), [`image`] images, and
//! [`file`] the reading and parsing of one TOML file.

mod article;
mod diary;
mod file;
mod header;
mod image;
mod links;
mod resources;
mod training;
mod values;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::diagnostic::{Diagnostic, Rule, Source};
use super::issue::*;
use super::model::*;
use super::topic::{Topic, TopicCatalog};
use file::File;

pub const ISSUE_FILE: &str = "issue.toml";

/// How `lscp-mail new` marks a text still to write: a warning, so a new issue passes `check`
/// and fails `check --strict` until it is written.
pub const PLACEHOLDER: &str = "TO WRITE";

/// The email is 600 px wide with 24 px of padding each side (templates/email.mjml.hbs).
pub const CONTENT_WIDTH: u32 = 552;

/// What loading an issue found: the issue when it has no error, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    pub issue: Option<Issue>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Loads and judges the issue in `dir` against the configured topics.
pub fn load_issue(dir: &Path, topics: &TopicCatalog) -> Loaded {
    let mut cx = Cx {
        topics,
        anchors: Anchors::default(),
        diagnostics: Vec::new(),
    };
    let issue = cx.issue(dir);
    let has_errors = cx.diagnostics.iter().any(Diagnostic::is_error);
    Loaded {
        issue: issue.filter(|_| !has_errors),
        diagnostics: cx.diagnostics,
    }
}

struct Cx<'a> {
    topics: &'a TopicCatalog,
    anchors: Anchors,
    diagnostics: Vec<Diagnostic>,
}

/// What a section's loader found: its heading, its topic, and its body when it has no error.
type Judged = (String, Option<Topic>, Option<SectionBody>);

impl Cx<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn issue(&mut self, dir: &Path) -> Option<Issue> {
        let files = match section_files(dir) {
            Ok(files) => files,
            Err(e) => {
                self.push(
                    Diagnostic::error(Rule::Io, dir, format!("cannot read the issue folder: {e}"))
                        .hint("give the path of an issue folder, such as issues/2026-02"),
                );
                return None;
            }
        };
        let issue_path = dir.join(ISSUE_FILE);
        let text = self.read(&issue_path)?;
        let file = File {
            src: Source {
                path: &issue_path,
                text: &text,
            },
        };
        self.control_characters(&file);
        let raw: IssueToml = self.parse(&file)?;
        let header = self.header(&file, dir, raw);

        if files.is_empty() {
            self.push(
                Diagnostic::error(Rule::EmptySection, dir, "the issue has no sections")
                    .hint("add one TOML file per section, named 01-….toml, 02-….toml"),
            );
        }
        let mut sections = Vec::new();
        for path in &files {
            if let Some(text) = self.read(path) {
                let file = File {
                    src: Source { path, text: &text },
                };
                self.control_characters(&file);
                if let Some(s) = self.section(&file, header.as_ref().map(|h| h.published)) {
                    sections.push(s);
                }
            }
        }
        let h = header?;
        Some(Issue {
            id: h.id,
            dir: dir.to_path_buf(),
            title: h.title,
            published: h.published,
            subject: h.subject,
            preheader: h.preheader,
            intro: h.intro,
            contents: h.contents,
            sections,
        })
    }

    /// One section file: its kind read first, then the whole file judged by that kind's loader.
    fn section(&mut self, file: &File, published: Option<NaiveDate>) -> Option<Section> {
        let head: SectionHead = self.parse(file)?;
        let stem = file.src.path.file_stem().and_then(|s| s.to_str());
        let anchor = self.anchors.claim(stem.unwrap_or("section"));
        let (heading, topic, body): Judged = match head.kind.get_ref().as_str() {
            "article" => self.article_section(file)?,
            "training" => self.training_section(file, &anchor, published)?,
            "links" => self.links_section(file)?,
            "diary" => self.diary_section(file, &anchor, published)?,
            "resources" => self.resources_section(file, &anchor)?,
            other => {
                self.push(
                    file.error(
                        Rule::UnknownKind,
                        head.kind.span(),
                        format!("unknown section kind `{other}`"),
                    )
                    .field("kind")
                    .hint(format!("the kinds are: {SECTION_KINDS}")),
                );
                return None;
            }
        };
        Some(Section {
            anchor,
            file: file.src.path.to_path_buf(),
            heading,
            topic,
            body: body?,
        })
    }
}

/// The section files of an issue, in file-name order: every `*.toml` but `issue.toml`.
fn section_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name().is_some_and(|n| n != ISSUE_FILE)
                && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}
