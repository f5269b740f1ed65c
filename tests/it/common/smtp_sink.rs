//! A real SMTP server for tests: postfix's `smtp-sink` (Debian's `postfix` package, which
//! scripts/test installs), on a free port of 127.0.0.1, dumping every message it accepts to a
//! file of its own in a temporary folder. Extra arguments make it refuse, see smtp-sink(1):
//! `-r RCPT -b "451 4.7.1 Try later"` (temporary), `-f RCPT -B "550 5.1.1 No such user"`
//! (permanent). Killed when dropped.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::free_port;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One message as smtp-sink dumped it: its `X-` lines (the envelope: `X-Mail-Args`,
/// `X-Rcpt-Args`…), then the message itself.
pub struct Dumped {
    pub raw: Vec<u8>,
}

impl Dumped {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a dumped message parses")
    }

    /// The envelope's recipients, without angle brackets.
    pub fn recipients(&self) -> Vec<String> {
        envelope(&self.raw, "X-Rcpt-Args")
    }

    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub fn sender(&self) -> Option<String> {
        envelope(&self.raw, "X-Mail-Args").into_iter().next()
    }

    /// The plain-text body, decoded.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

/// The values of one of smtp-sink's envelope lines, such as `X-Rcpt-Args: <ann@example.org>`.
fn envelope(raw: &[u8], name: &str) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| {
            v.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['<', '>'])
                .to_string()
        })
        .collect()
}

impl SmtpSink {
    /// Starts on a free port, with smtp-sink options such as `["-f", "RCPT"]` (none: it
    /// accepts everything).
    pub fn start(extra: &[&str]) -> Self {
        // Another process may take the port between our finding it free and smtp-sink binding
        // it: then smtp-sink exits, and another port is tried.
        for _ in 0..5 {
            if let Some(sink) = Self::try_start(free_port(), extra) {
                return sink;
            }
        }
        panic!("smtp-sink did not start on a free port");
    }

    /// Starts on `port`: for a server that comes back after failing.
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        Self::try_start(port, extra).unwrap_or_else(|| panic!("smtp-sink did not listen on {port}"))
    }

    fn try_start(port: u16, extra: &[&str]) -> Option<Self> {
        let bin = std::env::var("SMTP_SINK").unwrap_or_else(|_| "/usr/sbin/smtp-sink".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: run ./scripts/test, which installs postfix's smtp-sink"
        );
        let dir = tempfile::tempdir().expect("dump folder");
        // smtp-sink drops to `nobody` when started as root; it must be able to write here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod dump folder");
        let template = format!("{}/%Y%m%d%H%M%S.", dir.path().display());
        let mut cmd = Command::new(&bin);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let mut child = cmd
            .args(["-d", &template])
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port, dir })
    }

    /// `smtp://127.0.0.1:PORT`, for SMTP_URL.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far, oldest first, as dumped.
    pub fn dumped(&self) -> Vec<Dumped> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("dump folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        // Names hold the time to the second; the files' times order messages within one.
        files.sort_by_key(|f| {
            let modified = std::fs::metadata(f).and_then(|m| m.modified()).ok();
            (modified, f.clone())
        });
        files
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read(&path).ok()?;
                Some(Dumped { raw })
            })
            .collect()
    }

    /// The raw bytes of every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.dumped().into_iter().map(|d| d.raw).collect()
    }

    /// The first envelope recipient of each message so far.
    pub fn recipients(&self) -> Vec<String> {
        self.dumped()
            .iter()
            .filter_map(|d| d.recipients().into_iter().next())
            .collect()
    }

    /// Waits until at least `n` complete messages are there (complete: the file has stopped
    /// growing and parses), up to `timeout`. Async, so that whatever sends them on the test's
    /// runtime can run meanwhile.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Dumped> {
        let deadline = Instant::now() + timeout;
        let mut last_sizes: Vec<usize> = Vec::new();
        loop {
            let messages = self.dumped();
            let sizes: Vec<usize> = messages.iter().map(|m| m.raw.len()).collect();
            let settled = messages.len() >= n
                && sizes == last_sizes
                && messages.iter().all(|m| {
                    mail_parser::MessageParser::default()
                        .parse(&m.raw)
                        .is_some()
                });
            if settled {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "smtp-sink received {} of {n} messages within {timeout:?}",
                messages.len()
            );
            last_sizes = sizes;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    // The effective uid, from /proc, which every Linux has.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
