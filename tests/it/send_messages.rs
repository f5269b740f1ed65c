//! Each reader's message is made from its variant's body, encoded once per campaign, with the
//! reader's token written in place: the bytes must be those building the message from scratch
//! gives, headers, MIME parts and DKIM signature included.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lscp_mail::config::{Config, Dkim, DkimAlgorithm, TaggedAddress};
use lscp_mail::content::{TopicCatalog, TopicSet};
use lscp_mail::mail::outgoing::Stamp;
use lscp_mail::render::Renderer;
use lscp_mail::send::personalise::{Outgoing, Personaliser};
use lscp_mail::store::{DisplayName, LinkToken, SubscriberEmail};

use crate::common::dkim;
use crate::common::sending::shipped_issue;

/// The value of header `name` in `message`, unfolded.
fn header(message: &str, name: &str) -> String {
    let head = message.split("\r\n\r\n").next().unwrap_or_default();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines = head
        .split("\r\n")
        .skip_while(|l| !l.to_ascii_lowercase().starts_with(&prefix));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {name} in {message}"));
    let mut value = first[prefix.len()..].trim().to_string();
    for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(l.trim());
    }
    value
}

/// A token of its real length with characters drawn from all of its alphabet.
fn token(seed: u8) -> LinkToken {
    let bytes: Vec<u8> = (0..48u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed.wrapping_mul(101)))
        .collect();
    LinkToken::parse(&URL_SAFE_NO_PAD.encode(bytes)).expect("a token")
}

/// The message `message_by_builder` makes, and the fast way's message with its Message-ID,
/// Date and MIME boundary.
fn both_ways(
    p: Personaliser,
    to: (&SubscriberEmail, Option<&DisplayName>),
    topics: Option<&TopicSet>,
    token: &LinkToken,
) -> (Personaliser, Outgoing, Outgoing) {
    let built = p
        .message_by_builder(to.0, to.1, topics, &token.expose())
        .expect("built");
    let text = String::from_utf8(built.bytes.clone()).expect("ASCII");
    let content_type = header(&text, "Content-Type");
    let boundary = content_type
        .split("boundary=\"")
        .nth(1)
        .and_then(|b| b.split('"').next())
        .expect("a boundary");
    let date = chrono::DateTime::parse_from_rfc2822(&header(&text, "Date")).expect("a date");
    let stamp = Stamp {
        message_id: built.message_id.clone(),
        date: SystemTime::from(date),
    };
    let p = p.with_boundary(boundary);
    let fast = p
        .message_stamped(to.0, to.1, topics, token, Some(stamp))
        .expect("made");
    (p, built, fast)
}

/// An address, a name, and the topics the reader shares with the issue (`None`: all of it).
type Reader<'a> = (&'a str, Option<&'a str>, Option<TopicSet>);

fn compare(config: &Config) {
    let issue = shipped_issue("2026-02");
    let catalog = TopicCatalog::builtin();
    let renderer = Renderer::new(None).expect("templates");
    let mut p = Personaliser::new(&issue, config, &catalog, &renderer).expect("renders");
    let topics = |t: &[&str]| catalog.parse_list(&t.join(",")).expect("topics");
    let readers: [Reader; 5] = [
        (
            "ada@example.org",
            Some("Ada Lovelace"),
            Some(topics(&["training"])),
        ),
        (
            "bea@example.org",
            None,
            Some(topics(&["events", "training"])),
        ),
        (
            "chloé@bücher.example",
            Some("Chloé Ó Briain-Ñúñez, Designated Safeguarding Lead"),
            Some(topics(&["protocols", "training"])),
        ),
        (
            "dan@example.org",
            Some("Dan \"the\" <Reader>"),
            Some(topics(&["events"])),
        ),
        ("eve@example.org", Some("Eve"), None),
    ];
    for (n, (address, name, topics)) in readers.iter().enumerate() {
        let token = token(n as u8);
        // As the database gives them: Chloé's address is from before addresses outside ASCII
        // before the @ were refused, and still gets its mail.
        let to = SubscriberEmail::from_stored(address.to_string());
        let name = name.map(|n| DisplayName::parse(n).expect("a name").expect("not empty"));
        // A signature stamps the second it was made: both ways must fall in the same one.
        let (next, built, fast) = loop {
            let (next, built, fast) = both_ways(p, (&to, name.as_ref()), topics.as_ref(), &token);
            let stamp = |o: &Outgoing| {
                let t = String::from_utf8_lossy(&o.bytes).into_owned();
                t.contains("DKIM-Signature").then(|| {
                    dkim::signature(&t)
                        .split("t=")
                        .nth(1)
                        .map(|s| s[..10].to_string())
                })
            };
            if stamp(&built) == stamp(&fast) {
                break (next, built, fast);
            }
            p = next;
        };
        p = next;
        // A new boundary starts the encodings afresh: the one made is this reader's.
        assert_eq!(
            p.encoded_ahead(),
            1,
            "reader {address}: the variant was encoded ahead, not built from scratch"
        );
        assert!(
            built.bytes == fast.bytes,
            "reader {address}: the fast way's message differs from the builder's\n--- builder\n{}\n--- fast\n{}",
            String::from_utf8_lossy(&built.bytes),
            String::from_utf8_lossy(&fast.bytes)
        );
        assert_eq!(built.envelope, fast.envelope, "reader {address}");
        assert!(
            String::from_utf8_lossy(&fast.bytes).contains(&token.expose()[..40]),
            "the reader's token is in their message"
        );
    }
}

fn with_lists() -> Config {
    let mut config = Config::default();
    config.mail.reply_to = Some(
        "Editors <editors@leedsscp.org.uk>"
            .parse()
            .expect("a mailbox"),
    );
    config.mail.unsubscribe_mailto =
        Some(TaggedAddress::parse("unsubscribe@leedsscp.org.uk").expect("address"));
    config.mail.bounce_address =
        Some(TaggedAddress::parse("bounces@leedsscp.org.uk").expect("address"));
    config
}

fn signed(algorithm: DkimAlgorithm, key: &dkim::TestKey) -> Config {
    Config {
        dkim: Some(Dkim {
            domain: "leedsscp.org.uk".into(),
            selector: "lscp2026".into(),
            key_file: key.path.clone(),
            algorithm,
        }),
        ..with_lists()
    }
}

#[test]
fn each_readers_message_is_byte_for_byte_what_building_it_from_scratch_gives() {
    compare(&Config::default());
    compare(&with_lists());
}

#[test]
fn a_dkim_signed_message_is_byte_for_byte_the_same_and_verifies() {
    let rsa = dkim::rsa_key("");
    compare(&signed(DkimAlgorithm::RsaSha256, &rsa));
    let ed = dkim::ed25519_key(false);
    compare(&signed(DkimAlgorithm::Ed25519Sha256, &ed));

    // And the fast way's signature holds over its final bytes.
    let issue = shipped_issue("2026-02");
    let p = Personaliser::new(
        &issue,
        &signed(DkimAlgorithm::RsaSha256, &rsa),
        &TopicCatalog::builtin(),
        &Renderer::new(None).expect("templates"),
    )
    .expect("renders");
    let out = p
        .message(
            &SubscriberEmail::parse("ada@example.org").expect("an address"),
            DisplayName::parse("Ada").expect("a name").as_ref(),
            Some(
                &TopicCatalog::builtin()
                    .parse_list("training")
                    .expect("a topic"),
            ),
            &token(9),
        )
        .expect("made");
    assert!(
        dkim::verifies(&out.bytes, &rsa.record),
        "the signature verifies"
    );
}
