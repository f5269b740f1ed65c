//! The open session: connecting (TCP with `TCP_NODELAY`, or TLS from the first byte), EHLO,
//! STARTTLS and AUTH, then each command of a transaction sent on its own under the time limit,
//! so that a failure knows its step and whether the session can go on.

use std::fmt;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::failure::{Reply, SmtpFailure, Stage};
use super::greeting::greeting;
use super::target::{Security, SmtpTarget};

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
