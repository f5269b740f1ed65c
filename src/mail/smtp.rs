//! One SMTP connection per worker, opened by us so that `TCP_NODELAY` is set (lettre 0.11.23
//! does not, and the message body and its final `.` then stall ~40 ms on Nagle and delayed
//! ACK), with every exchange under a timeout (lettre's covers only connecting). Each command
//! of a transaction is sent on its own so that a failure knows where it happened (the session,
//! one recipient, one message) and keeps the server's reply code and enhanced status: only a
//! fact about one reader may change that reader's record.

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::redact_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://host:port` to 127.0.0.1 or ::1 with no password: a local relay or test server.
    Plain,
    /// `smtp://` to anywhere else: STARTTLS is required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// Where mail goes, from `SMTP_URL` or `smtp.url`, and the extra CA a private relay's
/// certificate is signed by (`smtp.ca_file`). Its `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<(String, SecretString)>,
    ca: Option<Certificate>,
    shown: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error(
        "no mail server is configured: set SMTP_URL or `url` in the [smtp] section of lscp-mail.toml, such as smtp://127.0.0.1:2525"
    )]
    NotConfigured,
    #[error(
        "the SMTP URL {0} is not valid: use smtp://user:pass@host:587, smtps://user:pass@host:465 or smtp://127.0.0.1:2525"
    )]
    BadUrl(String),
    #[error("cannot read smtp.ca_file {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("smtp.ca_file {path} holds no PEM certificate: {message}")]
    BadCaFile { path: String, message: String },
}

impl SmtpTarget {
    pub fn parse(url: &SecretString) -> Result<Self, SmtpError> {
        let raw = url.expose_secret();
        let shown = redact_url(raw);
        let bad = || SmtpError::BadUrl(shown.clone());
        let u = url::Url::parse(raw).map_err(|_| bad())?;
        let host = u
            .host_str()
            .ok_or_else(bad)?
            .trim_matches(['[', ']'])
            .to_string();
        let local = matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1");
        let credentials = if u.username().is_empty() {
            None
        } else {
            let user = percent_encoding::percent_decode_str(u.username())
                .decode_utf8_lossy()
                .into_owned();
            let pass = percent_encoding::percent_decode_str(u.password().unwrap_or(""))
                .decode_utf8_lossy()
                .into_owned();
            Some((user, SecretString::from(pass)))
        };
        let (security, default_port) = match u.scheme() {
            "smtps" => (Security::Tls, 465),
            "smtp" if local && credentials.is_none() => (Security::Plain, 25),
            "smtp" => (Security::StartTls, 587),
            _ => return Err(bad()),
        };
        Ok(Self {
            port: u.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            ca: None,
            shown,
        })
    }

    /// The target the settings name: `smtp.url` (or `SMTP_URL`), trusting `smtp.ca_file` too.
    pub fn from_config(smtp: &crate::config::Smtp) -> Result<Self, SmtpError> {
        let url = smtp.url.as_ref().ok_or(SmtpError::NotConfigured)?;
        let target = Self::parse(url)?;
        match &smtp.ca_file {
            Some(path) => target.trusting(path),
            None => Ok(target),
        }
    }

    /// Also trusts the CA certificate(s) in the PEM file at `path`, for a relay whose
    /// certificate a private CA signed.
    pub fn trusting(mut self, path: &Path) -> Result<Self, SmtpError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| SmtpError::CaFile {
            path: shown.clone(),
            source,
        })?;
        let ca = Certificate::from_pem(&pem).map_err(|e| SmtpError::BadCaFile {
            path: shown,
            message: e.to_string(),
        })?;
        self.ca = Some(ca);
        Ok(self)
    }

    /// Whether a user name and password are given (and so AUTH is required).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    fn tls(&self) -> Result<TlsParameters, lettre::transport::smtp::Error> {
        let mut b = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.ca {
            b = b.add_root_certificate(ca.clone());
        }
        b.build_rustls()
    }
}

impl fmt::Display for SmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpTarget({})", self.shown)
    }
}

/// The step of the SMTP conversation a failure happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    /// The `DATA` command itself (before the message is sent).
    Data,
    /// The reply after the message's final dot.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::StartTls => "STARTTLS",
            Self::Auth => "AUTH",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "end of DATA",
        })
    }
}

