//! The bytes of the conversation: a reply read whole (every line of a multi-line one) and
//! parsed by lettre's `Response`, commands written and flushed, and the message body made
//! transparent (RFC 5321 4.5.2) in one pass.
//!
//! Written here rather than left to lettre's `AsyncSmtpConnection` because that session keeps
//! its stream to itself, so it cannot pipeline, and its codec copies the message byte by byte
//! while dot-stuffing; a reader of lines and a `memchr` search are all the rest needs.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use bytes::Buf;
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use super::failure::{SmtpFailure, Stage};

/// A byte stream an SMTP session runs over: TCP, or TLS over TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The longest reply we read (lettre's limits: 4 KiB a line, 64 KiB a reply): a server
/// sending more is broken, and must not make us hold it all.
const MAX_LINE: usize = 4096;
const MAX_REPLY: usize = 65_536;

/// Reads one reply under `limit`. A positive one (2xx, 3xx) is `Ok`; a refusal is a failure
/// with its code and enhanced status; no reply in time, a closed connection or a reply that is
/// not SMTP is a temporary failure without a reply (and so ends the session).
pub(super) async fn read_reply<S: AsyncRead + Unpin>(
    io: &mut BufReader<S>,
    stage: Stage,
    limit: Duration,
) -> Result<Response, SmtpFailure> {
    let lost = |cause: String| SmtpFailure::temporary(stage, cause);
    let mut text = String::with_capacity(128);
    loop {
        let before = text.len();
        let n = timeout(limit, io.read_line(&mut text))
            .await
            .map_err(|_| lost(format!("no reply within {} s", limit.as_secs())))?
            .map_err(|e| lost(e.to_string()))?;
        if n == 0 {
            return Err(lost(if stage == Stage::Greeting {
                "the server closed the connection before greeting".into()
            } else {
                "the server closed the connection".into()
            }));
        }
        if text.len() - before > MAX_LINE || text.len() > MAX_REPLY {
            return Err(lost("the server's reply is too long".into()));
        }
        let line = text[before..].trim_end_matches(['\r', '\n']);
        // The last line of a reply has a space (or nothing) after its code; others a dash.
        if line.len() <= 3 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    let response = Response::from_str(&text)
        .map_err(|_| lost(format!("not an SMTP reply: {:?}", text.trim_end())))?;
    if response.is_positive() {
        Ok(response)
    } else {
        Err(SmtpFailure::from_response(stage, &response))
    }
}

/// Writes `bytes` and flushes them under `limit`. Parts chained into one `Buf` (a message
/// and the line that ends it) go in one vectored write where the stream takes one: one system
/// call, not one per part.
pub(super) async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    stage: Stage,
    limit: Duration,
    mut bytes: impl Buf,
) -> Result<(), SmtpFailure> {
    let lost = |cause: String| SmtpFailure::temporary(stage, cause);
    let stream = io.get_mut();
    let written = async {
        stream.write_all_buf(&mut bytes).await?;
        stream.flush().await
    };
    timeout(limit, written)
        .await
        .map_err(|_| lost(format!("could not write within {} s", limit.as_secs())))?
        .map_err(|e| lost(e.to_string()))
}

/// The message as it goes after `DATA`: every `.` that starts a line doubled. A line starts
/// after CRLF, as lettre's codec had it (a `.` after a bare LF is sent as it is), so the bytes
/// on the wire and what the server stores are the same as before. Most messages have no such
/// line and are sent as they are, without a copy.
pub(super) fn transparent(message: &[u8]) -> Cow<'_, [u8]> {
    let starts = message.first() == Some(&b'.');
    let mut after_crlf = memchr::memmem::find_iter(message, b"\r\n.").peekable();
    if !starts && after_crlf.peek().is_none() {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    if starts {
        out.push(b'.');
    }
    let mut from = 0;
    for at in after_crlf {
        // Up to and including the CRLF, then the doubled dot; the dot itself follows.
        out.extend_from_slice(&message[from..at + 2]);
        out.push(b'.');
        from = at + 2;
    }
    out.extend_from_slice(&message[from..]);
    Cow::Owned(out)
}

/// What ends the message: lettre sent CRLF `.` CRLF whether or not the message ended with a
/// line break, and so do we, so that the server stores the same bytes.
pub(super) const END_OF_DATA: &[u8] = b"\r\n.\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_a_line_starting_with_a_dot_is_sent_as_it_is() {
        let m = b"Subject: x\r\n\r\nHello. A dot.\r\n";
        assert!(matches!(transparent(m), Cow::Borrowed(_)));
    }

    #[test]
    fn each_dot_that_starts_a_line_is_doubled() {
        assert_eq!(
            &*transparent(b".first\r\n..second\r\nthird\r\n.\r\n"),
            b"..first\r\n...second\r\nthird\r\n..\r\n"
        );
    }

    #[test]
    fn a_dot_after_a_bare_line_feed_or_carriage_return_is_left_as_lettre_left_it() {
        assert_eq!(&*transparent(b"a\n.b\r.c"), b"a\n.b\r.c");
        assert_eq!(&*transparent(b"a\r\r\n.b"), b"a\r\r\n..b");
        assert_eq!(&*transparent(b"end\r\n."), b"end\r\n..");
    }

    #[tokio::test]
    async fn a_multi_line_reply_is_read_whole_and_the_next_one_stays_for_later() {
        let wire: &[u8] = b"250-relay.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n550 5.1.1 <a@b>: no such user\r\n";
        let mut io = BufReader::new(wire);
        let limit = Duration::from_secs(1);
        let ehlo = read_reply(&mut io, Stage::Ehlo, limit).await.expect("250");
        assert_eq!(
            ehlo.message().collect::<Vec<_>>(),
            ["relay.test", "PIPELINING", "8BITMIME"]
        );
        let refused = read_reply(&mut io, Stage::RcptTo, limit)
            .await
            .expect_err("550");
        assert_eq!(
            (refused.code(), refused.enhanced()),
            (Some(550), Some("5.1.1"))
        );
        let closed = read_reply(&mut io, Stage::Data, limit)
            .await
            .expect_err("closed");
        assert!(closed.reply.is_none() && closed.is_transient(), "{closed}");
    }

    #[tokio::test]
    async fn a_refusal_over_several_lines_keeps_its_enhanced_status_once() {
        let wire: &[u8] = b"550-5.7.1 Service unavailable; client blocked\r\n550 5.7.1 see https://example.org/why\r\n";
        let refused = read_reply(
            &mut BufReader::new(wire),
            Stage::MailFrom,
            Duration::from_secs(1),
        )
        .await
        .expect_err("550");
        assert_eq!(
            refused.detail(),
            "550 5.7.1 Service unavailable; client blocked see https://example.org/why"
        );
        assert!(refused.is_permanent());
    }
}
