//! Reading an issue folder: parse each TOML file, then judge what it says, turning the raw
//! model into the domain types. Every problem becomes a [`Diagnostic`] with its place; the
//! issue is only returned when there is no error, so `compose` never renders a broken issue.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use image::ImageDecoder;
use image::metadata::Orientation;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::value::Datetime;

use super::accessibility::{skipped_heading, vague_link_text};
use super::diagnostic::{Diagnostic, Rule, Source};
use super::issue::*;
use super::model::*;
use super::topic::{Topic, TopicCatalog};
use super::when::{SessionText, WhenError, format_date};

pub const ISSUE_FILE: &str = "issue.toml";

/// How `lscp-mail new` marks a text still to write: a warning, so a new issue passes `check`
/// and fails `check --strict` until it is written.
pub const PLACEHOLDER: &str = "TO WRITE";

/// Inbox apps show roughly this much of a preheader.
const PREHEADER_MAX: usize = 140;
/// Longer subjects are cut off on phones and in most inbox lists.
const SUBJECT_MAX: usize = 90;
/// The email is 600 px wide with 24 px of padding each side (templates/email.mjml.hbs).
pub const CONTENT_WIDTH: u32 = 552;
const VAGUE_LINK_HINT: &str =
    "say where the link goes, e.g. [book safer sleep training](…) rather than [click here](…)";

/// Above this a local image is a warning: slow for the editor and wasteful to store.
const IMAGE_BYTES_MAX: usize = 1_000_000;

/// `cot-1f0c…9a.jpg`: the file's stem for people, and a hash of its bytes and the width it is
/// resized to, so the name changes whenever what is served would.
fn published_name(written: &Path, bytes: &[u8], target: u32, format: LocalImageFormat) -> String {
    use sha2::{Digest, Sha256};
    let stem: String = written
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut hash = Sha256::new();
    hash.update(bytes);
    hash.update(target.to_le_bytes());
    let hex = hex::encode(&hash.finalize()[..8]);
    let stem = match stem.trim_matches('-') {
        "" => "image",
        s => s,
    };
    format!("{stem}-{hex}.{}", format.extension())
}

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

/// One file being judged: its text for positions, and where to report.
struct File<'a> {
    src: Source<'a>,
}

