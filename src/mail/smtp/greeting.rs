//! The server's greeting, read by us before lettre's session starts (so that a refusal there
//! is told from one to EHLO), and the stream that replays it to lettre.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::failure::{Reply, SmtpFailure, Stage};

/// The TCP stream after we read the greeting ourselves (so that a refusal there is told from
/// one to EHLO), giving those bytes again to lettre, which reads the greeting first.
#[derive(Debug)]
pub(super) struct Replay {
    head: Vec<u8>,
    at: usize,
    tcp: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Replay {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }
}

/// Reads the server's greeting (every line of it) and hands back the stream to replay it from.
pub(super) async fn greeting(tcp: TcpStream, limit: Duration) -> Result<Replay, SmtpFailure> {
    let mut reader = BufReader::new(tcp);
    let mut head = String::new();
    let lost = |e: String| SmtpFailure::temporary(Stage::Greeting, e);
    loop {
        let before = head.len();
        let n = timeout(limit, reader.read_line(&mut head))
            .await
            .map_err(|_| lost(format!("no greeting within {} s", limit.as_secs())))?
            .map_err(|e| lost(e.to_string()))?;
        if n == 0 {
            return Err(lost(
                "the server closed the connection before greeting".into(),
            ));
        }
        let line = head[before..].trim_end();
        // The last line of a reply has a space (or nothing) after its code; others a dash.
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
        if head.len() > 100_000 {
            return Err(lost("the greeting is too long".into()));
        }
    }
    let code: u16 = head.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
    if !(200..300).contains(&code) {
        let text: Vec<&str> = head
            .lines()
            .map(|l| l.get(4..).unwrap_or("").trim())
            .collect();
        let reply = Reply::new(if code >= 400 { code } else { 554 }, &text.join(" "));
        return Err(SmtpFailure::replied(Stage::Greeting, reply));
    }
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(reader.buffer());
    Ok(Replay {
        head: bytes,
        at: 0,
        tcp: reader.into_inner(),
    })
}
