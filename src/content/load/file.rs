//! One file of the issue: read as UTF-8, parsed as TOML into its model, with every problem
//! (bad bytes, bad syntax, an unknown key, a control character) a diagnostic at its place.

use std::fs;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::super::diagnostic::{Diagnostic, Rule, Source};
use super::{Cx, ISSUE_FILE};

/// One file being judged: its text for positions, and where to report.
pub(super) struct File<'a> {
    pub(super) src: Source<'a>,
}

impl File<'_> {
    pub(super) fn pos(&self, span: Range<usize>) -> Option<(usize, usize)> {
        self.src.span(span)
    }

    pub(super) fn error(
        &self,
        rule: Rule,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(rule, self.src.path, message).at(self.pos(span))
    }

    pub(super) fn warning(
        &self,
        rule: Rule,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::warning(rule, self.src.path, message).at(self.pos(span))
    }
}

impl Cx<'_> {
    pub(super) fn read(&mut self, path: &Path) -> Option<String> {
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

    pub(super) fn parse<T: DeserializeOwned>(&mut self, file: &File) -> Option<T> {
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
    pub(super) fn control_characters(&mut self, file: &File) {
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