/// Whom a failure is about, which decides whose record it may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The connection, the login, the sender, or the server's state (a 421, a rate limit):
    /// not a fact about any reader.
    Session,
    /// The reply to `RCPT TO`: about this reader's address.
    Recipient,
    /// The reply to `DATA` or after the message: about this message.
    Message,
}

/// A server's reply: its code, the RFC 3463 enhanced status if it gave one, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: &str) -> Self {
        Self {
            code,
            enhanced: enhanced_status(text).map(str::to_string),
            text: text.trim().to_string(),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a message (or a session) did not go: where, whether it may work later, and the
/// server's reply when there was one (none for a refused connection, a timeout, a drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    pub stage: Stage,
    pub permanent: bool,
    pub reply: Option<Reply>,
    /// What went wrong when the server gave no reply (a network error, a timeout, a missing
    /// extension).
    pub cause: String,
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind(), self.stage, self.detail())
    }
}

impl std::error::Error for SmtpFailure {}

/// Enhanced codes that say an address does not exist (or no longer takes mail): RFC 3463's
/// 5.1.1 bad mailbox, 5.1.6 moved, 5.1.10 null MX, 5.2.1 disabled.
const NO_SUCH_MAILBOX: [&str; 4] = ["5.1.1", "5.1.6", "5.1.10", "5.2.1"];

/// Without an enhanced code, a 550 or 553 is a dead address only when its text says so: a bare
/// 550 is as often a policy refusal ("relay denied", "spam"), which is not the reader's fault.
/// RFC 5321's stock 550 text, "mailbox unavailable", is not among them: servers give it for
/// blocklisted senders too.
const NO_SUCH_MAILBOX_WORDS: [&str; 8] = [
    "no such user",
    "user unknown",
    "unknown user",
    "no such mailbox",
    "mailbox not found",
    "does not exist",
    "invalid recipient",
    "recipient not found",
];

/// Enhanced codes that are about the sender or the login, wherever they come (Postfix checks
/// the sender at `RCPT TO`): 5.1.7/5.1.8 bad sender, 5.7.57/5.7.8 not authenticated.
const ABOUT_THE_SENDER: [&str; 6] = ["5.1.7", "5.1.8", "5.7.57", "5.7.8", "4.1.8", "4.7.57"];

/// Enhanced codes of servers asking us to slow down: Microsoft 365's 4.4.2 submission rate and
/// 4.3.2 thread limit, 4.5.3 too many recipients, Gmail's 4.7.28 and 4.7.0 rate limits.
const RATE_COMPLAINTS: [&str; 5] = ["4.4.2", "4.3.2", "4.5.3", "4.7.28", "4.7.0"];

impl SmtpFailure {
    fn replied(stage: Stage, reply: Reply) -> Self {
        Self {
            stage,
            permanent: reply.code >= 500,
            reply: Some(reply),
            cause: String::new(),
        }
    }

    fn temporary(stage: Stage, cause: impl Into<String>) -> Self {
        Self {
            stage,
            permanent: false,
            reply: None,
            cause: cause.into(),
        }
    }

