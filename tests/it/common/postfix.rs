//! A real Postfix for tests (Debian's `postfix`, which scripts/test installs): its own
//! configuration directory, queue and log in a temporary folder, listening on a free port of
//! 127.0.0.1, started with `postfix -c DIR start` and stopped when dropped. Mail to
//! `gone.example.org` is for a local user who does not exist, so Postfix accepts it and then
//! bounces it with the DSN it generates; mail to any other domain is accepted and discarded
//! (delivered); mail to `news.leedsscp.org.uk` (the bounce address, with any `+tag`) is
//! delivered to the Maildir [`Postfix::maildir`]. Nothing leaves the machine.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use super::free_port;

pub struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path();
        // The delivery agents run as the postfix user: they must get through the folder.
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir(base.join(sub)).expect("mkdir");
        }
        let (uid, gid) = postfix_ids();
        for sub in ["data", "mail"] {
            std::os::unix::fs::chown(base.join(sub), Some(uid), Some(gid)).expect("chown");
        }
        let port = free_port();
        let b = base.display();
        std::fs::write(
            base.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {b}/queue\n\
                 data_directory = {b}/data\n\
                 command_directory = /usr/sbin\n\
                 daemon_directory = /usr/lib/postfix/sbin\n\
                 mail_owner = postfix\n\
                 setgid_group = postdrop\n\
                 myhostname = mx.lscp-test.invalid\n\
                 mydomain = lscp-test.invalid\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 mynetworks = 127.0.0.0/8\n\
                 # Any local recipient is accepted in SMTP; the unknown ones bounce afterwards.\n\
                 mydestination = gone.example.org\n\
                 local_recipient_maps =\n\
                 alias_maps =\n\
                 alias_database =\n\
                 recipient_delimiter = +\n\
                 virtual_mailbox_domains = news.leedsscp.org.uk\n\
                 virtual_mailbox_base = {b}/mail\n\
                 virtual_mailbox_maps = static:bounces/\n\
                 virtual_uid_maps = static:{uid}\n\
                 virtual_gid_maps = static:{gid}\n\
                 default_transport = discard:accepted by the test's Postfix\n\
                 relay_transport = discard:accepted by the test's Postfix\n\
                 disable_dns_lookups = yes\n\
                 smtp_dns_support_level = disabled\n\
                 biff = no\n\
                 maillog_file = {b}/maillog\n\
                 maillog_file_prefixes = {b}\n"
            ),
        )
        .expect("main.cf");
        std::fs::write(
            base.join("conf/master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
                 pickup unix n - n 60 1 pickup\n\
                 cleanup unix n - n - 0 cleanup\n\
                 qmgr unix n - n 300 1 qmgr\n\
                 rewrite unix - - n - - trivial-rewrite\n\
                 bounce unix - - n - 0 bounce\n\
                 defer unix - - n - 0 bounce\n\
                 trace unix - - n - 0 bounce\n\
                 verify unix - - n - 1 verify\n\
                 flush unix n - n 1000? 0 flush\n\
                 proxymap unix - - n - - proxymap\n\
                 proxywrite unix - - n - 1 proxymap\n\
                 smtp unix - - n - - smtp\n\
                 relay unix - - n - - smtp\n\
                 showq unix n - n - - showq\n\
                 error unix - - n - - error\n\
                 retry unix - - n - - error\n\
                 discard unix - - n - - discard\n\
                 local unix - n n - - local\n\
                 virtual unix - n n - - virtual\n\
                 anvil unix - - n - 1 anvil\n\
                 scache unix - - n - 1 scache\n\
                 postlog unix-dgram n - n - 1 postlogd\n"
            ),
        )
        .expect("master.cf");
        let postfix = Self { dir, port };
        let ok = postfix.control("start");
        assert!(
            ok,
            "Postfix did not start (it must run as root; scripts/test installs it): {}",
            postfix.log()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix is not listening: {}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    fn control(&self, what: &str) -> bool {
        Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg(what)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Where mail to the bounce address (any `+tag`) is delivered.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/bounces")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The files in the Maildir's new/, waiting until there are `n`.
    pub fn wait_for_mail(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let files = files_in(&self.maildir().join("new"));
            if files.len() >= n {
                return files;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages arrived: {}",
                files.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The postfix user's uid and gid.
fn postfix_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postfix"])
        .output()
        .expect("id");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postfix uid");
    let out = Command::new("id")
        .args(["-g", "postfix"])
        .output()
        .expect("id");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postfix gid");
    (uid, gid)
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // `abort`: stop now, without waiting for clients; the queue is thrown away with the folder.
        self.control("abort");
    }
}
