//! Unit tests of the target's parsing, the failure's classification and redaction.

use secrecy::SecretString;

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

fn replied(stage: Stage, code: u16, text: &str) -> SmtpFailure {
    SmtpFailure::replied(stage, Reply::new(code, text))
}

#[test]
fn refusals_of_the_login_or_the_sender_are_the_sessions_wherever_they_come() {
    let cases = [
        replied(Stage::Auth, 535, "5.7.3 Authentication unsuccessful"),
        replied(
            Stage::MailFrom,
            530,
            "5.7.57 Client not authenticated to send mail",
        ),
        replied(
            Stage::MailFrom,
            550,
            "5.1.8 Access denied, bad outbound sender",
        ),
        // Postfix checks the sender when the recipient is given.
        replied(
            Stage::RcptTo,
            550,
            "5.1.8 <news@x>: Sender address rejected",
        ),
        replied(Stage::Greeting, 554, "5.7.1 Service unavailable"),
    ];
    for f in cases {
        assert_eq!((f.scope(), f.is_permanent()), (Scope::Session, true), "{f}");
        assert!(!f.is_no_such_mailbox(), "{f}");
    }
    let login = replied(Stage::Auth, 535, "5.7.3 Authentication unsuccessful");
    assert!(login.suspect().contains("SMTP_URL"));
    let sender = replied(
        Stage::MailFrom,
        550,
        "5.1.8 Access denied, bad outbound sender",
    );
    assert!(sender.suspect().contains("mail.from"));
}

#[test]
fn a_421_or_a_complaint_of_our_rate_is_the_sessions_and_temporary() {
    for f in [
        replied(
            Stage::Message,
            421,
            "4.7.28 Gmail has detected an unusual rate",
        ),
        replied(Stage::RcptTo, 452, "4.5.3 Too many recipients"),
        replied(
            Stage::RcptTo,
            450,
            "4.4.2 Message submission rate for this client has exceeded the configured limit",
        ),
        replied(
            Stage::Message,
            432,
            "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
        ),
        SmtpFailure::temporary(Stage::Message, "network error: connection reset"),
    ] {
        assert_eq!(
            (f.scope(), f.is_permanent()),
            (Scope::Session, false),
            "{f}"
        );
    }
    assert!(replied(Stage::RcptTo, 452, "4.5.3 Too many recipients").is_rate_complaint());
    assert!(!replied(Stage::RcptTo, 450, "4.2.0 Greylisted").is_rate_complaint());
}

#[test]
fn greylisting_is_the_recipients_and_temporary() {
    for f in [
        replied(
            Stage::RcptTo,
            450,
            "4.2.0 <ann@x>: Recipient address rejected: Greylisted",
        ),
        replied(Stage::RcptTo, 451, "Try again later"),
        replied(
            Stage::RcptTo,
            451,
            "4.7.1 Greylisting in action, please come back later",
        ),
    ] {
        assert_eq!(
            (f.scope(), f.is_permanent()),
            (Scope::Recipient, false),
            "{f}"
        );
    }
}

#[test]
fn only_a_dead_mailbox_bounces() {
    let bounces = [
        replied(
            Stage::RcptTo,
            550,
            "5.1.1 <ben@x>: Recipient address rejected: User unknown",
        ),
        replied(Stage::RcptTo, 550, "5.1.10 RESOLVER.ADR.RecipientNotFound"),
        replied(Stage::RcptTo, 550, "5.2.1 Mailbox disabled"),
        replied(Stage::RcptTo, 550, "No such user here"),
        replied(Stage::RcptTo, 551, "User not local"),
    ];
    for f in bounces {
        assert!(f.is_no_such_mailbox(), "{f}");
    }
    let not = [
        replied(Stage::RcptTo, 554, "5.7.1 Relay access denied"),
        replied(Stage::RcptTo, 550, "Rejected by policy"),
        replied(
            Stage::RcptTo,
            550,
            "Requested action not taken: mailbox unavailable (blocked using zen.spamhaus.org)",
        ),
        replied(
            Stage::RcptTo,
            553,
            "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
        ),
        replied(
            Stage::Message,
            550,
            "5.7.26 Unauthenticated email is not accepted",
        ),
        replied(
            Stage::Message,
            550,
            "5.1.1 looks like a bounce but comes after DATA",
        ),
        replied(Stage::MailFrom, 550, "5.1.1 sender unknown"),
    ];
    for f in not {
        assert!(!f.is_no_such_mailbox(), "{f}");
    }
    let dmarc = replied(
        Stage::Message,
        550,
        "5.7.26 Unauthenticated email is not accepted",
    );
    assert_eq!(
        (dmarc.scope(), dmarc.is_permanent()),
        (Scope::Message, true)
    );
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

#[test]
fn an_address_the_server_cannot_carry_is_that_readers_refusal_not_the_sessions() {
    let f = replied(
        Stage::RcptTo,
        553,
        "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
    );
    assert_eq!(f.scope(), Scope::Recipient);
    assert!(f.is_permanent());
    assert!(!f.is_no_such_mailbox());
    let eight_bit = replied(
        Stage::Message,
        554,
        "5.6.3 the message has 8-bit characters and the server does not support 8BITMIME",
    );
    assert_eq!(eight_bit.scope(), Scope::Message);
}
