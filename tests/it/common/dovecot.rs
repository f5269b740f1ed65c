//! A real IMAP server for tests: Debian's Dovecot (`dovecot-imapd`, which scripts/test installs),
//! with its own configuration, state and log in a temporary folder, plain IMAP on a free port of
//! 127.0.0.1, and one user (`bounces`, password `secret`) whose mail is a Maildir the test fills
//! before starting it. Stopped when dropped.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::free_port;

pub const USER: &str = "bounces";
pub const PASSWORD: &str = "secret";
/// The mail files belong to `nobody`, as a real mail user would not be root.
const UID: u32 = 65534;
const GID: u32 = 65534;

pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Dovecot {
    /// The user's Maildir, to fill before [`Dovecot::start`].
    pub fn prepare() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let maildir = dir.path().join("home").join(USER).join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        (dir, maildir)
    }

    pub fn start(dir: tempfile::TempDir) -> Self {
        let base = dir.path();
        chown_all(&base.join("home"));
        for sub in ["run", "state"] {
            std::fs::create_dir(base.join(sub)).expect("mkdir");
        }
        std::fs::write(base.join("users"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).expect("users");
        let port = free_port();
        let b = base.display();
        std::fs::write(
            base.join("dovecot.conf"),
            format!(
                "base_dir = {b}/run\n\
                 state_dir = {b}/state\n\
                 log_path = {b}/dovecot.log\n\
                 protocols = imap\n\
                 listen = 127.0.0.1\n\
                 ssl = no\n\
                 disable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\n\
                 first_valid_uid = 1000\n\
                 default_internal_user = dovecot\n\
                 default_login_user = dovenull\n\
                 mail_location = maildir:~/Maildir\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {b}/users\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={UID} gid={GID} home={b}/home/%u\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
                 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n\
                 service imap-login {{\n  chroot =\n}}\n"
            ),
        )
        .expect("dovecot.conf");
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(base.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot runs (scripts/test installs dovecot-imapd)");
        let mut dovecot = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = dovecot.child.try_wait() {
                panic!("dovecot exited ({status}): {}", dovecot.log());
            }
            assert!(
                Instant::now() < deadline,
                "dovecot is not listening: {}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        dovecot
    }

    pub fn url(&self, mailbox: &str) -> String {
        format!("imap://{USER}:{PASSWORD}@127.0.0.1:{}/{mailbox}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join(USER).join("Maildir")
    }
}

/// first_valid_uid keeps root out; 65534 is above it.
fn chown_all(path: &Path) {
    let _ = std::os::unix::fs::chown(path, Some(UID), Some(GID));
    if path.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            chown_all(&e.path());
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its imap, login and auth processes with it (SIGKILL would
        // leave them running).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
