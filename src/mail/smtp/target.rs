//! Where mail goes: the `SMTP_URL` (or `smtp.url`) parsed into host, port and TLS mode, the
//! credentials kept secret, and the extra CA `smtp.ca_file` names; the errors of setting it up.

use std::fmt;
use std::path::Path;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use tokio_rustls::TlsConnector;

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
    pub(super) credentials: Option<(String, SecretString)>,
    /// The extra CA certificates `smtp.ca_file` holds (none when it is not set).
    ca: Vec<CertificateDer<'static>>,
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
            ca: Vec::new(),
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
        let ca = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SmtpError::BadCaFile {
                path: shown,
                message: e.to_string(),
            })?;
        self.ca = ca;
        Ok(self)
    }

    /// Whether a user name and password are given (and so AUTH is required).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The TLS client for this target: the Mozilla roots (as lettre used) and the extra CA,
    /// TLS 1.2 or 1.3, with the name the server's certificate must carry.
    pub(super) fn tls(&self) -> Result<(TlsConnector, ServerName<'static>), String> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for ca in &self.ca {
            roots
                .add(ca.clone())
                .map_err(|e| format!("smtp.ca_file: {e}"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| format!("{}: {e}", self.host))?;
        Ok((TlsConnector::from(Arc::new(config)), name))
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
