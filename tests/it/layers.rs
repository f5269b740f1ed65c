//! The layers point one way: `cli` (arguments and printing) → the jobs (`send`, `web` for
//! `serve`, `bounces`, `preview`, `links` for `check --links`, `next_issue` for `new`) →
//! `mail` (the messages the jobs send) → `render` and `store` → `content` and `config`. Every `crate::` path in `src/` is checked
//! against the table below, so an import upwards fails here rather than in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What each top-level module of `src/` may name besides itself. A module missing from the
/// table fails the test: give it its place.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "bounces",
            "config",
            "content",
            "links",
            "mail",
            "next_issue",
            "preview",
            "render",
            "retry",
            "send",
            "store",
            "web",
        ],
    ),
    // The jobs: each stands on mail, render, store, content and config, and on no other job.
    (
        "send",
        &["mail", "render", "store", "content", "config", "retry"],
    ),
    (
        "web",
        &["mail", "render", "store", "content", "config", "retry"],
    ),
    ("bounces", &["mail", "render", "store", "content", "config"]),
    ("preview", &["render", "content", "config"]),
    ("links", &["content", "config"]),
    ("next_issue", &["content", "config"]),
    // What the jobs stand on: the mail the project sends (made with render, addresses
    // redacted and encoded as the store does), then render and store.
    ("mail", &["render", "store", "config"]),
    ("render", &["content", "config"]),
    ("store", &["content", "config"]),
    // The bottom: the settings name the topic catalog and report with the content's diagnostics.
    ("config", &["content"]),
    ("content", &[]),
    // The one retry policy: every loop that waits and tries again takes its waits from it.
    ("retry", &[]),
];

/// Imports the table does not allow yet, each with why it is there: remove one once it is
/// gone from the code (the test says when).
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// One `crate::` path named in a file of `src/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    file: PathBuf,
    /// The top-level module the file belongs to.
    from: String,
    /// The path after `crate::`, such as `mail::smtp::SmtpTarget`.
    path: String,
}

impl Import {
    fn to(&self) -> &str {
        self.path.split("::").next().unwrap_or_default()
    }

    fn is_known_exception(&self) -> bool {
        KNOWN_EXCEPTIONS
            .iter()
            .any(|(from, prefix, _)| self.from == *from && is_under(&self.path, prefix))
    }
}

/// `mail::smtp::redact` is under `mail::smtp`; `mail::smtpx` is not.
fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to: `src/send/job.rs` and `src/send.rs` are
/// both `send`. `None` for the crate root and the binary.
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).expect("a file under src/");
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

/// The text without `//` comments (doc comments name modules in links, which import nothing).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `root::` in `code`, groups expanded: `crate::a::{b, c::d}` gives
/// `a::b` and `a::c::d`.
fn paths_after(code: &str, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(root) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + root.len()..];
        // `lscp_crate::` is not `crate::`; `$crate::` (in a macro) is.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut chars = rest.chars().peekable();
        tree(&mut chars, "", &mut out);
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_space(chars: &mut Chars) {
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
}

/// One use-tree: segments separated by `::`, perhaps ending in a `{…}` group.
fn tree(chars: &mut Chars, prefix: &str, out: &mut Vec<String>) {
    let mut path = prefix.to_string();
    loop {
        skip_space(chars);
        if chars.next_if_eq(&'{').is_some() {
            group(chars, &path, out);
            return;
        }
        let mut ident = String::new();
        while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_') {
            ident.push(c);
        }
        if ident.is_empty() {
            break;
        }
        if ident != "self" {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&ident);
        }
        skip_space(chars);
        let mut ahead = chars.clone();
        if ahead.next() == Some(':') && ahead.next() == Some(':') {
            chars.next();
            chars.next();
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The items of a `{…}` group, after its `{`, up to and including its `}`.
fn group(chars: &mut Chars, prefix: &str, out: &mut Vec<String>) {
    loop {
        skip_space(chars);
        if chars.next_if_eq(&'}').is_some() || chars.peek().is_none() {
            return;
        }
        tree(chars, prefix, out);
        // Past what follows the item (`as Name`, `*`) to the next item or the group's end.
        while let Some(c) = chars.peek() {
            match c {
                ',' => {
                    chars.next();
                    break;
                }
                '}' => break,
                _ => {
                    chars.next();
                }
            }
        }
    }
}

fn imports() -> Vec<Import> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = BTreeSet::new();
    for file in files {
        let Some(from) = module_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for path in paths_after(&without_comments(&text), "crate::") {
            found.insert(Import {
                file: file.clone(),
                from: from.clone(),
                path,
            });
        }
    }
    found.into_iter().collect()
}

fn allowed(from: &str) -> Option<&'static [&'static str]> {
    ALLOWED
        .iter()
        .find(|(module, _)| *module == from)
        .map(|(_, to)| *to)
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let imports = imports();
    assert!(
        imports.len() > 100,
        "the scan found only {} imports: is it reading src/?",
        imports.len()
    );
    let wrong: Vec<String> = imports
        .iter()
        .filter(|i| i.to() != i.from && !i.is_known_exception())
        .filter(|i| allowed(&i.from).is_some_and(|to| !to.contains(&i.to())))
        .map(|i| format!("{}: {} imports crate::{}", i.file.display(), i.from, i.path))
        .collect();
    assert!(
        wrong.is_empty(),
        "imports against the layers (cli → jobs → render/store → content/config):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_of_src_has_its_place_in_the_layers() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let unplaced: Vec<&String> = modules.iter().filter(|m| allowed(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a line in tests/it/layers.rs: {unplaced:?}"
    );
}

#[test]
fn every_known_exception_is_still_needed() {
    let imports = imports();
    for (from, prefix, why) in KNOWN_EXCEPTIONS {
        assert!(
            allowed(from)
                .is_some_and(|to| !to.contains(&prefix.split("::").next().unwrap_or_default())),
            "{from} → {prefix} is allowed by the table anyway: remove the exception"
        );
        assert!(
            imports
                .iter()
                .any(|i| i.from == *from && is_under(&i.path, prefix)),
            "{from} no longer imports crate::{prefix} ({why}): remove the exception"
        );
    }
}

#[test]
fn the_binary_only_calls_the_command_line() {
    let main = src().join("main.rs");
    let text = std::fs::read_to_string(&main).expect("src/main.rs");
    let named = paths_after(&without_comments(&text), "lscp_mail::");
    assert!(!named.is_empty(), "main.rs names nothing of the library?");
    for path in named {
        assert!(
            is_under(&path, "cli"),
            "src/main.rs reaches past the command line: lscp_mail::{path}"
        );
    }
}

#[test]
fn the_scan_reads_use_trees_as_rust_does() {
    let code = "use crate::send::{self, smtp::{Connection, SmtpTarget}, outgoing as out};\n\
                let x = crate::store::redact(y); lscp_crate::nothing; $crate::cli::output::x";
    assert_eq!(
        paths_after(code, "crate::"),
        [
            "send",
            "send::smtp::Connection",
            "send::smtp::SmtpTarget",
            "send::outgoing",
            "store::redact",
            "cli::output::x",
        ]
    );
    assert_eq!(
        without_comments("/// See [`crate::render`].\nuse crate::content; // crate::web"),
        "\nuse crate::content; "
    );
}
