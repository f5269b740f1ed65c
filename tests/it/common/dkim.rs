//! DKIM for tests: keys made with `openssl`, and signatures checked with dkimpy (Debian's
//! `python3-dkim`, which scripts/test installs), the key's DNS record given directly.

use std::path::PathBuf;

/// A private key file and the DNS TXT record that publishes its public half.
pub struct TestKey {
    pub path: PathBuf,
    pub record: String,
    _dir: tempfile::TempDir,
}

/// Runs a shell command and returns its standard output.
pub fn sh(script: &str) -> Vec<u8> {
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key as `openssl genrsa ARGS 2048` writes it: PKCS#8 PEM (`BEGIN PRIVATE KEY`)
/// with OpenSSL 3's defaults, PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) with `-traditional`.
pub fn rsa_key(args: &str) -> TestKey {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dkim.pem");
    sh(&format!(
        "openssl genrsa {args} -out {} 2048 2>/dev/null",
        path.display()
    ));
    let public = sh(&format!(
        "openssl rsa -in {} -pubout -outform DER 2>/dev/null | base64 -w0",
        path.display()
    ));
    TestKey {
        path,
        record: format!("v=DKIM1; k=rsa; p={}", String::from_utf8_lossy(&public)),
        _dir: dir,
    }
}

/// An Ed25519 key as `openssl genpkey -algorithm ed25519` writes it (PKCS#8 PEM), or, with
/// `seed`, as the 32-byte seed in base64 (the last 32 bytes of the PKCS#8 DER).
pub fn ed25519_key(seed: bool) -> TestKey {
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = dir.path().join("ed25519.pem");
    sh(&format!(
        "openssl genpkey -algorithm ed25519 -out {} 2>/dev/null",
        pem.display()
    ));
    let path = if seed {
        let seed = sh(&format!(
            "openssl pkey -in {} -outform DER | tail -c 32 | base64 -w0",
            pem.display()
        ));
        let key = dir.path().join("dkim.key");
        std::fs::write(&key, &seed).expect("write key");
        key
    } else {
        pem.clone()
    };
    // The DNS record's key is the last 32 bytes of the public key's DER (RFC 8463).
    let public = sh(&format!(
        "openssl pkey -in {} -pubout -outform DER | tail -c 32 | base64 -w0",
        pem.display()
    ));
    TestKey {
        path,
        record: format!("v=DKIM1; k=ed25519; p={}", String::from_utf8_lossy(&public)),
        _dir: dir,
    }
}

/// The message as it went over the wire, from what smtp-sink dumped: CRLF line ends (smtp-sink
/// stores LF), without smtp-sink's own X- lines and Received header.
pub fn as_sent(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    text[text.find("From: ").expect("From header")..].to_string()
}

/// The message's DKIM-Signature header, unfolded and lower-cased.
pub fn signature(message: &str) -> String {
    let header = message
        .split("\r\n\r\n")
        .next()
        .expect("headers")
        .replace("\r\n\t", "")
        .replace("\r\n ", "");
    header
        .lines()
        .find(|l| l.starts_with("DKIM-Signature:"))
        .expect("a DKIM-Signature header")
        .to_ascii_lowercase()
}

/// Whether the message's DKIM signature verifies against `dns_record`.
pub fn verifies(message: &[u8], dns_record: &str) -> bool {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), message).expect("write");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import sys, dkim\n\
             msg = open(sys.argv[1], 'rb').read()\n\
             record = sys.argv[2].encode()\n\
             print(dkim.verify(msg, dnsfunc=lambda name, timeout=5: record))",
        )
        .arg(file.path())
        .arg(dns_record)
        .output()
        .expect("python3 with dkimpy runs (scripts/test installs python3-dkim)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}
