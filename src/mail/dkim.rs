//! The configured DKIM key, read once in any form `openssl` writes: what the outbox signs with,
//! and the DNS record that publishes its public half (`doctor` prints it).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};

use crate::config::{Dkim, DkimAlgorithm};

#[derive(Debug, thiserror::Error)]
pub enum DkimKeyError {
    #[error("cannot read the DKIM key file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key file {path} is not usable: {message}")]
    Key { path: String, message: String },
}

/// A private key as `dkim.algorithm` says it is.
pub enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

const KEY_FORMS: &str = "use a PEM key from `openssl genpkey -algorithm rsa` (rsa-sha256) or \
`openssl genpkey -algorithm ed25519` (ed25519-sha256); see DKIM in docs/sending.md";

impl PrivateKey {
    /// The key in `dkim.key_file`: for RSA, PKCS#8 PEM (`BEGIN PRIVATE KEY`, what OpenSSL 3's
    /// `genrsa` and `genpkey` write) or PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, `genrsa
    /// -traditional`); for Ed25519, PKCS#8 PEM (`genpkey -algorithm ed25519`) or the 32-byte
    /// seed in base64.
    pub fn read(dkim: &Dkim) -> Result<Self, DkimKeyError> {
        let path = dkim.key_file.display().to_string();
        let text =
            std::fs::read_to_string(&dkim.key_file).map_err(|source| DkimKeyError::Read {
                path: path.clone(),
                source,
            })?;
        Self::parse(&text, dkim.algorithm).map_err(|message| DkimKeyError::Key { path, message })
    }

    fn parse(text: &str, algorithm: DkimAlgorithm) -> Result<Self, String> {
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
                Ok(Self::Rsa(Box::new(key)))
            }
            DkimAlgorithm::Ed25519Sha256 => {
                let key = if pkcs8 {
                    ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                        .map_err(|e| format!("not an Ed25519 key in PKCS#8 PEM: {e}"))?
                } else {
                    let seed: [u8; 32] = STANDARD
                        .decode(text)
                        .map_err(|e| format!("not a base64 Ed25519 seed ({e}); {KEY_FORMS}"))?
                        .try_into()
                        .map_err(|v: Vec<u8>| {
                            format!("an Ed25519 seed has 32 bytes, not {}; {KEY_FORMS}", v.len())
                        })?;
                    ed25519_dalek::SigningKey::from_bytes(&seed)
                };
                Ok(Self::Ed25519(Box::new(key)))
            }
        }
    }

    /// The key as lettre signs with it (lettre reads only PKCS#1 and the seed).
    pub fn signing_key(&self) -> Result<DkimSigningKey, String> {
        match self {
            Self::Rsa(key) => {
                let pkcs1 = key
                    .to_pkcs1_pem(LineEnding::LF)
                    .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
                DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string())
            }
            Self::Ed25519(key) => DkimSigningKey::new(
                &STANDARD.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            )
            .map_err(|e| e.to_string()),
        }
    }

    /// The TXT value that publishes the public half: `v=DKIM1; k=…; p=…`.
    pub fn dns_value(&self) -> Result<String, String> {
        Ok(match self {
            Self::Rsa(key) => {
                let public = key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| e.to_string())?;
                format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(public.as_bytes()))
            }
            Self::Ed25519(key) => format!(
                "v=DKIM1; k=ed25519; p={}",
                STANDARD.encode(key.verifying_key().as_bytes())
            ),
        })
    }
}

/// Where the record goes (`<selector>._domainkey.<domain>`) and its TXT value.
pub fn dns_record(dkim: &Dkim) -> Result<(String, String), DkimKeyError> {
    let key = PrivateKey::read(dkim)?;
    let value = key.dns_value().map_err(|message| DkimKeyError::Key {
        path: dkim.key_file.display().to_string(),
        message,
    })?;
    Ok((
        format!("{}._domainkey.{}", dkim.selector, dkim.domain),
        value,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signing_key(text: &str, algorithm: DkimAlgorithm) -> Result<DkimSigningKey, String> {
        PrivateKey::parse(text, algorithm)?.signing_key()
    }

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

    #[test]
    fn the_published_record_is_the_same_whichever_form_the_rsa_key_is_in() {
        let pkcs8 = openssl_key("genrsa 2048");
        let record = |pem: &str| {
            PrivateKey::parse(pem, DkimAlgorithm::RsaSha256)
                .and_then(|k| k.dns_value())
                .unwrap_or_default()
        };
        let from_pkcs8 = record(&pkcs8);
        assert!(
            from_pkcs8.starts_with("v=DKIM1; k=rsa; p=MII"),
            "{from_pkcs8}"
        );
        let key = RsaPrivateKey::from_pkcs8_pem(&pkcs8).expect("the key");
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("PKCS#1");
        assert_eq!(record(&pkcs1), from_pkcs8);
    }
}
