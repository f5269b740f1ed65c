//! What `check` and `compose` report about an issue: what was wrong, and where (file, line,
//! column, field), with a hint when there is an obvious fix.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// Which rule a diagnostic comes from, so tests and scripts can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The folder or a file could not be read.
    Io,
    /// Not TOML, or not valid UTF-8.
    TomlSyntax,
    /// A key the format does not have: usually a typo.
    UnknownField,
    /// A required key is missing, or a value has the wrong type.
    BadValue,
    UnknownKind,
    UnknownTopic,
    WeekdayMismatch,
    EndBeforeStart,
    BadSession,
    SessionBeforePublication,
    NoWayToBook,
    MissingAltText,
    EmptySection,
    BadLink,
    /// A text value holds a control character other than a line break or tab (NUL, ESC…),
    /// usually from a `\u…` escape: it would break the email or a reader's terminal.
    ControlCharacter,
    InsecureLink,
    DateBeforePublication,
    IssueMonth,
    PreheaderLength,
    SubjectLength,
    /// The HTML is over Gmail's clipping limit.
    EmailSize,
    /// `check --links`: the address does not answer, or answers with an error.
    DeadLink,
    /// `check --links`: the address redirects permanently elsewhere.
    MovedLink,
    /// A `TO WRITE` placeholder left by `lscp-mail new`.
    Placeholder,
    /// A file in the templates folder that replaces no template: usually a misspelt name.
    UnusedTemplate,
    /// Link words that say nothing read on their own ("click here", a bare address): screen
    /// readers list a message's links out of their sentences.
    VagueLinkText,
    /// A Markdown heading more than one level below the heading before it.
    HeadingSkip,
    /// An image set wider than the email's 552 px of content.
    ImageTooWide,
    /// A text colour and the background the templates set it on, in the configuration, below
    /// WCAG AA's contrast for text.
    LowContrast,
    /// A local image that is missing, outside the issue folder, or not a PNG, JPEG or GIF.
    ImageFile,
    /// A local image over 1 MB: slow to load on a phone.
    ImageSize,
    /// A local image narrower than its display width: blurred when stretched.
    ImageResolution,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub rule: Rule,
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// The key path, such as `courses[2].sessions[0]`.
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(rule: Rule, file: &Path, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            rule,
            file: file.to_path_buf(),
            position: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(rule: Rule, file: &Path, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(rule, file, message)
        }
    }

    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        self.position = position;
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `issues/2026-02/05-training.toml:23:5: error: … (field courses[0].sessions[1])`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}: {}", self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A file's text, to turn byte offsets from the TOML parser into lines and columns.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    pub fn span(&self, span: std::ops::Range<usize>) -> Option<(usize, usize)> {
        Some(self.position(span.start))
    }
}
