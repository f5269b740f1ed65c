//! Reading and checking import files: columns, line numbers, export rows, hostile input.

use std::io::Read;
use std::path::Path;

use super::row::Columns;
use super::*;
use crate::content::TopicCatalog;
use crate::store::name::NameError;

#[test]
fn columns_may_come_in_any_order_and_any_case() {
    let c = Columns::from_header(&["Topics", "EMAIL", "name"]).expect("valid");
    assert_eq!(
        (c.email, c.topics, c.name, c.organisation),
        (1, Some(0), Some(2), None)
    );
}

#[test]
fn a_byte_order_mark_before_the_first_column_is_ignored() {
    assert!(Columns::from_header(&["\u{feff}email", "name"]).is_ok());
}

#[test]
fn a_header_without_email_or_with_an_unknown_column_is_refused() {
    let e = |h: &[&str]| Columns::from_header(h).err().unwrap_or_default();
    assert_eq!(e(&["name", "topics"]), "there is no `email` column");
    assert_eq!(e(&["email", "phone"]), "unknown column `phone`");
    assert_eq!(e(&["email", "Email"]), "the column `email` appears twice");
}

fn parsed(bytes: &[u8]) -> ImportFile {
    let catalog = TopicCatalog::builtin();
    ImportFile::parse(Path::new("t.csv"), bytes, &catalog, &catalog.all(), &Silent)
        .expect("readable")
}

fn lines(file: &ImportFile) -> (Vec<u64>, Vec<u64>) {
    (
        file.rows.iter().map(|r| r.line).collect(),
        file.problems.iter().map(|p| p.line).collect(),
    )
}

#[test]
fn line_numbers_are_the_same_whatever_the_line_endings() {
    let text = "email,name\nann@example.org,Ann\nnot-an-address,Bob\n\"cy@example.org\",\"Cy\nTwo\"\ndi@example.org,Di\n";
    let unix = parsed(text.as_bytes());
    let windows = parsed(text.replace('\n', "\r\n").as_bytes());
    let old_mac = parsed(text.replace('\n', "\r").as_bytes());
    assert_eq!(lines(&unix), (vec![2, 6], vec![3, 4]));
    assert_eq!(lines(&windows), lines(&unix));
    assert_eq!(lines(&old_mac), lines(&unix));
}

/// Hands over a few bytes a read, as a slow disk or pipe may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(3);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn line_numbers_are_right_when_the_file_arrives_a_few_bytes_at_a_time() {
    let text = "email,name\r\nann@example.org,Ann\r\n\r\nnot-an-address,Bob\r\n\"cy@example.org\",\"Cy\r\nTwo\"\r\ndi@example.org,Di\r";
    let catalog = TopicCatalog::builtin();
    let all = catalog.all();
    let mut rows =
        Rows::new(Path::new("t.csv"), Trickle(text.as_bytes()), &catalog, &all).expect("header");
    let mut lines = Vec::new();
    while let Some((line, _)) = rows.next_row(&Silent).expect("readable") {
        lines.push(line);
    }
    assert_eq!(lines, [2, 4, 5, 7]);
    assert_eq!(lines, {
        let (mut ok, bad) = super::tests::lines(&parsed(text.as_bytes()));
        ok.extend(bad);
        ok.sort_unstable();
        ok
    });
}

#[test]
fn only_the_active_rows_of_an_export_are_imported() {
    let file = parsed(
        b"email,name,organisation,topics,status,created_at,confirmed_at\n\
          ann@example.org,Ann,,training,active,2026-01-01T00:00:00+00:00,\n\
          bob@example.org,Bob,,training,unsubscribed,2026-01-01T00:00:00+00:00,\n",
    );
    assert_eq!(lines(&file), (vec![2], vec![3]));
    assert_eq!(
        file.problems[0].problem,
        RowProblem::NotActive {
            status: "unsubscribed".into()
        }
    );
}

#[test]
fn a_control_character_in_a_name_or_organisation_is_a_row_error() {
    let file = parsed(
        b"email,name,organisation\nann@example.org,\"Ann\x1b[2J\",\nbob@example.org,Bob,\"Leeds\nCouncil\"\ncy@example.org,Cy,Leeds\n",
    );
    let problems: Vec<(u64, &RowProblem)> =
        file.problems.iter().map(|p| (p.line, &p.problem)).collect();
    assert_eq!(
        problems,
        [
            (
                2,
                &RowProblem::BadText {
                    column: "name",
                    problem: NameError::Control("U+001B".into())
                }
            ),
            (
                3,
                &RowProblem::BadText {
                    column: "organisation",
                    problem: NameError::LineBreak
                }
            ),
        ]
    );
    assert_eq!(lines(&file).0, [5]);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// A row an attacker or a careless export might hold.
    fn hostile_field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,8}@example\\.org",
            "\\PC{0,20}",
            "[\"\r\n,;\u{1b}\u{feff}\u{0}a-z@=+-]{0,30}",
            Just("x".repeat(5000)),
            Just("\"unterminated".into()),
            Just("\u{feff}email".into()),
        ]
    }

    fn hostile_file() -> impl Strategy<Value = Vec<u8>> {
        let row = prop::collection::vec(hostile_field(), 0..5);
        let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        (prop::collection::vec((row, ending), 0..12), any::<bool>()).prop_map(|(rows, bom)| {
            let mut text = String::from(if bom { "\u{feff}" } else { "" });
            text.push_str("email,name,organisation,topics\n");
            for (fields, ending) in rows {
                text.push_str(&fields.join(","));
                text.push_str(ending);
            }
            text.into_bytes()
        })
    }

    /// Every row of a parsed file is either to be imported or reported, each once, on a
    /// line that exists, in file order.
    fn check_accounted_for(bytes: &[u8], file: &ImportFile) {
        let physical_lines = 1 + bytes
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
            .count() as u64;
        let (mut seen, _) = lines(file);
        seen.extend(file.problems.iter().map(|p| p.line));
        seen.sort_unstable();
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(seen, unique, "a line reported twice");
        assert!(
            seen.iter().all(|&l| (2..=physical_lines).contains(&l)),
            "{seen:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_importer(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let catalog = TopicCatalog::builtin();
            if let Ok(file) = ImportFile::parse(Path::new("t.csv"), &bytes, &catalog, &catalog.all(), &Silent) {
                check_accounted_for(&bytes, &file);
            }
        }

        #[test]
        fn hostile_rows_are_imported_or_reported_on_their_own_line(bytes in hostile_file()) {
            let file = parsed(&bytes);
            check_accounted_for(&bytes, &file);
            // Without quotes, every non-empty line after the header is one row, reported
            // or imported under its own number.
            let text = String::from_utf8_lossy(&bytes);
            if !text.contains('"') {
                let expected: Vec<u64> = text
                    .replace("\r\n", "\n")
                    .replace('\r', "\n")
                    .split('\n')
                    .zip(1..)
                    .skip(1)
                    .filter(|(l, _)| !l.is_empty())
                    .map(|(_, n)| n)
                    .collect();
                let (mut seen, _) = lines(&file);
                seen.extend(file.problems.iter().map(|p| p.line));
                seen.sort_unstable();
                prop_assert_eq!(seen, expected);
            }
        }
    }
}