    fn permanent(stage: Stage, cause: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::temporary(stage, cause)
        }
    }

    fn from_lettre(stage: Stage, e: &lettre::transport::smtp::Error) -> Self {
        if let Some(code) = e.status() {
            // lettre keeps the code typed but the reply's text only as the error's source.
            let text = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Self::replied(stage, Reply::new(u16::from(code), &text));
        }
        // A certificate we do not trust, or a client-side impossibility (no common AUTH
        // mechanism): the settings must change, waiting will not help. (rustls's verdict on
        // the certificate reaches us as a connection error with its words.)
        let text = e.to_string();
        if e.is_tls() || e.is_client() || text.contains("certificate") {
            Self::permanent(stage, text)
        } else {
            Self::temporary(stage, text)
        }
    }

    fn kind(&self) -> &'static str {
        if self.permanent {
            "refused"
        } else {
            "failed for now"
        }
    }

    /// The server's reply, or what went wrong without one.
    pub fn detail(&self) -> String {
        match &self.reply {
            Some(r) => r.to_string(),
            None => self.cause.clone(),
        }
    }

    pub fn code(&self) -> Option<u16> {
        self.reply.as_ref().map(|r| r.code)
    }

    pub fn enhanced(&self) -> Option<&str> {
        self.reply.as_ref().and_then(|r| r.enhanced.as_deref())
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub fn is_transient(&self) -> bool {
        !self.permanent
    }

    /// Whom this failure is about. Everything before `RCPT TO`, every dropped connection or
    /// timeout, a 421 anywhere, a refusal of the sender or the login anywhere, and a server
    /// asking us to slow down are the session's; otherwise the reply to `RCPT TO` is the
    /// recipient's and the reply to `DATA` or the message is the message's.
    pub fn scope(&self) -> Scope {
        match self.stage {
            Stage::Connect
            | Stage::Greeting
            | Stage::Ehlo
            | Stage::StartTls
            | Stage::Auth
            | Stage::MailFrom => Scope::Session,
            Stage::RcptTo | Stage::Data | Stage::Message => {
                let Some(reply) = &self.reply else {
                    return Scope::Session;
                };
                let enhanced = reply.enhanced.as_deref();
                // 4.7.1 to RCPT TO is what most greylisting answers ("451 4.7.1 Try again
                // later"): the reader's, counted. Other 4.3.x, 4.4.x and 4.7.x are the server's.
                let greylisting = self.stage == Stage::RcptTo && enhanced == Some("4.7.1");
                let server_state = !self.permanent
                    && !greylisting
                    && enhanced.is_some_and(|e| {
                        e.starts_with("4.3.") || e.starts_with("4.4.") || e.starts_with("4.7.")
                    });
                if matches!(reply.code, 421 | 530 | 535)
                    || enhanced.is_some_and(|e| ABOUT_THE_SENDER.contains(&e))
                    || server_state
                    || self.is_rate_complaint()
                {
                    Scope::Session
                } else if self.stage == Stage::RcptTo {
                    Scope::Recipient
                } else {
                    Scope::Message
                }
            }
        }
    }

    /// A permanent refusal of the recipient saying the mailbox does not exist: the one failure
    /// that marks a subscriber bounced.
    pub fn is_no_such_mailbox(&self) -> bool {
        let Some(reply) = &self.reply else {
            return false;
        };
        if !self.permanent || self.scope() != Scope::Recipient {
            return false;
        }
        match reply.enhanced.as_deref() {
            Some(e) => NO_SUCH_MAILBOX.contains(&e),
            // 551 "user not local" names the address as gone; 550 and 553 only with words.
            None => {
                let text = reply.text.to_lowercase();
                reply.code == 551
                    || (matches!(reply.code, 550 | 553)
                        && NO_SUCH_MAILBOX_WORDS.iter().any(|w| text.contains(w)))
            }
        }
    }

    /// A temporary reply asking us to send more slowly.
    pub fn is_rate_complaint(&self) -> bool {
        let Some(reply) = &self.reply else {
            return false;
        };
        if self.permanent {
            return false;
        }
        if reply
            .enhanced
            .as_deref()
            .is_some_and(|e| RATE_COMPLAINTS.contains(&e))
        {
            return true;
        }
        let text = reply.text.to_lowercase();
        ["too many", "rate limit", "exceeded", "slow down", "throttl"]
            .iter()
            .any(|w| text.contains(w))
    }

    /// The same refusal as `other`: the same step, code and enhanced status.
    pub fn same_as(&self, other: &Self) -> bool {
        self.stage == other.stage
            && self.code() == other.code()
            && self.enhanced() == other.enhanced()
    }

    /// The setting most likely at fault when the session is refused for good.
    pub fn suspect(&self) -> &'static str {
        let enhanced = self.enhanced().unwrap_or("");
        if self.stage == Stage::Auth
            || matches!(self.code(), Some(530 | 535))
            || matches!(enhanced, "5.7.57" | "5.7.8" | "5.7.3")
        {
            "the user name and password in SMTP_URL (smtp.url): the server refused the login, or requires one"
        } else if self.stage == Stage::MailFrom || matches!(enhanced, "5.1.7" | "5.1.8") {
            "mail.from: the server does not let this account send as that address"
        } else if self.stage == Stage::StartTls {
            "the TLS mode: SMTP_URL's scheme (smtp:// uses STARTTLS, smtps:// TLS from the first byte), and smtp.ca_file for a relay with a private CA"
        } else if matches!(self.stage, Stage::Connect | Stage::Greeting | Stage::Ehlo) {
            "the host and port in SMTP_URL (smtp.url)"
        } else {
            "the server's reply above"
        }
    }
}

