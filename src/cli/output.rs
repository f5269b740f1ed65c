//! Everything the commands print to stdout goes through [`outln!`] and [`out!`]:
//!
//! - text that came from a subscriber, a sign-up or a file is shown with its control
//!   characters escaped, so a name holding an ESC sequence cannot repaint the terminal or
//!   forge a line of a report ([`escape_controls`], also used for the errors `main` prints);
//! - a closed stdout (`lscp-mail status 2026-02 | head -1`) is an [`OutputError`] that ends
//!   the command quietly, instead of the panic `println!` gives.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

/// Standard output could not be written; when the reader went away (a closed pipe), the
/// command ends quietly with success, as `git log | head` and `rg … | head` do.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output")]
pub struct OutputError(#[source] pub std::io::Error);

impl OutputError {
    /// The reader of stdout has gone (`| head`): nothing is wrong, nobody is listening.
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Whether an error that reached `main` is only stdout's reader having gone away.
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<OutputError>()
            .is_some_and(OutputError::is_closed_pipe)
    })
}

/// `s` with control characters (other than line feed and tab) and bidirectional overrides
/// shown as `\u{1b}`, so that printing it cannot move the cursor, clear the screen or reorder
/// what follows. Text without them is returned as is.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut escaped = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) {
            escaped.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Writes `args` (escaped) to stdout; used by the macros.
pub fn write_out(args: fmt::Arguments<'_>, newline: bool) -> Result<(), OutputError> {
    let text = args.to_string();
    let mut out = std::io::stdout().lock();
    out.write_all(escape_controls(&text).as_bytes())
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .map_err(OutputError)
}

/// `println!` for the commands: escapes control characters and returns a closed stdout as an
/// error for `?` rather than panicking.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*), true)
    };
}

/// `print!` for the commands; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*), false)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escape_sequence_in_a_name_is_shown_not_obeyed() {
        assert_eq!(
            escape_controls("Ann\u{1b}[2J\u{7}Smith\r"),
            "Ann\\u{1b}[2J\\u{7}Smith\\u{d}"
        );
        assert_eq!(
            escape_controls("evil\u{202e}gpj.exe"),
            "evil\\u{202e}gpj.exe"
        );
    }

    #[test]
    fn ordinary_text_is_printed_as_it_is() {
        let text = "Ann Smith, Leeds City Council (élise)\n\tnext line";
        assert!(matches!(escape_controls(text), Cow::Borrowed(t) if t == text));
    }
}
