//! A small SMTP server whose every answer the test scripts: it plays real relays' refusals
//! (Microsoft 365, Gmail, Postfix), STARTTLS with a test certificate, a dropped connection or an
//! outage, and records what the client said so a test can check it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the server does at the end of `DATA`.
#[derive(Debug, Clone)]
pub enum Answer {
    Reply(String),
    /// The reply, after keeping the client waiting this long: a slow relay.
    After(Duration, String),
    /// Close the connection as the message arrives, without a reply.
    Drop,
}

pub type ForRecipient<T> = Arc<dyn Fn(&str, u32) -> T + Send + Sync>;

/// The script: each answer as a real relay would give it. Recipient-dependent answers get the
/// address and how many times (from 1) that address was offered at that step.
#[derive(Clone)]
pub struct Relay {
    pub greeting: String,
    /// EHLO keywords besides the name (STARTTLS is added when `tls` is set).
    pub extensions: Vec<String>,
    /// Offer STARTTLS with this certificate; `MAIL FROM` before it is refused, as relays that
    /// require TLS do.
    pub tls: Option<TestCa>,
    /// With `tls`: TLS from the first byte (`smtps://`) instead of STARTTLS.
    pub implicit_tls: bool,
    /// The reply to `AUTH`.
    pub auth: String,
    /// The reply to `MAIL FROM`.
    pub mail: String,
    pub rcpt: ForRecipient<String>,
    pub data_end: ForRecipient<Answer>,
}

impl Default for Relay {
    fn default() -> Self {
        Self {
            greeting: "220 relay.test ESMTP".into(),
            extensions: vec!["8BITMIME".into(), "PIPELINING".into()],
            tls: None,
            implicit_tls: false,
            auth: "235 2.7.0 Authentication successful".into(),
            mail: "250 2.1.0 Ok".into(),
            rcpt: Arc::new(|_, _| "250 2.1.5 Ok".into()),
            data_end: Arc::new(|_, _| Answer::Reply("250 2.0.0 Ok: queued".into())),
        }
    }
}

/// A certificate authority made for the test and the server certificate it signed for
/// `localhost`; `ca_file` is the CA's PEM, for `smtp.ca_file`.
#[derive(Clone)]
pub struct TestCa {
    pub ca_file: PathBuf,
    config: Arc<rustls::ServerConfig>,
    _dir: Arc<tempfile::TempDir>,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lscp-mail test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server TLS config");
        Self {
            ca_file,
            config: Arc::new(config),
            _dir: Arc::new(dir),
        }
    }
}

/// What the client did, for the test to check.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// Every command line, in order, prefixed with its session's number.
    pub commands: Vec<(u32, String)>,
    /// Recipients whose message the server accepted, once per acceptance.
    pub accepted: Vec<String>,
    /// The messages accepted, as the server stores them (dots unstuffed, without the final
    /// `.` line), with their recipient.
    pub messages: Vec<(String, Vec<u8>)>,
    /// The commands that had arrived before the server replied to the one before them (a
    /// client pipelining, RFC 2920), prefixed with their session's number.
    pub pipelined: Vec<(u32, String)>,
    /// The message arriving, as far as it has come (dots unstuffed); emptied when it ends.
    pub arriving: Vec<u8>,
    pub sessions: u32,
}

pub struct ScriptedSmtp {
    pub port: u16,
    log: Arc<Mutex<Log>>,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedSmtp {
    pub async fn start(relay: Relay) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let log = Arc::new(Mutex::new(Log::default()));
        let down = Arc::new(AtomicBool::new(false));
        let relay = Arc::new(relay);
        let counts = Arc::new(Counts::default());
        let (l, d) = (log.clone(), down.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    // Down: the connection closes before any greeting.
                    drop(tcp);
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                let n = {
                    let mut log = l.lock().expect("log");
                    log.sessions += 1;
                    log.sessions
                };
                let session = Session {
                    n,
                    relay: relay.clone(),
                    log: l.clone(),
                    down: d.clone(),
                    counts: counts.clone(),
                };
                tokio::spawn(session.run(tcp));
            }
        });
        Self {
            port,
            log,
            down,
            task,
        }
    }

    /// `smtp://127.0.0.1:PORT`: plain, no login.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// `smtp://user:secret@localhost:PORT`: STARTTLS and a login.
    pub fn login_url(&self) -> String {
        format!(
            "smtp://newsletter%40example.org:secret@localhost:{}",
            self.port
        )
    }

    pub fn log(&self) -> Log {
        self.log.lock().expect("log").clone()
    }

    /// Drops every session at its next command and closes new connections at once (true), or
    /// serves again (false).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many commands of the session log start with `verb` (such as "MAIL FROM").
    pub fn count(&self, verb: &str) -> usize {
        self.log()
            .commands
            .iter()
            .filter(|(_, c)| c.to_ascii_uppercase().starts_with(verb))
            .count()
    }
}

impl Drop for ScriptedSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many times each address was offered at each step, across sessions.
#[derive(Default)]
struct Counts {
    rcpt: Mutex<HashMap<String, u32>>,
    data: Mutex<HashMap<String, u32>>,
}

fn bump(map: &Mutex<HashMap<String, u32>>, key: &str) -> u32 {
    let mut m = map.lock().expect("counts");
    let n = m.entry(key.to_string()).or_default();
    *n += 1;
    *n
}

struct Session {
    n: u32,
    relay: Arc<Relay>,
    log: Arc<Mutex<Log>>,
    down: Arc<AtomicBool>,
    counts: Arc<Counts>,
}

enum End {
    Closed,
    StartTls,
}

/// The address in `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_lowercase())
        .unwrap_or_default()
}

