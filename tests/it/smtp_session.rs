//! The SMTP session `send` speaks, against the scripted relay: with a server offering
//! PIPELINING a message's MAIL FROM, RCPT TO and DATA go before any reply and every reply is
//! still read, so a refusal leaves the session in step for the next reader; without it, one
//! command at a time; the body reaches the server as it was written, as lettre sent it; a
//! message that must wait (for the ledger) goes whole, its end held back until it may; and the
//! next message's envelope goes with the end of the one before, the session then good for that
//! message alone.

use std::sync::Arc;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lscp_mail::mail::smtp::{Connection, SmtpTarget, Stage};
use secrecy::SecretString;

use crate::common::scripted_smtp::{Answer, Relay, ScriptedSmtp, TestCa};

const LIMIT: Duration = Duration::from_secs(10);

fn address(a: &str) -> Address {
    a.parse().expect("address")
}

fn envelope(to: &str) -> Envelope {
    Envelope::new(Some(address("news@example.org")), vec![address(to)]).expect("envelope")
}

async fn open(server: &ScriptedSmtp) -> Connection {
    let target = SmtpTarget::parse(&SecretString::from(server.url())).expect("url");
    Connection::open(&target, "news.example.org", LIMIT)
        .await
        .expect("session")
}

const MESSAGE: &[u8] = b"Subject: Hello\r\n\r\nA line.\r\n";

/// The commands of session 1 that had arrived before the server answered the one before.
fn pipelined(server: &ScriptedSmtp) -> Vec<String> {
    server
        .log()
        .pipelined
        .into_iter()
        .filter(|(n, _)| *n == 1)
        .map(|(_, c)| c)
        .collect()
}

#[tokio::test]
async fn with_pipelining_rcpt_to_and_data_go_before_the_reply_to_mail_from() {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    let accepted = conn
        .send(&envelope("ann@example.org"), MESSAGE)
        .await
        .expect("sent");
    assert!(accepted.starts_with("250"), "{accepted}");
    assert_eq!(
        pipelined(&server),
        ["RCPT TO:<ann@example.org>", "DATA"],
        "in one write with MAIL FROM"
    );
    assert_eq!(server.log().accepted, ["ann@example.org"]);
}

#[tokio::test]
async fn without_pipelining_each_command_waits_for_its_reply() {
    let server = ScriptedSmtp::start(Relay {
        extensions: vec!["8BITMIME".into()],
        ..Relay::default()
    })
    .await;
    let mut conn = open(&server).await;
    conn.send(&envelope("ann@example.org"), MESSAGE)
        .await
        .expect("sent");
    assert_eq!(pipelined(&server), Vec::<String>::new());
    assert_eq!(server.count("MAIL FROM"), 1);
    assert_eq!(server.count("DATA"), 1);
    assert_eq!(server.log().accepted, ["ann@example.org"]);
}

#[tokio::test]
async fn a_sender_refused_under_pipelining_leaves_the_session_in_step() {
    let server = ScriptedSmtp::start(Relay {
        mail: "550 5.1.8 Access denied, bad outbound sender".into(),
        ..Relay::default()
    })
    .await;
    let mut conn = open(&server).await;
    for to in ["ann@example.org", "ben@example.org"] {
        let refused = conn
            .send(&envelope(to), MESSAGE)
            .await
            .expect_err("the sender is refused");
        // Each transaction reads its own MAIL FROM reply, not the one left over from the
        // recipient or DATA refused after it.
        assert_eq!(
            (refused.stage, refused.code(), refused.enhanced()),
            (Stage::MailFrom, Some(550), Some("5.1.8")),
            "{to}: {refused}"
        );
        assert!(conn.is_usable(), "{refused}");
    }
    let log = server.log();
    assert_eq!(log.sessions, 1);
    assert!(log.accepted.is_empty(), "no message went");
    assert_eq!(server.count("RSET"), 2, "{:?}", log.commands);
    conn.quit().await;
}

/// A relay (Postfix's words) that knows no mailbox `gone@example.org`.
async fn refusing_gone() -> ScriptedSmtp {
    ScriptedSmtp::start(Relay {
        rcpt: Arc::new(|to, _| {
            if to == "gone@example.org" {
                format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown")
            } else {
                "250 2.1.5 Ok".into()
            }
        }),
        ..Relay::default()
    })
    .await
}

