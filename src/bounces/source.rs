//! Where reports are read from: a message file, an mbox file, a Maildir folder, or one message
//! on standard input. Nothing here moves, deletes or flags a message: a report that takes
//! effect does so once however often it is read, and one that cannot be read stays for a
//! person to look at.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// A source named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    /// A single message, or an mbox when it begins with a `From ` line.
    File(PathBuf),
    /// A folder with `new/` and `cur/`.
    Maildir(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: no such file or folder")]
    Missing(String),
    #[error("{0} is a folder but not a Maildir (it has neither new/ nor cur/)")]
    NotMaildir(String),
    #[error("cannot read {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Source {
    /// `-`, a file or a Maildir folder.
    pub fn parse(arg: &str) -> Result<Self, SourceError> {
        if arg == "-" {
            return Ok(Self::Stdin);
        }
        let path = PathBuf::from(arg);
        if path.is_dir() {
            if path.join("new").is_dir() || path.join("cur").is_dir() {
                Ok(Self::Maildir(path))
            } else {
                Err(SourceError::NotMaildir(arg.to_string()))
            }
        } else if path.is_file() {
            Ok(Self::File(path))
        } else {
            Err(SourceError::Missing(arg.to_string()))
        }
    }

    pub fn is_stdin(&self) -> bool {
        matches!(self, Self::Stdin)
    }
}

/// One message of a source, or why it could not be read.
#[derive(Debug)]
pub struct Item {
    /// Where it is: `FILE`, `MBOX message N`, `MAILDIR/new/NAME`, `standard input`.
    pub origin: String,
    pub bytes: Result<Vec<u8>, String>,
}

/// Every message of `source`, in order. An error is the source as a whole being unusable.
pub fn read(source: &Source) -> Result<Vec<Item>, SourceError> {
    match source {
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| SourceError::Io {
                    what: "standard input".into(),
                    source,
                })?;
            Ok(vec![Item {
                origin: "standard input".into(),
                bytes: Ok(bytes),
            }])
        }
        Source::File(path) => read_file(path),
        Source::Maildir(dir) => read_maildir(dir),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        what: path.display().to_string(),
        source,
    }
}

fn read_file(path: &Path) -> Result<Vec<Item>, SourceError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    if !bytes.starts_with(b"From ") {
        return Ok(vec![Item {
            origin: path.display().to_string(),
            bytes: Ok(bytes),
        }]);
    }
    let mut items = Vec::new();
    let messages = mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(&bytes[..]));
    for (n, m) in messages.enumerate() {
        items.push(Item {
            origin: format!("{} message {}", path.display(), n + 1),
            bytes: m.map(|m| m.unwrap_contents()).map_err(|e| e.to_string()),
        });
    }
    Ok(items)
}

fn read_maildir(dir: &Path) -> Result<Vec<Item>, SourceError> {
    let mut items = Vec::new();
    for sub in ["new", "cur"] {
        let folder = dir.join(sub);
        if !folder.is_dir() {
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(io(&folder))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        names.sort();
        for path in names {
            items.push(Item {
                origin: path.display().to_string(),
                bytes: std::fs::read(&path).map_err(|e| e.to_string()),
            });
        }
    }
    Ok(items)
}
