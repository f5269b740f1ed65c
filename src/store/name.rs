//! A practitioner's name or organisation: one line of printable text, checked once at every
//! edge that accepts one (the confirmation page, `subscribers add`, import), then trusted.
//!
//! It ends up in a `To:` header and in the administrator's terminal, so nothing that moves the
//! cursor, starts a new line, or reorders what is shown (bidirectional overrides) gets in.

use std::fmt;
use std::str::FromStr;

/// The longest name or organisation accepted, in characters.
pub const MAX_CHARS: usize = 200;

/// A name or an organisation as the practitioner gave it (trimmed, never empty). Read back
/// from the database as it was written (`name AS "name: DisplayName"`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct DisplayName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is longer than {MAX_CHARS} characters")]
    TooLong,
    #[error("has more than one line")]
    LineBreak,
    #[error("has an invisible control character ({0})")]
    Control(String),
}

impl DisplayName {
    /// `None` for empty (or only spaces): a name is optional everywhere.
    pub fn parse(given: &str) -> Result<Option<Self>, NameError> {
        let name = given.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().any(is_line_break) {
            return Err(NameError::LineBreak);
        }
        if let Some(c) = name.chars().find(|&c| is_hidden(c)) {
            return Err(NameError::Control(format!("U+{:04X}", u32::from(c))));
        }
        if name.chars().count() > MAX_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(Some(Self(name.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read as the text it is (`name.as_deref()`); there is no way to change it.
impl std::ops::Deref for DisplayName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Control characters (C0, DEL, C1: escape sequences, tabs) and the format characters that
/// change what is shown without being seen: bidirectional controls, zero-width spaces, the
/// byte-order mark. Zero-width (non-)joiners stay: names in some scripts need them.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// For command-line arguments: an empty value is an error there, since leaving the option out
/// says "none".
impl FromStr for DisplayName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Self::parse(s) {
            Ok(Some(name)) => Ok(name),
            Ok(None) => Err("is empty (leave the option out for none)".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_name_is_kept_as_given_less_surrounding_spaces() {
        let name = DisplayName::parse("  Siân O'Neill-Nakamura ").expect("valid");
        assert_eq!(
            name.map(|n| n.to_string()).as_deref(),
            Some("Siân O'Neill-Nakamura")
        );
        assert_eq!(DisplayName::parse("   "), Ok(None));
    }

    #[test]
    fn a_name_of_more_than_one_line_is_refused() {
        for bad in [
            "Ann\nClick https://evil.example",
            "Ann\r\nBcc: x",
            "Ann\u{2028}Smith",
        ] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(NameError::LineBreak),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn control_and_invisible_reordering_characters_are_refused() {
        for bad in [
            "Ann\u{1b}[2JSmith",
            "Ann\tSmith",
            "Ann\u{7f}",
            "Ann\u{9b}31m",
            "Ann \u{202e}htims",
            "Ann\u{200b}Smith",
            "\u{feff}Ann",
        ] {
            assert!(
                matches!(DisplayName::parse(bad), Err(NameError::Control(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn a_name_longer_than_the_limit_is_refused() {
        assert!(DisplayName::parse(&"é".repeat(MAX_CHARS)).is_ok());
        assert_eq!(
            DisplayName::parse(&"é".repeat(MAX_CHARS + 1)),
            Err(NameError::TooLong)
        );
    }
}