impl Session {
    async fn run(self, tcp: tokio::net::TcpStream) {
        if let (Some(ca), true) = (&self.relay.tls, self.relay.implicit_tls) {
            let acceptor = tokio_rustls::TlsAcceptor::from(ca.config.clone());
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut reader = BufReader::new(tls);
            if write(&mut reader, &self.relay.greeting).await.is_ok()
                && self.relay.greeting.starts_with('2')
            {
                self.converse(&mut reader, true).await;
            }
            return;
        }
        let mut reader = BufReader::new(tcp);
        if write(&mut reader, &self.relay.greeting).await.is_err()
            || !self.relay.greeting.starts_with('2')
        {
            return;
        }
        match self.converse(&mut reader, false).await {
            End::Closed => {}
            End::StartTls => {
                let Some(ca) = &self.relay.tls else { return };
                let acceptor = tokio_rustls::TlsAcceptor::from(ca.config.clone());
                let Ok(tls) = acceptor.accept(reader.into_inner()).await else {
                    return;
                };
                let mut reader = BufReader::new(tls);
                self.converse(&mut reader, true).await;
            }
        }
    }

    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
        secure: bool,
    ) -> End {
        let mut rcpt = String::new();
        let mut mail = false;
        loop {
            let waiting = io.buffer().contains(&b'\n');
            let mut line = String::new();
            match io.read_line(&mut line).await {
                Ok(0) | Err(_) => return End::Closed,
                Ok(_) => {}
            }
            if self.down.load(Ordering::SeqCst) {
                return End::Closed;
            }
            let line = line.trim_end().to_string();
            {
                let mut log = self.log.lock().expect("log");
                log.commands.push((self.n, line.clone()));
                if waiting {
                    log.pipelined.push((self.n, line.clone()));
                }
            }
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                let mut keywords = self.relay.extensions.clone();
                if self.relay.tls.is_some() && !secure {
                    keywords.push("STARTTLS".into());
                }
                let mut lines = vec!["250-relay.test".to_string()];
                for k in &keywords {
                    lines.push(format!("250-{k}"));
                }
                let last = lines.pop().unwrap_or_default().replacen("250-", "250 ", 1);
                lines.push(last);
                lines.join("\r\n")
            } else if upper == "STARTTLS" && self.relay.tls.is_some() && !secure {
                if write(io, "220 2.0.0 Ready to start TLS").await.is_err() {
                    return End::Closed;
                }
                return End::StartTls;
            } else if upper.starts_with("AUTH") {
                self.relay.auth.clone()
            } else if upper.starts_with("MAIL FROM") {
                let reply = if self.relay.tls.is_some() && !secure {
                    "530 5.7.0 Must issue a STARTTLS command first".into()
                } else {
                    self.relay.mail.clone()
                };
                mail = reply.starts_with('2');
                rcpt.clear();
                reply
            } else if !mail && (upper.starts_with("RCPT TO") || upper == "DATA") {
                // Postfix's replies to the commands a pipelining client sent after a refused
                // MAIL FROM.
                "503 5.5.1 Error: need MAIL command".into()
            } else if upper == "DATA" && rcpt.is_empty() {
                "554 5.5.1 Error: no valid recipients".into()
            } else if upper.starts_with("RCPT TO") {
                let to = address(&line);
                let n = bump(&self.counts.rcpt, &to);
                let reply = (self.relay.rcpt)(&to, n);
                if reply.starts_with('2') {
                    rcpt = to;
                }
                reply
            } else if upper == "DATA" {
                if write(io, "354 End data with <CR><LF>.<CR><LF>")
                    .await
                    .is_err()
                {
                    return End::Closed;
                }
                let n = bump(&self.counts.data, &rcpt);
                let answer = (self.relay.data_end)(&rcpt, n);
                let mut message = Vec::new();
                loop {
                    let mut body = Vec::new();
                    match io.read_until(b'\n', &mut body).await {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(_) => {}
                    }
                    if matches!(answer, Answer::Drop) {
                        // Mid-message: the client never hears back.
                        return End::Closed;
                    }
                    if body == b".\r\n" || body == b".\n" {
                        break;
                    }
                    // RFC 5321 4.5.2: a line's first dot was added by the client.
                    let unstuffed = body.strip_prefix(b".").unwrap_or(&body);
                    message.extend_from_slice(unstuffed);
                    self.log
                        .lock()
                        .expect("log")
                        .arriving
                        .extend_from_slice(unstuffed);
                }
                self.log.lock().expect("log").arriving.clear();
                // The transaction ends with the message, accepted or not.
                mail = false;
                let to = std::mem::take(&mut rcpt);
                let (wait, r) = match answer {
                    Answer::Reply(r) => (Duration::ZERO, r),
                    Answer::After(wait, r) => (wait, r),
                    Answer::Drop => return End::Closed,
                };
                tokio::time::sleep(wait).await;
                if r.starts_with('2') {
                    let mut log = self.log.lock().expect("log");
                    log.messages.push((to.clone(), message));
                    log.accepted.push(to);
                }
                r
            } else if upper == "RSET" {
                rcpt.clear();
                mail = false;
                "250 2.0.0 Ok".into()
            } else if upper == "QUIT" {
                let _ = write(io, "221 2.0.0 Bye").await;
                return End::Closed;
            } else if upper == "NOOP" {
                "250 2.0.0 Ok".into()
            } else {
                "502 5.5.2 Error: command not recognized".into()
            };
            let closes = reply.starts_with("421");
            if write(io, &reply).await.is_err() || closes {
                return End::Closed;
            }
        }
    }
}

async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    reply: &str,
) -> std::io::Result<()> {
    let s = io.get_mut();
    s.write_all(format!("{reply}\r\n").as_bytes()).await?;
    s.flush().await
}
