//! One SMTP connection per worker, opened by us so that `TCP_NODELAY` is set (lettre 0.11.23
//! does not, and the message body and its final `.` then stall ~40 ms on Nagle and delayed
//! ACK), with every exchange under a timeout (lettre's covers only connecting), and failures
//! sorted into temporary and permanent the way the ledger needs.

use std::fmt;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
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

/// Where mail goes, from `SMTP_URL` or `smtp.url`. Its `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<(String, SecretString)>,
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
    #[error("cannot connect to the mail server {target}: {message}")]
    Connect { target: String, message: String },
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
            shown,
        })
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

/// Why a message did not go, as the ledger needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A 4xx reply, a timeout or a broken connection: try again later on a fresh connection.
    Temporary(String),
    /// A 5xx reply: do not try again. `no_such_user` for a 5.1.x status: the address is dead.
    Permanent { reply: String, no_such_user: bool },
}

impl Failure {
    pub fn reply(&self) -> &str {
        match self {
            Self::Temporary(r) | Self::Permanent { reply: r, .. } => r,
        }
    }

    fn from_lettre(e: &lettre::transport::smtp::Error) -> Self {
        let reply = e.to_string();
        if e.is_permanent() {
            let no_such_user = enhanced_status(&reply).is_some_and(|c| c.starts_with("5.1."));
            Self::Permanent {
                reply,
                no_such_user,
            }
        } else {
            Self::Temporary(reply)
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
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let local = out.chars().rev().take_while(|&c| is_local_part(c)).count();
            let domain = chars[i + 1..]
                .iter()
                .take_while(|&&c| is_domain_part(c))
                .count();
            if local > 0 && domain > 0 {
                let keep = out.chars().count() - local;
                out = out.chars().take(keep).collect();
                out.push_str("[address]");
                i += 1 + domain;
                continue;
            }
        }
        if is_token_part(chars[i]) {
            let run = chars[i..].iter().take_while(|&&c| is_token_part(c)).count();
            let ends_at_at = chars.get(i + run) == Some(&'@');
            if run >= 22 && !ends_at_at {
                out.push_str("[token]");
                i += run;
                continue;
            }
            out.extend(&chars[i..i + run]);
            i += run;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// RFC 5322's atext and the dot, and any letter (internationalised addresses).
fn is_local_part(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

fn is_domain_part(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':')
}

fn is_token_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

/// An open SMTP session.
pub struct Connection {
    inner: AsyncSmtpConnection,
    limit: Duration,
}

impl Connection {
    pub async fn open(target: &SmtpTarget, hello: &str, limit: Duration) -> Result<Self, Failure> {
        let hello = ClientId::Domain(hello.to_string());
        let fail = |what: &str, e: String| Failure::Temporary(format!("{what} {target}: {e}"));
        let mut inner = match target.security {
            Security::Plain | Security::StartTls => {
                let tcp = timeout(
                    limit,
                    TcpStream::connect((target.host.as_str(), target.port)),
                )
                .await
                .map_err(|_| fail("timed out connecting to", "no answer".into()))?
                .map_err(|e| fail("cannot connect to", e.to_string()))?;
                tcp.set_nodelay(true)
                    .map_err(|e| fail("cannot set TCP_NODELAY for", e.to_string()))?;
                timeout(
                    limit,
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello),
                )
                .await
                .map_err(|_| fail("no greeting from", "timed out".into()))?
                .map_err(|e| Failure::from_lettre(&e))?
            }
            // lettre opens this socket itself, so TCP_NODELAY cannot be set before TLS: the
            // Nagle stall remains on smtps://; prefer smtp:// with STARTTLS on port 587.
            Security::Tls => {
                let tls = TlsParameters::new(target.host.clone())
                    .map_err(|e| fail("TLS set-up for", e.to_string()))?;
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
                .map_err(|_| fail("timed out connecting to", "no answer".into()))?
                .map_err(|e| Failure::from_lettre(&e))?
            }
        };
        if target.security == Security::StartTls {
            if !inner.can_starttls() {
                return Err(Failure::Permanent {
                    reply: format!(
                        "{target} does not offer STARTTLS; refusing to send a password or mail in clear"
                    ),
                    no_such_user: false,
                });
            }
            let tls = TlsParameters::new(target.host.clone())
                .map_err(|e| fail("TLS set-up for", e.to_string()))?;
            timeout(limit, inner.starttls(tls, &hello))
                .await
                .map_err(|_| fail("STARTTLS timed out with", String::new()))?
                .map_err(|e| Failure::from_lettre(&e))?;
        }
        if let Some((user, pass)) = &target.credentials {
            let creds = Credentials::new(user.clone(), pass.expose_secret().to_string());
            timeout(
                limit,
                inner.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
            )
            .await
            .map_err(|_| fail("login timed out with", String::new()))?
            .map_err(|e| Failure::from_lettre(&e))?;
        }
        Ok(Self { inner, limit })
    }

    /// Sends one message; `Ok` carries the server's acceptance, e.g. `250 2.0.0 Ok: queued as …`.
    pub async fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<String, Failure> {
        match timeout(self.limit, self.inner.send(envelope, message)).await {
            Err(_) => Err(Failure::Temporary(format!(
                "no answer from the mail server within {} s",
                self.limit.as_secs()
            ))),
            Ok(Err(e)) => Err(Failure::from_lettre(&e)),
            Ok(Ok(response)) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
        }
    }

    /// False once the session cannot be used again.
    pub fn is_usable(&self) -> bool {
        !self.inner.has_broken()
    }

    pub async fn quit(mut self) {
        let _ = timeout(Duration::from_secs(5), self.inner.quit()).await;
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
}