/// The RFC 3463 enhanced status code in a reply, such as `5.1.1` (no such mailbox).
pub fn enhanced_status(reply: &str) -> Option<&str> {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | ','))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
        })
}

/// `text` (an SMTP reply, or an error that may quote one) with every email address and every
/// link token taken out, for logs: servers quote the recipient (`550 5.1.1 <ann@example.org>:
/// Recipient address rejected`), and a token in a quoted link would let anyone act for them.
/// An address is what surrounds an `@`; a token is a run of 22 or more URL-safe base64
/// characters (a 128-bit random value; ours are longer), which no SMTP status code or word is.
pub fn redact(text: &str) -> String {
    let text = crate::store::redact_addresses(text);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        out.push_str(if run.len() >= 22 { "[token]" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if is_token_part(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn is_token_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

/// The TCP stream after we read the greeting ourselves (so that a refusal there is told from
/// one to EHLO), giving those bytes again to lettre, which reads the greeting first.
#[derive(Debug)]
struct Replay {
    head: Vec<u8>,
    at: usize,
    tcp: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Replay {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }
}

/// Reads the server's greeting (every line of it) and hands back the stream to replay it from.
async fn greeting(tcp: TcpStream, limit: Duration) -> Result<Replay, SmtpFailure> {
    let mut reader = BufReader::new(tcp);
    let mut head = String::new();
    let lost = |e: String| SmtpFailure::temporary(Stage::Greeting, e);
    loop {
        let before = head.len();
        let n = timeout(limit, reader.read_line(&mut head))
            .await
            .map_err(|_| lost(format!("no greeting within {} s", limit.as_secs())))?
            .map_err(|e| lost(e.to_string()))?;
        if n == 0 {
            return Err(lost(
                "the server closed the connection before greeting".into(),
            ));
        }
        let line = head[before..].trim_end();
        // The last line of a reply has a space (or nothing) after its code; others a dash.
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
        if head.len() > 100_000 {
            return Err(lost("the greeting is too long".into()));
        }
    }
    let code: u16 = head.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
    if !(200..300).contains(&code) {
        let text: Vec<&str> = head
            .lines()
            .map(|l| l.get(4..).unwrap_or("").trim())
            .collect();
        let reply = Reply::new(if code >= 400 { code } else { 554 }, &text.join(" "));
        return Err(SmtpFailure::replied(Stage::Greeting, reply));
    }
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(reader.buffer());
    Ok(Replay {
        head: bytes,
        at: 0,
        tcp: reader.into_inner(),
    })
}

/// An open SMTP session.
pub struct Connection {
    inner: AsyncSmtpConnection,
    limit: Duration,
    broken: bool,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS when the target wants
    /// it, and logs in when it has credentials.
    pub async fn open(
        target: &SmtpTarget,
        hello: &str,
        limit: Duration,
    ) -> Result<Self, SmtpFailure> {
        let hello = ClientId::Domain(hello.to_string());
        let secs = limit.as_secs();
        let mut inner = match target.security {
            Security::Plain | Security::StartTls => {
                let tcp = timeout(
                    limit,
                    TcpStream::connect((target.host.as_str(), target.port)),
                )
                .await
                .map_err(|_| {
                    SmtpFailure::temporary(Stage::Connect, format!("no answer within {secs} s"))
                })?
                .map_err(|e| SmtpFailure::temporary(Stage::Connect, e.to_string()))?;
                tcp.set_nodelay(true)
                    .map_err(|e| SmtpFailure::temporary(Stage::Connect, e.to_string()))?;
                let stream = greeting(tcp, limit).await?;
                timeout(
                    limit,
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello),
                )
                .await
                .map_err(|_| {
                    SmtpFailure::temporary(Stage::Ehlo, format!("no reply within {secs} s"))
                })?
                .map_err(|e| SmtpFailure::from_lettre(Stage::Ehlo, &e))?
            }
            // lettre opens this socket itself, so TCP_NODELAY cannot be set before TLS (the
            // Nagle stall remains on smtps://; prefer smtp:// with STARTTLS on port 587), and a
            // refusal in the greeting cannot be told from one to EHLO.
            Security::Tls => {
                let tls = target
                    .tls()
                    .map_err(|e| SmtpFailure::permanent(Stage::Connect, e.to_string()))?;
                timeout(
                    limit,
                    AsyncSmtpConnection::connect_tokio1(
                        (target.host.as_str(), target.port),
                        Some(limit),
                        &hello,
                        Some(tls),
                        None,
                    ),
                )
                .await
                .map_err(|_| {
                    SmtpFailure::temporary(Stage::Connect, format!("no answer within {secs} s"))
                })?
                .map_err(|e| {
                    let stage = if e.status().is_some() {
                        Stage::Greeting
                    } else {
                        Stage::Connect
                    };
                    SmtpFailure::from_lettre(stage, &e)
                })?
            }
        };
        if target.security == Security::StartTls {
            if !inner.can_starttls() {
                return Err(SmtpFailure::permanent(
                    Stage::StartTls,
                    format!(
                        "{target} does not offer STARTTLS; refusing to send a password or mail in clear"
                    ),
                ));
            }
            let tls = target
                .tls()
                .map_err(|e| SmtpFailure::permanent(Stage::StartTls, e.to_string()))?;
            timeout(limit, inner.starttls(tls, &hello))
                .await
                .map_err(|_| {
                    SmtpFailure::temporary(Stage::StartTls, format!("no reply within {secs} s"))
                })?
                .map_err(|e| SmtpFailure::from_lettre(Stage::StartTls, &e))?;
        }
        if let Some((user, pass)) = &target.credentials {
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            if inner
                .server_info()
                .get_auth_mechanism(&mechanisms)
                .is_none()
            {
                return Err(SmtpFailure::permanent(
                    Stage::Auth,
                    format!(
                        "SMTP_URL gives a user name and password but {target} offers no AUTH PLAIN or LOGIN (after STARTTLS, when used)"
                    ),
                ));
            }
            let creds = Credentials::new(user.clone(), pass.expose_secret().to_string());
            timeout(limit, inner.auth(&mechanisms, &creds))
                .await
                .map_err(|_| {
                    SmtpFailure::temporary(Stage::Auth, format!("no reply within {secs} s"))
                })?
                .map_err(|e| SmtpFailure::from_lettre(Stage::Auth, &e))?;
        }
        Ok(Self {
            inner,
            limit,
            broken: false,
        })
    }

    /// One command under the time limit; a timeout or a dropped connection leaves the session
    /// unusable.
    async fn step(
        &mut self,
        stage: Stage,
        command: impl fmt::Display,
    ) -> Result<lettre::transport::smtp::response::Response, SmtpFailure> {
        let result = match timeout(self.limit, self.inner.command(command)).await {
            Err(_) => Err(SmtpFailure::temporary(
                stage,
                format!("no reply within {} s", self.limit.as_secs()),
            )),
            Ok(r) => r.map_err(|e| SmtpFailure::from_lettre(stage, &e)),
        };
        if let Err(f) = &result
            && (f.reply.is_none() || f.code() == Some(421))
        {
            self.broken = true;
        }
        result
    }

    /// Ends a refused transaction so that the session can carry on with the next reader.
    async fn reset(&mut self) {
        if !self.broken && self.step(Stage::MailFrom, Rset).await.is_err() {
            self.broken = true;
        }
    }

    /// Sends one message; `Ok` carries the server's acceptance, e.g. `250 2.0.0 Ok: queued as …`.
    /// A refused recipient or `DATA` resets the transaction; the session stays open.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, SmtpFailure> {
        let info = self.inner.server_info();
        let mut params = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                // The reader's address, refused for them alone, as a server would refuse it:
                // no other reader's delivery depends on it.
                return Err(SmtpFailure::replied(
                    Stage::RcptTo,
                    Reply::new(
                        553,
                        "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
                    ),
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(SmtpFailure::replied(
                    Stage::Message,
                    Reply::new(
                        554,
                        "5.6.3 the message has 8-bit characters and the server does not support 8BITMIME",
                    ),
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        self.step(Stage::MailFrom, Mail::new(envelope.from().cloned(), params))
            .await?;
        for to in envelope.to() {
            if let Err(f) = self
                .step(Stage::RcptTo, Rcpt::new(to.clone(), vec![]))
                .await
            {
                self.reset().await;
                return Err(f);
            }
        }
        if let Err(f) = self.step(Stage::Data, Data).await {
            self.reset().await;
            return Err(f);
        }
        let sent = match timeout(self.limit, self.inner.message(message)).await {
            Err(_) => Err(SmtpFailure::temporary(
                Stage::Message,
                format!("no reply within {} s", self.limit.as_secs()),
            )),
            Ok(r) => r.map_err(|e| SmtpFailure::from_lettre(Stage::Message, &e)),
        };
        match sent {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(f) => {
                if f.reply.is_none() || f.code() == Some(421) {
                    self.broken = true;
                }
                Err(f)
            }
        }
    }

    /// `MAIL FROM` of the envelope sender, then `RSET`: whether the server takes mail from us,
    /// without sending any.
    pub async fn try_sender(&mut self, from: Option<&Address>) -> Result<(), SmtpFailure> {
        self.step(Stage::MailFrom, Mail::new(from.cloned(), vec![]))
            .await?;
        self.step(Stage::MailFrom, Rset).await?;
        Ok(())
    }

    /// False once the session cannot be used again.
    pub fn is_usable(&self) -> bool {
        !self.broken && !self.inner.has_broken()
    }

    pub async fn quit(mut self) {
        if self.is_usable() {
            let _ = timeout(Duration::from_secs(5), self.inner.quit()).await;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> SmtpTarget {
        SmtpTarget::parse(&SecretString::from(url.to_string())).expect("valid SMTP URL")
    }

    #[test]
    fn smtp_urls_choose_plain_starttls_or_tls() {
        let local = target("smtp://127.0.0.1:2525");
        assert_eq!((local.security, local.port), (Security::Plain, 2525));
        let relay = target("smtp://news%40leeds.gov.uk:p%40ss@smtp.office365.com:587");
        assert_eq!((relay.security, relay.port), (Security::StartTls, 587));
        assert_eq!(
            relay.credentials.as_ref().map(|c| c.0.as_str()),
            Some("news@leeds.gov.uk")
        );
        let tls = target("smtps://user:pass@mail.example.org");
        assert_eq!((tls.security, tls.port), (Security::Tls, 465));
        assert!(SmtpTarget::parse(&SecretString::from("http://x".to_string())).is_err());
    }

    #[test]
    fn the_enhanced_status_code_is_found_in_a_reply() {
        assert_eq!(
            enhanced_status(
                "permanent error (550): 5.1.1 <ben@example.org>: Recipient address rejected"
            ),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status("451 4.7.1 Try again later"), Some("4.7.1"));
        assert_eq!(enhanced_status("550 Mailbox unavailable"), None);
        assert_eq!(enhanced_status("version 1.2.3 of something"), None);
    }

    fn replied(stage: Stage, code: u16, text: &str) -> SmtpFailure {
        SmtpFailure::replied(stage, Reply::new(code, text))
    }

    #[test]
    fn refusals_of_the_login_or_the_sender_are_the_sessions_wherever_they_come() {
        let cases = [
            replied(Stage::Auth, 535, "5.7.3 Authentication unsuccessful"),
            replied(
                Stage::MailFrom,
                530,
                "5.7.57 Client not authenticated to send mail",
            ),
            replied(
                Stage::MailFrom,
                550,
                "5.1.8 Access denied, bad outbound sender",
            ),
            // Postfix checks the sender when the recipient is given.
            replied(
                Stage::RcptTo,
                550,
                "5.1.8 <news@x>: Sender address rejected",
            ),
            replied(Stage::Greeting, 554, "5.7.1 Service unavailable"),
        ];
        for f in cases {
            assert_eq!((f.scope(), f.is_permanent()), (Scope::Session, true), "{f}");
            assert!(!f.is_no_such_mailbox(), "{f}");
        }
        let login = replied(Stage::Auth, 535, "5.7.3 Authentication unsuccessful");
        assert!(login.suspect().contains("SMTP_URL"));
        let sender = replied(
            Stage::MailFrom,
            550,
            "5.1.8 Access denied, bad outbound sender",
        );
        assert!(sender.suspect().contains("mail.from"));
    }

    #[test]
    fn a_421_or_a_complaint_of_our_rate_is_the_sessions_and_temporary() {
        for f in [
            replied(
                Stage::Message,
                421,
                "4.7.28 Gmail has detected an unusual rate",
            ),
            replied(Stage::RcptTo, 452, "4.5.3 Too many recipients"),
            replied(
                Stage::RcptTo,
                450,
                "4.4.2 Message submission rate for this client has exceeded the configured limit",
            ),
            replied(
                Stage::Message,
                432,
                "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
            ),
            SmtpFailure::temporary(Stage::Message, "network error: connection reset"),
        ] {
            assert_eq!(
                (f.scope(), f.is_permanent()),
                (Scope::Session, false),
                "{f}"
            );
        }
        assert!(replied(Stage::RcptTo, 452, "4.5.3 Too many recipients").is_rate_complaint());
        assert!(!replied(Stage::RcptTo, 450, "4.2.0 Greylisted").is_rate_complaint());
    }

    #[test]
    fn greylisting_is_the_recipients_and_temporary() {
        for f in [
            replied(
                Stage::RcptTo,
                450,
                "4.2.0 <ann@x>: Recipient address rejected: Greylisted",
            ),
            replied(Stage::RcptTo, 451, "Try again later"),
            replied(
                Stage::RcptTo,
                451,
                "4.7.1 Greylisting in action, please come back later",
            ),
        ] {
            assert_eq!(
                (f.scope(), f.is_permanent()),
                (Scope::Recipient, false),
                "{f}"
            );
        }
    }

    #[test]
    fn only_a_dead_mailbox_bounces() {
        let bounces = [
            replied(
                Stage::RcptTo,
                550,
                "5.1.1 <ben@x>: Recipient address rejected: User unknown",
            ),
            replied(Stage::RcptTo, 550, "5.1.10 RESOLVER.ADR.RecipientNotFound"),
            replied(Stage::RcptTo, 550, "5.2.1 Mailbox disabled"),
            replied(Stage::RcptTo, 550, "No such user here"),
            replied(Stage::RcptTo, 551, "User not local"),
        ];
        for f in bounces {
            assert!(f.is_no_such_mailbox(), "{f}");
        }
        let not = [
            replied(Stage::RcptTo, 554, "5.7.1 Relay access denied"),
            replied(Stage::RcptTo, 550, "Rejected by policy"),
            replied(
                Stage::RcptTo,
                550,
                "Requested action not taken: mailbox unavailable (blocked using zen.spamhaus.org)",
            ),
            replied(
                Stage::RcptTo,
                553,
                "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
            ),
            replied(
                Stage::Message,
                550,
                "5.7.26 Unauthenticated email is not accepted",
            ),
            replied(
                Stage::Message,
                550,
                "5.1.1 looks like a bounce but comes after DATA",
            ),
            replied(Stage::MailFrom, 550, "5.1.1 sender unknown"),
        ];
        for f in not {
            assert!(!f.is_no_such_mailbox(), "{f}");
        }
        let dmarc = replied(
            Stage::Message,
            550,
            "5.7.26 Unauthenticated email is not accepted",
        );
        assert_eq!(
            (dmarc.scope(), dmarc.is_permanent()),
            (Scope::Message, true)
        );
    }

    #[test]
    fn a_redacted_reply_keeps_the_codes_and_loses_addresses_and_tokens() {
        assert_eq!(
            redact(
                "permanent error (550): 5.1.1 <Gone.Person+news@example.org>: Recipient \
                 address rejected: User unknown in virtual mailbox table"
            ),
            "permanent error (550): 5.1.1 <[address]>: Recipient address rejected: User \
             unknown in virtual mailbox table"
        );
        assert_eq!(
            redact(
                "452 4.2.2 élise@exemple.fr over quota; see https://x.example/p/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            ),
            "452 4.2.2 [address] over quota; see https://x.example/p/[token]"
        );
        assert_eq!(
            redact("250 2.0.0 Ok: queued as 4dLq3x1Zb9z2"),
            "250 2.0.0 Ok: queued as 4dLq3x1Zb9z2"
        );
        assert_eq!(
            redact("bob@[192.168.1.1] and @ alone"),
            "[address] and @ alone"
        );
    }

    #[test]
    fn the_password_is_never_shown() {
        let t = target("smtp://user:hunter2@smtp.example.org:587");
        assert!(!t.to_string().contains("hunter2"));
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn an_address_the_server_cannot_carry_is_that_readers_refusal_not_the_sessions() {
        let f = replied(
            Stage::RcptTo,
            553,
            "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
        );
        assert_eq!(f.scope(), Scope::Recipient);
        assert!(f.is_permanent());
        assert!(!f.is_no_such_mailbox());
        let eight_bit = replied(
            Stage::Message,
            554,
            "5.6.3 the message has 8-bit characters and the server does not support 8BITMIME",
        );
        assert_eq!(eight_bit.scope(), Scope::Message);
    }
}