/// `refused` is the relay's 550 5.1.1 to RCPT TO.
fn refused_as_unknown(refused: &lscp_mail::mail::smtp::SmtpFailure) {
    assert_eq!(
        (refused.stage, refused.enhanced()),
        (Stage::RcptTo, Some("5.1.1")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_recipient_refused_under_pipelining_fails_that_reader_and_the_next_is_sent() {
    let server = refusing_gone().await;
    let mut conn = open(&server).await;
    let refused = conn
        .send(&envelope("gone@example.org"), MESSAGE)
        .await
        .expect_err("refused recipient");
    refused_as_unknown(&refused);
    assert!(refused.is_no_such_mailbox(), "{refused}");
    assert!(conn.is_usable());
    conn.send(&envelope("ann@example.org"), MESSAGE)
        .await
        .expect("the next reader is sent on the same session");
    let log = server.log();
    assert_eq!(log.sessions, 1);
    assert_eq!(log.accepted, ["ann@example.org"]);
    assert_eq!(server.count("RSET"), 1);
}

/// Waits (up to ten seconds) until the server holds the whole of `MESSAGE` but not its end,
/// while `sending` goes on; a send that ends first fails the test.
async fn until_all_but_the_end_has_arrived<T: std::fmt::Debug>(
    server: &ScriptedSmtp,
    sending: &mut (impl Future<Output = T> + Unpin),
) {
    let arrived = async {
        for _ in 0..1000 {
            if server.log().arriving == MESSAGE {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the body never arrived: {:?}", server.log().arriving);
    };
    tokio::select! {
        ended = &mut *sending => panic!("the message ended before it was let: {ended:?}"),
        () = arrived => {}
    }
}

#[tokio::test]
async fn a_message_waiting_to_be_let_end_goes_whole_and_is_taken_only_once_let() {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    let (let_end, when) = tokio::sync::oneshot::channel::<()>();
    let to_ann = envelope("ann@example.org");
    let mut sending = Box::pin(conn.send_when(
        &to_ann,
        MESSAGE,
        async { when.await.map_err(|_| "never let") },
        None,
    ));
    until_all_but_the_end_has_arrived(&server, &mut sending).await;
    assert!(server.log().accepted.is_empty(), "taken before its end");
    let_end.send(()).expect("still sending");
    let accepted = sending.await.expect("let").expect("sent");
    assert!(accepted.starts_with("250"), "{accepted}");
    let log = server.log();
    assert_eq!(log.accepted, ["ann@example.org"]);
    let mut stored = MESSAGE.to_vec();
    stored.extend_from_slice(b"\r\n");
    assert_eq!(
        log.messages[0].1, stored,
        "the same bytes as a message sent at once"
    );
}

#[tokio::test]
async fn a_message_whose_wait_fails_is_never_ended_and_its_session_is_given_up() {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    let (fail, when) = tokio::sync::oneshot::channel::<&str>();
    let to_ann = envelope("ann@example.org");
    let mut sending = Box::pin(conn.send_when(
        &to_ann,
        MESSAGE,
        async { Err(when.await.unwrap_or("dropped")) },
        None,
    ));
    until_all_but_the_end_has_arrived(&server, &mut sending).await;
    fail.send("the ledger cannot be written")
        .expect("still sending");
    let failed = sending.await.expect_err("the wait failed");
    assert_eq!(failed, "the ledger cannot be written");
    assert!(
        !conn.is_usable(),
        "a session mid-message cannot carry another"
    );
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = server.log();
    assert!(
        log.accepted.is_empty(),
        "the server took {:?}",
        log.accepted
    );
    assert_eq!(log.sessions, 1);
}

/// Sends `message` to `to` with `next`'s envelope going ahead of it, nothing to wait for.
async fn send_before(
    conn: &mut Connection,
    to: &str,
    message: &[u8],
    next: (&Envelope, &[u8]),
) -> Result<String, lscp_mail::mail::smtp::SmtpFailure> {
    let ready = std::future::ready(Ok::<(), ()>(()));
    conn.send_when(&envelope(to), message, ready, Some(next))
        .await
        .expect("nothing to wait for")
}

/// A session of the default relay that sent ann's message with the envelope of ben's (`bens`)
/// after its end, and ben's envelope.
async fn ann_sent_with_bens_envelope_ahead(bens: &[u8]) -> (ScriptedSmtp, Connection, Envelope) {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    let to_ben = envelope("ben@example.org");
    send_before(&mut conn, "ann@example.org", MESSAGE, (&to_ben, bens))
        .await
        .expect("ann's sent");
    (server, conn, to_ben)
}

#[tokio::test]
async fn the_next_messages_envelope_goes_with_the_end_of_the_one_before() {
    let (server, mut conn, to_ben) = ann_sent_with_bens_envelope_ahead(DOTTED).await;
    assert!(conn.awaits_message(), "the session is ben's now");
    conn.send(&to_ben, DOTTED).await.expect("ben's sent");
    assert!(!conn.awaits_message());
    conn.quit().await;
    assert_eq!(
        pipelined(&server),
        [
            "RCPT TO:<ann@example.org>",
            "DATA",
            "MAIL FROM:<news@example.org>",
            "RCPT TO:<ben@example.org>",
            "DATA",
        ],
        "ben's MAIL FROM, RCPT TO and DATA came with the end of ann's message"
    );
    assert_eq!(server.count("MAIL FROM"), 2, "ben's envelope went once");
    let log = server.log();
    assert_eq!(log.accepted, ["ann@example.org", "ben@example.org"]);
    let stored = |m: &[u8]| [m, b"\r\n"].concat();
    assert_eq!(log.messages[0].1, stored(MESSAGE));
    assert_eq!(
        log.messages[1].1,
        stored(DOTTED),
        "the same bytes as sent on their own"
    );
}

#[tokio::test]
async fn a_session_left_waiting_for_a_message_is_closed_without_it() {
    let (server, conn, _) = ann_sent_with_bens_envelope_ahead(MESSAGE).await;
    // Ben's message does not go after all (the run was stopped): QUIT would be taken as his
    // message's first line.
    conn.quit().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = server.log();
    assert_eq!(log.accepted, ["ann@example.org"], "nothing for ben");
    assert!(
        log.arriving.is_empty(),
        "nothing came as ben's text: {:?}",
        String::from_utf8_lossy(&log.arriving)
    );
}

#[tokio::test]
async fn a_session_asked_for_another_message_than_it_waits_for_is_given_up() {
    let (server, mut conn, _) = ann_sent_with_bens_envelope_ahead(MESSAGE).await;
    let refused = conn
        .send(&envelope("cat@example.org"), MESSAGE)
        .await
        .expect_err("the session waits for ben's message");
    assert!(refused.is_transient(), "{refused}");
    assert!(!conn.is_usable());
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.log().accepted, ["ann@example.org"]);
}

#[tokio::test]
async fn a_message_refused_at_its_end_leaves_the_next_one_to_go_on_the_same_session() {
    let server = ScriptedSmtp::start(Relay {
        data_end: Arc::new(|to, _| {
            Answer::Reply(if to == "ann@example.org" {
                "554 5.7.1 Message rejected: spam".into()
            } else {
                "250 2.0.0 Ok: queued".into()
            })
        }),
        ..Relay::default()
    })
    .await;
    let mut conn = open(&server).await;
    let to_ben = envelope("ben@example.org");
    let refused = send_before(&mut conn, "ann@example.org", MESSAGE, (&to_ben, MESSAGE))
        .await
        .expect_err("ann's message is refused");
    assert_eq!(
        (refused.stage, refused.enhanced()),
        (Stage::Message, Some("5.7.1")),
        "{refused}"
    );
    assert!(conn.is_usable() && conn.awaits_message());
    conn.send(&to_ben, MESSAGE)
        .await
        .expect("ben's goes on the same session");
    let log = server.log();
    assert_eq!(
        (log.sessions, log.accepted),
        (1, vec!["ben@example.org".to_string()])
    );
}

#[tokio::test]
async fn a_next_recipient_refused_fails_that_reader_alone_and_the_session_goes_on() {
    let server = refusing_gone().await;
    let mut conn = open(&server).await;
    let to_gone = envelope("gone@example.org");
    send_before(&mut conn, "ann@example.org", MESSAGE, (&to_gone, MESSAGE))
        .await
        .expect("ann's sent: the refusal that follows is not hers");
    let refused = conn
        .send(&to_gone, MESSAGE)
        .await
        .expect_err("refused recipient");
    refused_as_unknown(&refused);
    assert!(conn.is_usable() && !conn.awaits_message());
    conn.send(&envelope("ben@example.org"), MESSAGE)
        .await
        .expect("the next reader is sent on the same session");
    let log = server.log();
    assert_eq!(log.sessions, 1);
    assert_eq!(log.accepted, ["ann@example.org", "ben@example.org"]);
}

/// Lines starting with a dot, the last line without its line break.
const DOTTED: &[u8] = b"Subject: Dots\r\n\r\n.hidden\r\n..two\r\n.\r\nend.";

/// A dot after a bare LF (which lettre did not double) and after CR CR LF (which it did).
const ODD: &[u8] = b"Subject: Odd\r\n\r\nbare\n.lf\r\r\n.cr\r\n";

#[tokio::test]
async fn a_body_with_lines_starting_with_a_dot_is_stored_as_it_was_written() {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    conn.send(&envelope("ann@example.org"), DOTTED)
        .await
        .expect("sent");
    let mut stored = DOTTED.to_vec();
    // lettre ended DATA with CRLF . CRLF, and so do we: the server stores a final CRLF.
    stored.extend_from_slice(b"\r\n");
    let messages = server.log().messages;
    assert_eq!(
        String::from_utf8_lossy(&messages[0].1),
        String::from_utf8_lossy(&stored),
        "the dots the server takes off are the ones we added"
    );
}

#[tokio::test]
async fn the_server_gets_the_bytes_lettres_session_sent() {
    let server = ScriptedSmtp::start(Relay::default()).await;
    let mut conn = open(&server).await;
    let mut lettre = AsyncSmtpConnection::connect_tokio1(
        ("127.0.0.1", server.port),
        Some(LIMIT),
        &ClientId::Domain("news.example.org".into()),
        None,
        None,
    )
    .await
    .expect("lettre's session");
    for message in [DOTTED, ODD, MESSAGE] {
        conn.send(&envelope("ann@example.org"), message)
            .await
            .expect("sent");
        lettre
            .send(&envelope("ben@example.org"), message)
            .await
            .expect("sent by lettre");
    }
    let messages = server.log().messages;
    assert_eq!(messages.len(), 6);
    for pair in messages.chunks(2) {
        assert_eq!(
            (pair[0].0.as_str(), pair[1].0.as_str()),
            ("ann@example.org", "ben@example.org")
        );
        assert_eq!(
            String::from_utf8_lossy(&pair[0].1),
            String::from_utf8_lossy(&pair[1].1),
            "the same bytes as lettre's"
        );
    }
}

#[tokio::test]
async fn smtps_is_tls_from_the_first_byte_and_logs_in() {
    let ca = TestCa::new();
    let server = ScriptedSmtp::start(Relay {
        extensions: vec!["AUTH PLAIN LOGIN".into(), "PIPELINING".into()],
        tls: Some(ca.clone()),
        implicit_tls: true,
        ..Relay::default()
    })
    .await;
    let url = format!(
        "smtps://newsletter%40example.org:secret@localhost:{}",
        server.port
    );
    let target = SmtpTarget::parse(&SecretString::from(url)).expect("url");

    let untrusted = Connection::open(&target, "news.example.org", LIMIT)
        .await
        .err()
        .expect("an unknown CA is refused");
    assert_eq!(untrusted.stage, Stage::Connect, "{untrusted}");
    assert!(untrusted.is_permanent(), "{untrusted}");

    let target = target.trusting(&ca.ca_file).expect("CA file");
    let mut conn = Connection::open(&target, "news.example.org", LIMIT)
        .await
        .expect("session");
    conn.send(&envelope("ann@example.org"), MESSAGE)
        .await
        .expect("sent");
    assert_eq!(server.count("AUTH PLAIN"), 1);
    assert_eq!(server.log().accepted, ["ann@example.org"]);
}
