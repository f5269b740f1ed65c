//! A real SMTP server for tests: postfix's `smtp-sink` (Debian `postfix`, which scripts/test
//! installs) on a free port, dumping every message it accepts to a file of its own in a
//! temporary folder. Extra arguments change how it answers, e.g. `["-f", "rcpt", "-b",
//! "451 4.7.1 Try later"]`... see smtp-sink(1). Killed when dropped.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// One message as the sink dumped it: the envelope (`X-Mail-Args`, `X-Rcpt-Args`), then the
/// message itself.
pub struct Dumped {
    pub path: PathBuf,
    pub raw: Vec<u8>,
}

impl Dumped {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a dumped message parses")
    }

    /// The envelope recipients, without angle brackets.
    pub fn recipients(&self) -> Vec<String> {
        self.header_values("X-Rcpt-Args")
    }

    pub fn sender(&self) -> Option<String> {
        self.header_values("X-Mail-Args").into_iter().next()
    }

    /// The plain-text body, decoded.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    fn header_values(&self, name: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.raw);
        text.lines()
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
}

impl SmtpSink {
    /// Accepts every message.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra smtp-sink options before the address, such as `["-f", "rcpt"]`.
    pub fn start_with(extra: &[&str]) -> Self {
        let program = std::env::var("SMTP_SINK").unwrap_or_else(|_| "/usr/sbin/smtp-sink".into());
        assert!(
            Path::new(&program).exists(),
            "{program} is missing: run ./scripts/test, which installs postfix's smtp-sink"
        );
        // Another process may take a port between our finding it free and smtp-sink binding
        // it: then smtp-sink exits and we try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("a dump folder");
            // smtp-sink runs as `nobody` under root, and must write there.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("dump folder writable by all");
            let port = free_port();
            let mut cmd = Command::new(&program);
            if is_root() {
                cmd.args(["-u", "nobody"]);
            }
            let template = format!("{}/%Y%m%d%H%M%S.", dir.path().display());
            let mut child = cmd
                .args(extra)
                .args(["-d", &template])
                .arg(format!("127.0.0.1:{port}"))
                .arg("20")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("smtp-sink starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { port, dir, child };
                }
                if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("smtp-sink did not start on a free port");
    }

    /// `smtp://127.0.0.1:PORT`, for SMTP_URL.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The messages dumped so far, oldest first (by name, then by time of writing).
    pub fn messages(&self) -> Vec<Dumped> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("dump folder readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort_by_key(|p| {
            let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
            (modified, p.clone())
        });
        paths
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read(&path).ok()?;
                Some(Dumped { path, raw })
            })
            .collect()
    }

    /// Waits until at least `n` complete messages are there (a message is complete when its
    /// file has stopped growing and parses), up to `timeout`. Async, so that the tasks sending
    /// them can run meanwhile on the test's runtime.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Dumped> {
        let deadline = Instant::now() + timeout;
        let mut last_sizes: Vec<usize> = Vec::new();
        loop {
            let messages = self.messages();
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
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
