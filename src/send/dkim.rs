//! The DNS record that publishes the public half of the configured DKIM key, so that `doctor`
//! can print exactly what to publish.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;

use crate::config::{Dkim, DkimAlgorithm};

#[derive(Debug, thiserror::Error)]
pub enum DkimRecordError {
    #[error("cannot read the DKIM key file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key file {path} is not {expected}: {message}")]
    Key {
        path: String,
        expected: &'static str,
        message: String,
    },
}

/// Where the record goes (`<selector>._domainkey.<domain>`) and its TXT value.
pub fn dns_record(dkim: &Dkim) -> Result<(String, String), DkimRecordError> {
    let path = dkim.key_file.display().to_string();
    let text = std::fs::read_to_string(&dkim.key_file).map_err(|source| DkimRecordError::Read {
        path: path.clone(),
        source,
    })?;
    let bad = |expected, message: String| DkimRecordError::Key {
        path: path.clone(),
        expected,
        message,
    };
    let value = match dkim.algorithm {
        DkimAlgorithm::RsaSha256 => {
            const EXPECTED: &str = "a PEM RSA private key (BEGIN RSA PRIVATE KEY)";
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(text.trim())
                .map_err(|e| bad(EXPECTED, e.to_string()))?;
            let public = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| bad(EXPECTED, e.to_string()))?;
            format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(public.as_bytes()))
        }
        DkimAlgorithm::Ed25519Sha256 => {
            const EXPECTED: &str = "a base64 Ed25519 key of 32 bytes";
            let seed: [u8; 32] = STANDARD
                .decode(text.trim())
                .map_err(|e| bad(EXPECTED, e.to_string()))?
                .try_into()
                .map_err(|v: Vec<u8>| bad(EXPECTED, format!("it has {} bytes", v.len())))?;
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            format!(
                "v=DKIM1; k=ed25519; p={}",
                STANDARD.encode(public.as_bytes())
            )
        }
    };
    Ok((
        format!("{}._domainkey.{}", dkim.selector, dkim.domain),
        value,
    ))
}
