//! Every message the project sends is made here, by [`Outbox::message`]: our headers, the
//! body, and a DKIM signature when `[dkim]` is configured. The newsletter (`send`) and the
//! sign-up mails (`serve`) both go through it, so none leaves unsigned by a path of its own.

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, LineEnding};

use crate::config::{Config, Dkim, DkimAlgorithm, Mail};
use crate::render::message::{self, MessageError, build, mailbox, message_id};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("cannot read the DKIM key {path}: {message}")]
    DkimKey { path: String, message: String },
    #[error("`{0}` is not an email address a message can go to")]
    BadRecipient(String),
}

/// One message, ready for the SMTP conversation.
pub struct Outgoing {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    pub message_id: String,
}

/// What a message says.
pub enum Body {
    Text(String),
    /// Text and HTML, as `multipart/alternative`.
    Alternative {
        text: String,
        html: String,
    },
}

/// Our sender, headers and signature, for any message.
pub struct Outbox {
    mail: Mail,
    from: Mailbox,
    dkim: Option<DkimConfig>,
}

impl Outbox {
    /// Reads the DKIM key, when one is configured: a bad key stops the command before anything
    /// is sent.
    pub fn new(config: &Config) -> Result<Self, OutboxError> {
        Ok(Self {
            mail: config.mail.clone(),
            from: mailbox("mail.from", &config.mail.from)?,
            dkim: config.dkim.as_ref().map(dkim_config).transpose()?,
        })
    }

    /// The name the sender gives in SMTP's EHLO.
    pub fn hello_name(&self) -> &str {
        &self.mail.message_id_domain
    }

    /// The envelope sender (`MAIL FROM`): the address of `mail.from`.
    pub fn sender(&self) -> &lettre::Address {
        &self.from.email
    }

    /// The signed message to `to` (an address, and the name to show with it).
    pub fn message(
        &self,
        to: (&str, Option<&str>),
        subject: &str,
        headers: Vec<HeaderValue>,
        body: Body,
    ) -> Result<Outgoing, OutboxError> {
        let (to_address, to_name) = to;
        let address: lettre::Address = to_address
            .parse()
            .map_err(|_| OutboxError::BadRecipient(to_address.to_string()))?;
        // A name comes from our own records, checked when given; a line break would still end
        // the header, so none gets through whatever the record holds.
        let to = Mailbox::new(
            to_name.map(|n| n.replace(['\r', '\n'], " ")),
            address.clone(),
        );
        let id = message_id(&self.mail);
        let mut builder = build(&self.mail, subject, to, id.clone())?;
        for header in headers {
            builder = builder.raw_header(header);
        }
        let mut email = match body {
            Body::Text(text) => builder.header(ContentType::TEXT_PLAIN).body(text),
            Body::Alternative { text, html } => builder.multipart(message::body(text, html)),
        }
        .map_err(MessageError::from)?;
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        Ok(Outgoing {
            envelope: Envelope::new(Some(self.from.email.clone()), vec![address])
                .map_err(|_| OutboxError::BadRecipient(to_address.to_string()))?,
            bytes: email.formatted(),
            message_id: id,
        })
    }
}

/// A header of ours, such as `List-Id`.
pub fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

fn dkim_config(d: &Dkim) -> Result<DkimConfig, OutboxError> {
    let bad_key = |message: String| OutboxError::DkimKey {
        path: d.key_file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(&d.key_file).map_err(|e| bad_key(e.to_string()))?;
    let key = signing_key(&text, d.algorithm).map_err(bad_key)?;
    // Gmail and Yahoo honour one-click unsubscribe only when the List-Unsubscribe headers are
    // covered by the signature.
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Ok(DkimConfig::new(
        d.selector.clone(),
        d.domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// The key in any of the forms `openssl` writes: for RSA, PKCS#8 PEM (`BEGIN PRIVATE KEY`,
/// what OpenSSL 3's `genrsa` and `genpkey` write) or PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`,
/// `genrsa -traditional`); for Ed25519, PKCS#8 PEM (`genpkey -algorithm ed25519`) or the
/// 32-byte seed in base64. lettre reads only PKCS#1 and the seed, so the others are converted.
fn signing_key(text: &str, algorithm: DkimAlgorithm) -> Result<DkimSigningKey, String> {
    let text = text.trim();
    let pkcs8 = text.starts_with("-----BEGIN PRIVATE KEY-----");
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let key = if pkcs8 {
                RsaPrivateKey::from_pkcs8_pem(text)
                    .map_err(|e| format!("not an RSA key in PKCS#8 PEM: {e}"))?
            } else if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
                RsaPrivateKey::from_pkcs1_pem(text)
                    .map_err(|e| format!("not an RSA key in PKCS#1 PEM: {e}"))?
            } else {
                return Err(format!("not a PEM RSA private key; {KEY_FORMS}"));
            };
            let pkcs1 = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
            DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string())
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let seed = if pkcs8 {
                use base64::Engine;
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                    .map_err(|e| format!("not an Ed25519 key in PKCS#8 PEM: {e}"))?;
                base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
            } else {
                text.to_string()
            };
            DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| format!("{e}; {KEY_FORMS}"))
        }
    }
}

const KEY_FORMS: &str = "use a PEM key from `openssl genpkey -algorithm rsa` (rsa-sha256) or \
`openssl genpkey -algorithm ed25519` (ed25519-sha256); see DKIM in README.md";

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM key made by `openssl` with these arguments.
    fn openssl_key(args: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("openssl {args} 2>/dev/null"))
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args}");
        String::from_utf8(out.stdout).expect("PEM is text")
    }

    #[test]
    fn an_rsa_key_is_read_in_pkcs8_as_openssl_3_writes_it_and_in_pkcs1() {
        let pkcs8 = openssl_key("genrsa 2048");
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"), "{pkcs8}");
        let pkcs1 = openssl_key("genrsa -traditional 2048");
        assert!(
            pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            "{pkcs1}"
        );
        for pem in [pkcs8, pkcs1] {
            let key = signing_key(&pem, DkimAlgorithm::RsaSha256);
            assert!(key.is_ok(), "{:?}", key.err());
        }
    }

    #[test]
    fn an_ed25519_key_is_read_in_pkcs8_or_as_a_base64_seed() {
        let pkcs8 = openssl_key("genpkey -algorithm ed25519");
        assert!(signing_key(&pkcs8, DkimAlgorithm::Ed25519Sha256).is_ok());
        let seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
        assert!(signing_key(seed, DkimAlgorithm::Ed25519Sha256).is_ok());
    }

    #[test]
    fn a_key_of_the_wrong_kind_says_which_forms_are_read() {
        let ed = openssl_key("genpkey -algorithm ed25519");
        let e = signing_key(&ed, DkimAlgorithm::RsaSha256)
            .err()
            .unwrap_or_default();
        assert!(e.contains("PKCS#8"), "{e}");
        let e = signing_key("hello", DkimAlgorithm::RsaSha256)
            .err()
            .unwrap_or_default();
        assert!(e.contains("openssl genpkey"), "{e}");
    }
}
