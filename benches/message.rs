//! What making one reader's message costs, in-process, and how much of it DKIM signing is.
//!
//! For `issues/2026-02` (its "training" variant, about 50 KB), with the built-in templates:
//!
//! - `message/builder`: the message built from scratch, MIME encoding and all, as every
//!   message was before variants were encoded once (`Personaliser::message_by_builder`);
//! - `message/unsigned`, `message/rsa-2048`, `message/ed25519`: the message as `send` makes it
//!   (the variant's body encoded once, the reader's token written in place, the headers made),
//!   unsigned and signed with a fresh key of each kind: the difference is the signature's cost
//!   (hashing the body and the headers, and the private-key operation).
//!
//! Keys are made with `openssl` in a temporary folder. `bench/send.sh` runs it; BENCHMARKS.md
//! has the figures.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use lscp_mail::config::{Config, Dkim, DkimAlgorithm};
use lscp_mail::content::{TopicCatalog, load_issue};
use lscp_mail::render::Renderer;
use lscp_mail::send::personalise::Personaliser;
use lscp_mail::store::{DisplayName, LinkToken, SubscriberEmail};

fn key(dir: &Path, name: &str, openssl: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl {openssl} -out {} 2>/dev/null",
            path.display()
        ))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {openssl}");
    path
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("issues/2026-02");
    let issue = load_issue(&dir, &TopicCatalog::builtin())
        .issue
        .expect("issues/2026-02 loads");
    let renderer = Renderer::new(None).expect("templates");
    let keys = tempfile::tempdir().expect("temp dir");
    let signed = |algorithm, key_file| Config {
        dkim: Some(Dkim {
            domain: "leedsscp.org.uk".into(),
            selector: "lscp2026".into(),
            key_file,
            algorithm,
        }),
        ..Config::default()
    };
    let configs = [
        ("unsigned", Config::default()),
        (
            "rsa-2048",
            signed(
                DkimAlgorithm::RsaSha256,
                key(
                    keys.path(),
                    "rsa.pem",
                    "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
                ),
            ),
        ),
        (
            "ed25519",
            signed(
                DkimAlgorithm::Ed25519Sha256,
                key(keys.path(), "ed.pem", "genpkey -algorithm ed25519"),
            ),
        ),
    ];
    let token = LinkToken::parse(&"AbCd0123-_".repeat(7)[..64]).expect("a token");
    let topics = TopicCatalog::builtin()
        .parse_list("training")
        .expect("a topic");
    let (ada, ada_name) = (
        SubscriberEmail::parse("ada@example.org").expect("an address"),
        DisplayName::parse("Ada").expect("a name"),
    );
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    let mut group = c.benchmark_group("message");
    for (i, (name, config)) in configs.iter().enumerate() {
        let p = Personaliser::new(&issue, config, &TopicCatalog::builtin(), &renderer)
            .expect("renders");
        if i == 0 {
            group.bench_function("builder", |b| {
                b.iter(|| {
                    black_box(
                        p.message_by_builder(
                            &ada,
                            ada_name.as_ref(),
                            Some(&topics),
                            &token.expose(),
                        )
                        .expect("message"),
                    )
                })
            });
        }
        group.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    p.message(&ada, ada_name.as_ref(), Some(&topics), &token)
                        .expect("message"),
                )
            })
        });
    }
    group.finish();
    c.final_summary();
}