impl File<'_> {
    fn pos(&self, span: Range<usize>) -> Option<(usize, usize)> {
        self.src.span(span)
    }

    fn error(&self, rule: Rule, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(rule, self.src.path, message).at(self.pos(span))
    }

    fn warning(&self, rule: Rule, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(rule, self.src.path, message).at(self.pos(span))
    }
}

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

    fn read(&mut self, path: &Path) -> Option<String> {
        match fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(e) => {
                    let offset = e.utf8_error().valid_up_to();
                    let text = String::from_utf8_lossy(e.as_bytes());
                    let pos = Source { path, text: &text }.position(offset);
                    self.push(
                        Diagnostic::error(Rule::TomlSyntax, path, "the file is not valid UTF-8")
                            .at(Some(pos))
                            .hint("save the file as UTF-8"),
                    );
                    None
                }
            },
            Err(e) => {
                let hint = if path.ends_with(ISSUE_FILE) {
                    "every issue folder needs an issue.toml with its title, month, published date, subject and preheader"
                } else {
                    "check the file's permissions"
                };
                self.push(
                    Diagnostic::error(Rule::Io, path, format!("cannot read the file: {e}"))
                        .hint(hint),
                );
                None
            }
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, file: &File) -> Option<T> {
        match toml::from_str::<T>(file.src.text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(toml_error(file, &e));
                None
            }
        }
    }

    /// Every text value of the file, whatever its key, is printable: line breaks and tabs are
    /// text, any other control character (NUL, ESC, a lone `\u0085`…) is an error. TOML only
    /// lets them in through escapes, which is how they hide.
    fn control_characters(&mut self, file: &File) {
        // A file that does not parse is reported by the typed parse.
        let Ok(doc) = toml::de::DeTable::parse(file.src.text) else {
            return;
        };
        let mut found = Vec::new();
        for (key, value) in doc.get_ref() {
            find_control_characters(value, key.get_ref().to_string(), &mut found);
        }
        for (field, span, c) in found {
            self.push(
                file.error(
                    Rule::ControlCharacter,
                    span,
                    format!(
                        "the text holds a control character (U+{:04X}) that cannot be printed",
                        u32::from(c)
                    ),
                )
                .field(field)
                .hint("remove it; it is often pasted with the text or written as a \\u escape"),
            );
        }
    }

    fn header(&mut self, file: &File, dir: &Path, raw: IssueToml) -> Option<Header> {
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

    fn placeholders<'t>(
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

    fn date(&mut self, file: &File, value: &Spanned<Datetime>, field: &str) -> Option<NaiveDate> {
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

    fn topic(&mut self, file: &File, topic: Option<Spanned<String>>) -> Option<Topic> {
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

    fn heading(&mut self, file: &File, heading: &Spanned<String>) -> String {
        let h = heading.get_ref().trim().to_string();
        if h.is_empty() {
            self.push(
                file.error(Rule::BadValue, heading.span(), "the heading is empty")
                    .field("heading"),
            );
        }
        h
    }

    fn link(&mut self, file: &File, value: &Spanned<String>, field: &str) -> Option<Link> {
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
    fn markdown(
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
    fn link_words(
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

    fn empty(&mut self, file: &File, heading: &Spanned<String>, what: &str) {
        self.push(
            file.error(
                Rule::EmptySection,
                heading.span(),
                format!("the section \"{}\" is empty", heading.get_ref().trim()),
            )
            .hint(what.to_string()),
        );
    }

    fn section(&mut self, file: &File, published: Option<NaiveDate>) -> Option<Section> {
        let head: SectionHead = self.parse(file)?;
        let stem = file.src.path.file_stem().and_then(|s| s.to_str());
        let anchor = self.anchors.claim(stem.unwrap_or("section"));
        let (heading, topic, body) = match head.kind.get_ref().as_str() {
            "article" => {
                let raw: ArticleToml = self.parse(file)?;
                let heading = self.heading(file, &raw.heading);
                let topic = self.topic(file, raw.topic);
                let body = self.article(file, raw.body, raw.image, raw.buttons, &raw.heading);
                (
                    heading,
                    topic,
                    body.map(|a| SectionBody::Article(Box::new(a))),
                )
            }
            "training" => {
                let raw: TrainingToml = self.parse(file)?;
                let heading = self.heading(file, &raw.heading);
                let topic = self.topic(file, raw.topic);
                let intro = self.markdown(file, raw.intro, "intro", 2);
                if raw.courses.is_empty()
                    && raw.groups.iter().all(|g| g.get_ref().courses.is_empty())
                {
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
                            &anchor,
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
                            &anchor,
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
                (heading, topic, body)
            }
            "links" => {
                let raw: LinksToml = self.parse(file)?;
                let heading = self.heading(file, &raw.heading);
                let topic = self.topic(file, raw.topic);
                let intro = self.markdown(file, raw.intro, "intro", 2);
                if raw.links.is_empty() {
                    self.empty(file, &raw.heading, "add at least one [[links]] table");
                }
                let links: Vec<_> = raw
                    .links
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let span = l.span();
                        let l = l.into_inner();
                        let description = self
                            .markdown(file, l.description, &format!("links[{i}].description"), 2)
                            .unwrap_or_default();
                        let url = self.link(file, &l.url, &format!("links[{i}].url"))?;
                        self.link_words(
                            file,
                            span,
                            &l.title,
                            url.as_str(),
                            format!("links[{i}].title"),
                        );
                        Some(SavedLink {
                            title: l.title.trim().to_string(),
                            description,
                            url,
                        })
                    })
                    .collect();
                let body = links
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(|links| SectionBody::Links(SavedLinks { intro, links }));
                (heading, topic, body)
            }
            "diary" => {
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
                    .map(|(i, d)| self.diary_date(file, &anchor, i, d, published))
                    .collect();
                let body = dates
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(|dates| SectionBody::Diary(Diary { intro, dates }));
                (heading, topic, body)
            }
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

    fn article(
        &mut self,
        file: &File,
        body: Option<Spanned<String>>,
        image: Option<Spanned<ImageToml>>,
        buttons: Vec<Spanned<ButtonToml>>,
        heading: &Spanned<String>,
    ) -> Option<Article> {
        let body = self.markdown(file, body, "body", 2).unwrap_or_default();
        if body.is_blank() && image.is_none() && buttons.is_empty() {
            self.empty(
                file,
                heading,
                "write a `body`, or add an [image] or [[buttons]]",
            );
        }
        let image = match image {
            Some(img) => Some(self.image(file, img)?),
            None => None,
        };
        let buttons: Vec<_> = buttons
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let span = b.span();
                let b = b.into_inner();
                let url = self.link(file, &b.url, &format!("buttons[{i}].url"))?;
                self.link_words(
                    file,
                    span,
                    &b.label,
                    url.as_str(),
                    format!("buttons[{i}].label"),
                );
                Some(Button {
                    label: b.label.trim().to_string(),
                    url,
                })
            })
            .collect();
        Some(Article {
            body,
            image,
            buttons: buttons.into_iter().collect::<Option<_>>()?,
        })
    }

    fn image(&mut self, file: &File, img: Spanned<ImageToml>) -> Option<Image> {
        let span = img.span();
        let img = img.into_inner();
        let display_width = img.width.unwrap_or(CONTENT_WIDTH).min(CONTENT_WIDTH);
        let src = self.image_src(file, &img.src, display_width);
        let link = match &img.link {
            Some(l) => Some(self.link(file, l, "image.link")?),
            None => None,
        };
        let alt = img
            .alt
            .as_ref()
            .map(|a| a.get_ref().trim().to_string())
            .filter(|a| !a.is_empty());
        if alt.is_none() {
            let span = img.alt.as_ref().map_or(span.clone(), |a| a.span());
            self.push(
                file.error(Rule::MissingAltText, span, "the image has no alt text")
                    .field("image.alt")
                    .hint("describe what the image shows for readers who cannot see it, e.g. alt = \"Poster: the safest cot is a clear cot\""),
            );
        }
        if let Some(width) = img.width.filter(|&w| w > CONTENT_WIDTH) {
            self.push(
                file.warning(
                    Rule::ImageTooWide,
                    span,
                    format!("the image is set {width} px wide, wider than the email's {CONTENT_WIDTH} px"),
                )
                .field("image.width")
                .hint(format!("it is shown {CONTENT_WIDTH} px wide; set width = {CONTENT_WIDTH} or less")),
            );
        }
        let caption = self
            .markdown(file, img.caption, "image.caption", 2)
            .filter(|c| !c.is_blank());
        Some(Image {
            src: src?,
            alt: alt?,
            display_width,
            link,
            caption,
            placement: img.placement,
        })
    }

    /// An address, or (when `src` has no scheme) a file in the issue folder.
    fn image_src(
        &mut self,
        file: &File,
        src: &Spanned<String>,
        display_width: u32,
    ) -> Option<ImageSrc> {
        let written = src.get_ref().trim();
        if url::Url::parse(written) != Err(url::ParseError::RelativeUrlWithoutBase) {
            return self.link(file, src, "image.src").map(ImageSrc::Remote);
        }
        let fail = |message: String, hint: &str| {
            file.error(Rule::ImageFile, src.span(), message)
                .field("image.src")
                .hint(hint)
        };
        let relative = Path::new(written);
        if written.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            self.push(fail(
                format!("`{written}` is not a file in the issue folder"),
                "name a file beside issue.toml, such as src = \"cot.jpg\", or give an https:// address",
            ));
            return None;
        }
        let dir = file.src.path.parent().unwrap_or(Path::new("."));
        let path = dir.join(relative);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.push(fail(
                    format!("cannot read the image {}: {e}", path.display()),
                    "put the file in the issue folder, or correct its name (names are case-sensitive)",
                ));
                return None;
            }
        };
        let reader =
            match image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format() {
                Ok(r) => r,
                Err(e) => {
                    self.push(fail(
                        format!("cannot read the image `{written}`: {e}"),
                        "save it again as PNG, JPEG or GIF",
                    ));
                    return None;
                }
            };
        let format = match reader.format() {
            Some(image::ImageFormat::Png) => LocalImageFormat::Png,
            Some(image::ImageFormat::Jpeg) => LocalImageFormat::Jpeg,
            Some(image::ImageFormat::Gif) => LocalImageFormat::Gif,
            other => {
                let what = other.map_or("not an image".to_string(), |f| format!("a {f:?} image"));
                self.push(fail(
                    format!("`{written}` is {what}; an email image must be PNG, JPEG or GIF"),
                    "save it as JPEG (photos) or PNG (drawings, text)",
                ));
                return None;
            }
        };
        let dimensions = reader.into_decoder().and_then(|mut d| {
            let (w, h) = d.dimensions();
            // As compose will turn it: a portrait photo stored on its side is narrow.
            Ok(match d.orientation()? {
                Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH => (h, w),
                _ => (w, h),
            })
        });
        let (width, height) = match dimensions {
            Ok(d) => d,
            Err(e) => {
                self.push(fail(
                    format!("`{written}` does not decode as {}: {e}", format.extension()),
                    "save it again from an image editor",
                ));
                return None;
            }
        };
        if bytes.len() > IMAGE_BYTES_MAX {
            self.push(
                file.warning(
                    Rule::ImageSize,
                    src.span(),
                    format!(
                        "`{written}` is {:.1} MB ({width}×{height} px); over 1 MB is slow to check, compose and send",
                        bytes.len() as f64 / 1_000_000.0
                    ),
                )
                .field("image.src")
                .hint(format!("compose resizes it to {} px wide; save a smaller original", 2 * display_width)),
            );
        }
        if width < display_width {
            self.push(
                file.warning(
                    Rule::ImageResolution,
                    src.span(),
                    format!(
                        "`{written}` is {width} px wide, narrower than its display width of {display_width} px: it will look blurred"
                    ),
                )
                .field("image.src")
                .hint(format!("use a wider original, or set `width = {width}` in [image]")),
            );
        }
        // Twice the display width is crisp on high-density screens; a smaller original is
        // never enlarged.
        let target = width.min(2 * display_width);
        let published_name = published_name(relative, &bytes, target, format);
        Some(ImageSrc::Local(LocalImage {
            path,
            format,
            width,
            height,
            target_width: target,
            published_name,
        }))
    }

    fn course(
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

    fn diary_date(
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

struct Header {
    id: IssueId,
    title: String,
    published: NaiveDate,
    subject: String,
    preheader: String,
    intro: Option<Markdown>,
    contents: bool,
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

/// The key path, place and character of every string under `value` (at `path`) that holds a
/// control character other than CR, LF or tab.
fn find_control_characters(
    value: &Spanned<toml::de::DeValue>,
    path: String,
    found: &mut Vec<(String, Range<usize>, char)>,
) {
    use toml::de::DeValue;
    match value.get_ref() {
        DeValue::String(s) => {
            if let Some(c) = s
                .chars()
                .find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                found.push((path, value.span(), c));
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_control_characters(item, format!("{path}[{i}]"), found);
            }
        }
        DeValue::Table(table) => {
            for (key, item) in table {
                find_control_characters(item, format!("{path}.{}", key.get_ref()), found);
            }
        }
        _ => {}
    }
}

/// A TOML parse or shape error, with its place and a hint for the common cases.
fn toml_error(file: &File, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    let rule = if message.starts_with("unknown field") {
        Rule::UnknownField
    } else if message.starts_with("missing field")
        || message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("unknown variant")
    {
        Rule::BadValue
    } else {
        Rule::TomlSyntax
    };
    let hint = match rule {
        Rule::UnknownField => {
            Some("check the spelling; docs/editor-guide.md lists every key a section may have")
        }
        Rule::TomlSyntax if message.contains("string") => {
            Some("text values need quotes; use \"\"\"…\"\"\" for text over several lines")
        }
        _ => None,
    };
    let mut d = Diagnostic::error(rule, file.src.path, message)
        .at(e.span().map(|s| file.src.position(s.start)));
    if let Some(h) = hint {
        d = d.hint(h);
    }
    d
}
