//! An IMAP mailbox as a source: `imaps://user:pass@host/INBOX`, or `imap://` to 127.0.0.1 (plain,
//! for a local server). Messages are fetched with `BODY.PEEK[]`, so reading flags nothing; only
//! those that were processed are moved (UID MOVE) to the processed folder, and the rest stay as
//! they were. The password is never shown.

use std::fmt;
use std::sync::Arc;

use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::source::Item;

/// An IMAP mailbox named on the command line. `Display` and `Debug` hide the password.
#[derive(Clone)]
pub struct ImapSource {
    host: String,
    port: u16,
    tls: bool,
    user: String,
    password: SecretString,
    mailbox: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(
        "{0} is not a usable IMAP URL: write imaps://user:password@host/INBOX (or imap://… to 127.0.0.1)"
    )]
    BadUrl(String),
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("{target}: {what} failed: {message}")]
    Command {
        target: String,
        what: String,
        message: String,
    },
}

impl ImapSource {
    /// `Some` for an `imap://` or `imaps://` URL (then valid or an error), `None` for anything
    /// else.
    pub fn parse(arg: &str) -> Option<Result<Self, ImapError>> {
        let scheme = arg.split_once("://")?.0.to_ascii_lowercase();
        if scheme != "imap" && scheme != "imaps" {
            return None;
        }
        Some(Self::parse_url(arg))
    }

    fn parse_url(arg: &str) -> Result<Self, ImapError> {
        let shown = crate::config::redact_url(arg);
        let bad = || ImapError::BadUrl(shown.clone());
        let u = url::Url::parse(arg).map_err(|_| bad())?;
        let host = u
            .host_str()
            .ok_or_else(bad)?
            .trim_matches(['[', ']'])
            .to_string();
        let tls = u.scheme() == "imaps";
        // Plain IMAP only to this machine: a password is never sent in clear over a network.
        if !tls && !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
            return Err(bad());
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(u.username());
        if user.is_empty() {
            return Err(bad());
        }
        let mailbox = decode(u.path().trim_start_matches('/'));
        Ok(Self {
            port: u.port().unwrap_or(if tls { 993 } else { 143 }),
            host,
            tls,
            password: SecretString::from(decode(u.password().unwrap_or(""))),
            user,
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
        })
    }

    /// Where a message is, for the list of those left in place.
    pub fn origin(&self, uid: u32) -> String {
        format!("{self} UID {uid}")
    }
}

impl fmt::Display for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "imaps" } else { "imap" };
        write!(
            f,
            "{scheme}://{}@{}:{}/{}",
            self.user, self.host, self.port, self.mailbox
        )
    }
}

impl fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImapSource({self})")
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

/// A logged-in session with the mailbox selected.
pub struct Mailbox {
    session: Session<Box<dyn Io>>,
    source: ImapSource,
}

impl ImapSource {
    pub async fn open(&self) -> Result<Mailbox, ImapError> {
        let target = self.to_string();
        let connect = |message: String| ImapError::Connect {
            target: target.clone(),
            message,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| connect(e.to_string()))?;
        let stream: Box<dyn Io> = if self.tls {
            let roots = rustls_roots().map_err(|e| connect(format!("TLS set-up: {e}")))?;
            let name = rustls_pki_name(&self.host).map_err(connect)?;
            let tls = tokio_rustls::TlsConnector::from(roots)
                .connect(name, tcp)
                .await
                .map_err(|e| connect(format!("TLS: {e}")))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut client = Client::new(stream);
        client
            .read_response()
            .await
            .map_err(|e| connect(e.to_string()))?
            .ok_or_else(|| connect("no greeting".into()))?;
        let mut session = client
            .login(&self.user, self.password.expose_secret())
            .await
            .map_err(|(e, _)| self.failed("logging in", e))?;
        session
            .select(&self.mailbox)
            .await
            .map_err(|e| self.failed("selecting the mailbox", e))?;
        Ok(Mailbox {
            session,
            source: self.clone(),
        })
    }

    fn failed(&self, what: &str, e: async_imap::error::Error) -> ImapError {
        ImapError::Command {
            target: self.to_string(),
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

fn rustls_roots() -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    let roots = tokio_rustls::rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn rustls_pki_name(
    host: &str,
) -> Result<tokio_rustls::rustls::pki_types::ServerName<'static>, String> {
    tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))
}

impl Mailbox {
    /// Every message, in UID order, without setting `\Seen`.
    pub async fn messages(&mut self) -> Result<Vec<(u32, Item)>, ImapError> {
        let mut uids: Vec<u32> = self
            .session
            .uid_search("ALL")
            .await
            .map_err(|e| self.source.failed("searching", e))?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut out = Vec::new();
        for uid in uids {
            let fetches: Vec<_> = self
                .session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await
                .map_err(|e| self.source.failed("fetching", e))?
                .try_collect()
                .await
                .map_err(|e| self.source.failed("fetching", e))?;
            let body = fetches
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
                .map(<[u8]>::to_vec);
            out.push((
                uid,
                Item {
                    origin: self.source.origin(uid),
                    bytes: body.ok_or_else(|| "the server returned no body".to_string()),
                },
            ));
        }
        Ok(out)
    }

    /// Moves `uids` to `folder`, creating it when it does not exist.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        // An error here is usually "already exists"; a real problem shows in the move.
        let _ = self.session.create(folder).await;
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        self.session
            .uid_mv(set.join(","), folder)
            .await
            .map_err(|e| self.source.failed(&format!("moving to {folder}"), e))
    }

    pub async fn close(mut self) {
        let _ = self.session.logout().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_urls_are_read_and_never_show_the_password() {
        let s = ImapSource::parse("imaps://news%40leeds.gov.uk:s3cret@outlook.office365.com/INBOX")
            .expect("an IMAP URL")
            .expect("valid");
        assert_eq!(
            (s.port, s.tls, s.user.as_str()),
            (993, true, "news@leeds.gov.uk")
        );
        assert!(!s.to_string().contains("s3cret") && !format!("{s:?}").contains("s3cret"));
        let local = ImapSource::parse("imap://bounces:pw@127.0.0.1:1143/")
            .expect("an IMAP URL")
            .expect("valid");
        assert_eq!((local.port, local.mailbox.as_str()), (1143, "INBOX"));
        let err = ImapSource::parse("imap://user:s3cret@mail.example.org/INBOX")
            .expect("an IMAP URL")
            .expect_err("plain IMAP over a network is refused");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(ImapSource::parse("/var/mail/bounces").is_none());
    }
}
