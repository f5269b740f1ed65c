//! `subscribers export`: every subscriber with their topics, as CSV.

use std::io::Write;

use super::subscriber::Subscriber;

/// The export's columns. The first four are those of an import file.
pub const COLUMNS: [&str; 7] = [
    "email",
    "name",
    "organisation",
    "topics",
    "status",
    "created_at",
    "confirmed_at",
];

/// Who the file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The data exactly as stored: `subscribers import` reads it back unchanged.
    Data,
    /// For opening in a spreadsheet: cells that would run as a formula are made text, which
    /// alters them (see [`spreadsheet_safe`]).
    Spreadsheet,
}

/// Writes `subscribers` as CSV with a header line; topics are separated by `;` as in imports.
pub fn write_csv<W: Write>(
    subscribers: &[Subscriber],
    out: W,
    form: Form,
) -> Result<(), csv::Error> {
    let cell = |s: &str| match form {
        Form::Data => s.to_string(),
        Form::Spreadsheet => spreadsheet_safe(s),
    };
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for s in subscribers {
        w.write_record([
            cell(s.email.as_str()),
            cell(s.name.as_deref().unwrap_or("")),
            cell(s.organisation.as_deref().unwrap_or("")),
            s.topics.join(";"),
            s.status.to_string(),
            s.created_at.to_rfc3339(),
            s.confirmed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// For a file to be opened in a spreadsheet, which runs a cell starting with `=`, `+`, `-` or
/// `@` as a formula; a leading `'` makes it text (OWASP's advice on CSV injection).
fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_looks_like_a_formula_is_exported_as_text() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("Ann Smith"), "Ann Smith");
    }
}
