//! The open session, spoken by us over TCP (with `TCP_NODELAY`, on `smtps://` too) or TLS:
//! the greeting, EHLO, STARTTLS and AUTH, then each transaction under the time limit, so that
//! a failure knows its step and whether the session can go on.
//!
//! lettre's `AsyncSmtpConnection` ran this session before; it keeps its stream to itself and
//! has no PIPELINING, so a message cost four round trips (MAIL, RCPT, DATA, the final dot) and
//! its codec copied the body byte by byte. Only the conversation is ours (see `wire`): lettre
//! still formats the commands (`Ehlo`, `Mail`, `Rcpt`, `Auth`, ...), parses the replies and
//! the EHLO keywords it knows, and builds the message; rustls does TLS with the roots lettre
//! used. When the server offers PIPELINING (RFC 2920), MAIL FROM, every RCPT TO and DATA go in
//! one write and their replies are read in order, every one of them, so that the session stays
//! in step after a refusal; and the next message's three can go with the end of the one before
//! ([`Connection::send_when`]), so that a message costs one round trip.

use std::convert::Infallible;
use std::task::Poll;
use std::time::Duration;

use bytes::Buf;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::commands::{Auth, Data, Ehlo, Mail, Quit, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, ServerInfo,
};
use lettre::transport::smtp::response::{Response, Severity};
use secrecy::ExposeSecret;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::failure::{Reply, SmtpFailure, Stage};
use super::target::{Security, SmtpTarget};
use super::wire::{END_OF_DATA, Io, read_reply, transparent, write};

/// Why a transaction ended without the server taking the message.
enum Ended<E> {
    Smtp(SmtpFailure),
    /// What the message waited for before its end failed.
    NotReady(E),
}

impl<E> From<SmtpFailure> for Ended<E> {
    fn from(f: SmtpFailure) -> Self {
        Self::Smtp(f)
    }
}

/// What the server said it can do in its (last) EHLO reply.
struct Offers {
    info: ServerInfo,
    pipelining: bool,
}

/// An open SMTP session.
pub struct Connection {
    io: BufReader<Box<dyn Io>>,
    offers: Offers,
    limit: Duration,
    broken: bool,
    /// The next message's envelope, written after the last message's end and not yet
    /// answered: the session is then good for that message alone.
    ahead: Option<SentAhead>,
}

/// MAIL FROM, each RCPT TO and DATA of one message, as they go on the wire.
struct Commands {
    mail: String,
    rcpts: Vec<String>,
}

impl Commands {
    /// The three in one group, as PIPELINING sends them.
    fn group(&self) -> String {
        let data = Data.to_string();
        let mut group = String::with_capacity(self.mail.len() + 64 * self.rcpts.len() + data.len());
        group.push_str(&self.mail);
        self.rcpts.iter().for_each(|r| group.push_str(r));
        group.push_str(&data);
        group
    }
}

/// An envelope sent ahead of its message: what was written, and how many RCPT TO replies
/// follow the MAIL FROM one.
struct SentAhead {
    group: String,
    rcpts: usize,
}

/// Says EHLO and reads what the server offers.
async fn ehlo<S: Io>(
    io: &mut BufReader<S>,
    hello: &ClientId,
    limit: Duration,
) -> Result<Offers, SmtpFailure> {
    let command = Ehlo::new(hello.clone()).to_string();
    write(io, Stage::Ehlo, limit, command.as_bytes()).await?;
    let reply = read_reply(io, Stage::Ehlo, limit).await?;
    let info = ServerInfo::from_response(&reply)
        .map_err(|e| SmtpFailure::temporary(Stage::Ehlo, e.to_string()))?;
    // lettre's `ServerInfo` keeps only the keywords it uses; PIPELINING is not one.
    let pipelining = reply.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
    });
    Ok(Offers { info, pipelining })
}

/// Reads the greeting: anything but a 2xx refuses the session there.
async fn greeting<S: Io>(io: &mut BufReader<S>, limit: Duration) -> Result<(), SmtpFailure> {
    let reply = read_reply(io, Stage::Greeting, limit).await?;
    if reply.code().severity != Severity::PositiveCompletion {
        let text: Vec<&str> = reply.message().collect();
        return Err(SmtpFailure::replied(
            Stage::Greeting,
            Reply::new(554, &text.join(" ")),
        ));
    }
    Ok(())
}

/// TLS over `tcp`, checking the server's certificate against the target's roots. rustls's
/// refusal (a certificate we do not trust, no common version) is for good: the settings must
/// change, waiting will not help.
async fn tls(
    target: &SmtpTarget,
    tcp: TcpStream,
    stage: Stage,
    limit: Duration,
) -> Result<Box<dyn Io>, SmtpFailure> {
    let (connector, name) = target.tls().map_err(|e| SmtpFailure::permanent(stage, e))?;
    let stream = timeout(limit, connector.connect(name, tcp))
        .await
        .map_err(|_| SmtpFailure::temporary(stage, format!("no TLS within {} s", limit.as_secs())))?
        .map_err(|e| {
            let cause = format!("TLS: {e}");
            if e.kind() == std::io::ErrorKind::InvalidData {
                SmtpFailure::permanent(stage, cause)
            } else {
                SmtpFailure::temporary(stage, cause)
            }
        })?;
    Ok(Box::new(stream))
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS when the target wants
    /// it, and logs in when it has credentials.
    pub async fn open(
        target: &SmtpTarget,
        hello: &str,
        limit: Duration,
    ) -> Result<Self, SmtpFailure> {
        let hello = ClientId::Domain(hello.to_string());
        let secs = limit.as_secs();
        let tcp = timeout(
            limit,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| SmtpFailure::temporary(Stage::Connect, format!("no answer within {secs} s")))?
        .map_err(|e| SmtpFailure::temporary(Stage::Connect, e.to_string()))?;
        // Without it the body and its final dot stall ~40 ms on Nagle and delayed ACK.
        tcp.set_nodelay(true)
            .map_err(|e| SmtpFailure::temporary(Stage::Connect, e.to_string()))?;
        let (io, offers) = match target.security {
            Security::Tls => {
                let mut io = BufReader::new(tls(target, tcp, Stage::Connect, limit).await?);
                greeting(&mut io, limit).await?;
                let offers = ehlo(&mut io, &hello, limit).await?;
                (io, offers)
            }
            Security::Plain => {
                let mut io = BufReader::new(tcp);
                greeting(&mut io, limit).await?;
                let offers = ehlo(&mut io, &hello, limit).await?;
                let io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(io.into_inner()));
                (io, offers)
            }
            Security::StartTls => {
                let mut io = BufReader::new(tcp);
                greeting(&mut io, limit).await?;
                let offers = ehlo(&mut io, &hello, limit).await?;
                if !offers.info.supports_feature(Extension::StartTls) {
                    return Err(SmtpFailure::permanent(
                        Stage::StartTls,
                        format!(
                            "{target} does not offer STARTTLS; refusing to send a password or mail in clear"
                        ),
                    ));
                }
                write(
                    &mut io,
                    Stage::StartTls,
                    limit,
                    Starttls.to_string().as_bytes(),
                )
                .await?;
                read_reply(&mut io, Stage::StartTls, limit).await?;
                if !io.buffer().is_empty() {
                    // Bytes sent before TLS must not be read as if they came after it.
                    return Err(SmtpFailure::permanent(
                        Stage::StartTls,
                        "the server sent more after agreeing to STARTTLS",
                    ));
                }
                let mut io =
                    BufReader::new(tls(target, io.into_inner(), Stage::StartTls, limit).await?);
                let offers = ehlo(&mut io, &hello, limit).await?;
                (io, offers)
            }
        };
        let mut conn = Self {
            io,
            offers,
            limit,
            broken: false,
            ahead: None,
        };
        if let Some((user, pass)) = &target.credentials {
            let creds = Credentials::new(user.clone(), pass.expose_secret().to_string());
            conn.auth(target, &creds).await?;
        }
        Ok(conn)
    }

    /// AUTH PLAIN or LOGIN, answering LOGIN's challenges (at most ten, as lettre did).
    async fn auth(&mut self, target: &SmtpTarget, creds: &Credentials) -> Result<(), SmtpFailure> {
        let Some(mechanism) = self
            .offers
            .info
            .get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
        else {
            return Err(SmtpFailure::permanent(
                Stage::Auth,
                format!(
                    "SMTP_URL gives a user name and password but {target} offers no AUTH PLAIN or LOGIN (after STARTTLS, when used)"
                ),
            ));
        };
        let client =
            |e: lettre::transport::smtp::Error| SmtpFailure::permanent(Stage::Auth, e.to_string());
        let mut command = Auth::new(mechanism, creds.clone(), None).map_err(client)?;
        for _ in 0..10 {
            let reply = self
                .step(Stage::Auth, command.to_string().as_bytes())
                .await?;
            if !reply.has_code(334) {
                return Ok(());
            }
            command = Auth::new_from_response(mechanism, creds.clone(), &reply).map_err(client)?;
        }
        Err(SmtpFailure::permanent(
            Stage::Auth,
            "the server asked for more than ten AUTH challenges",
        ))
    }

    /// Notes a failure that leaves the session unusable: no reply (a timeout, a drop, a reply
    /// that is not SMTP) or a 421.
    fn settle<T>(&mut self, result: Result<T, SmtpFailure>) -> Result<T, SmtpFailure> {
        if let Err(f) = &result
            && (f.reply.is_none() || f.code() == Some(421))
        {
            self.broken = true;
        }
        result
    }

    /// The next reply, under the time limit.
    async fn reply(&mut self, stage: Stage) -> Result<Response, SmtpFailure> {
        let result = read_reply(&mut self.io, stage, self.limit).await;
        self.settle(result)
    }

    /// Writes `bytes` (one or more commands, or a message) and reads the first reply.
    async fn step(&mut self, stage: Stage, bytes: &[u8]) -> Result<Response, SmtpFailure> {
        let written = write(&mut self.io, stage, self.limit, bytes).await;
        self.settle(written)?;
        self.reply(stage).await
    }

    /// Ends a refused transaction so that the session can carry on with the next reader.
    async fn reset(&mut self) {
        if !self.broken
            && self
                .step(Stage::MailFrom, Rset.to_string().as_bytes())
                .await
                .is_err()
        {
            self.broken = true;
        }
    }

    /// Sends one message; `Ok` carries the server's acceptance, e.g. `250 2.0.0 Ok: queued as …`.
    /// A refused recipient or `DATA` resets the transaction; the session stays open.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, SmtpFailure> {
        let ready = std::future::ready(Ok::<(), Infallible>(()));
        match self.send_when(envelope, message, ready, None).await {
            Ok(answer) => answer,
            Err(never) => match never {},
        }
    }

    /// Sends one message as [`send`](Self::send) does, but ends it (the `.` that asks the
    /// server to take it) only once `ready` is done: the envelope and the body go meanwhile.
    /// A sender whose earlier messages must be recorded before another is accepted waits for
    /// that during the transfer, not before it. If `ready` fails, the message is left without
    /// its end and the session is given up, so the server takes nothing; that error is the
    /// outer one. A long wait (an outage of the database) can outlast the server's patience
    /// (RFC 5321 4.5.3.2.6: ten minutes for the end of a message): it then drops the
    /// transaction, which is a failure of the session, the message not taken.
    ///
    /// `next`, the envelope and body of the message to go after this one, when there is one:
    /// where the server offers PIPELINING, its MAIL FROM, RCPT TO and DATA go in the same write
    /// as this message's end (RFC 2920 lets a message's content open a group), so that the
    /// server answers both at once and a message costs one round trip, not two. The session is
    /// then good for that message alone (see [`awaits_message`](Self::awaits_message)): the
    /// next call must send it, with the same envelope (only the commands are compared). A next
    /// the server could not take as it is (an address outside ASCII without SMTPUTF8, 8-bit
    /// text without 8BITMIME) is not announced: its own call gets the refusal.
    pub async fn send_when<E>(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        ready: impl Future<Output = Result<(), E>>,
        next: Option<(&Envelope, &[u8])>,
    ) -> Result<Result<String, SmtpFailure>, E> {
        match self.transaction(envelope, message, ready, next).await {
            Ok(reply) => Ok(Ok(reply)),
            Err(Ended::Smtp(f)) => Ok(Err(f)),
            Err(Ended::NotReady(e)) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// True while the envelope of a message went ahead of it (see [`send_when`](Self::send_when)):
    /// the server may be waiting for that message's text, and the session can carry no other.
    /// [`quit`](Self::quit) then closes it without QUIT (which the server would take as the
    /// message's first line), as dropping it does, and the server takes nothing.
    pub fn awaits_message(&self) -> bool {
        self.ahead.is_some()
    }

    /// The commands of the transaction for `envelope` and `message`, or the refusal a server
    /// would give for an address or a body it cannot carry.
    fn commands(&self, envelope: &Envelope, message: &[u8]) -> Result<Commands, SmtpFailure> {
        let info = &self.offers.info;
        let mut params = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                // The reader's address, refused for them alone, as a server would refuse it:
                // no other reader's delivery depends on it.
                return Err(SmtpFailure::replied(
                    Stage::RcptTo,
                    Reply::new(
                        553,
                        "5.6.7 the address has letters outside ASCII before the @ and the server does not support SMTPUTF8",
                    ),
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(SmtpFailure::replied(
                    Stage::Message,
                    Reply::new(
                        554,
                        "5.6.3 the message has 8-bit characters and the server does not support 8BITMIME",
                    ),
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(Commands {
            mail: Mail::new(envelope.from().cloned(), params).to_string(),
            rcpts: envelope
                .to()
                .iter()
                .map(|to| Rcpt::new(to.clone(), vec![]).to_string())
                .collect(),
        })
    }

    async fn transaction<E>(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        ready: impl Future<Output = Result<(), E>>,
        next: Option<(&Envelope, &[u8])>,
    ) -> Result<String, Ended<E>> {
        let commands = self.commands(envelope, message);
        match (self.ahead.take(), commands) {
            (Some(ahead), Ok(commands)) if ahead.group == commands.group() => {
                self.envelope_replies(ahead.rcpts).await?;
            }
            (Some(_), _) => {
                // Another message than the one announced (a next whose commands could not be
                // made is never announced): the server may be waiting for that one's text, so
                // the session cannot go on. The session's failure, not the reader's.
                self.broken = true;
                return Err(SmtpFailure::temporary(
                    Stage::MailFrom,
                    "the session was waiting for another message",
                )
                .into());
            }
            (None, Err(refused)) => return Err(refused.into()),
            (None, Ok(commands)) if self.offers.pipelining => self.pipelined(&commands).await?,
            (None, Ok(commands)) => self.one_by_one(&commands).await?,
        }
        // The next message's envelope, to go with this one's end.
        let ahead = next
            .filter(|_| self.offers.pipelining)
            .and_then(|(envelope, message)| self.commands(envelope, message).ok())
            .map(|c| SentAhead {
                group: c.group(),
                rcpts: c.rcpts.len(),
            });
        let after_end = ahead.as_ref().map_or(&b""[..], |a| a.group.as_bytes());
        let body = transparent(message);
        let mut ready = std::pin::pin!(ready);
        // Looked at once the envelope has gone: when it is done by then, as it mostly is, the
        // body and its end go in one write.
        match std::future::poll_fn(|cx| Poll::Ready(ready.as_mut().poll(cx))).await {
            Poll::Ready(done) => {
                done.map_err(Ended::NotReady)?;
                let written = write(
                    &mut self.io,
                    Stage::Message,
                    self.limit,
                    (&*body).chain(END_OF_DATA).chain(after_end),
                )
                .await;
                self.settle(written)?;
            }
            Poll::Pending => {
                let written = write(&mut self.io, Stage::Message, self.limit, &*body).await;
                self.settle(written)?;
                ready.await.map_err(Ended::NotReady)?;
                let written = write(
                    &mut self.io,
                    Stage::Message,
                    self.limit,
                    END_OF_DATA.chain(after_end),
                )
                .await;
                self.settle(written)?;
            }
        }
        self.ahead = ahead;
        let response = self.reply(Stage::Message).await?;
        Ok(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        ))
    }

    /// MAIL FROM, each RCPT TO and DATA, each awaiting its reply before the next.
    async fn one_by_one(&mut self, commands: &Commands) -> Result<(), SmtpFailure> {
        self.step(Stage::MailFrom, commands.mail.as_bytes()).await?;
        for rcpt in &commands.rcpts {
            if let Err(f) = self.step(Stage::RcptTo, rcpt.as_bytes()).await {
                self.reset().await;
                return Err(f);
            }
        }
        if let Err(f) = self.step(Stage::Data, Data.to_string().as_bytes()).await {
            self.reset().await;
            return Err(f);
        }
        Ok(())
    }

    /// MAIL FROM, each RCPT TO and DATA in one write (RFC 2920), then every reply in order.
    async fn pipelined(&mut self, commands: &Commands) -> Result<(), SmtpFailure> {
        let written = write(
            &mut self.io,
            Stage::MailFrom,
            self.limit,
            commands.group().as_bytes(),
        )
        .await;
        self.settle(written)?;
        self.envelope_replies(commands.rcpts.len()).await
    }

    /// The replies to a pipelined MAIL FROM, `rcpts` RCPT TO and DATA, in order. The first
    /// refusal is the transaction's; the replies after it are still read, so that the next
    /// transaction reads its own.
    async fn envelope_replies(&mut self, rcpts: usize) -> Result<(), SmtpFailure> {
        let mut refused = None;
        match self.reply(Stage::MailFrom).await {
            Ok(_) => {}
            Err(f) if self.broken => return Err(f),
            Err(f) => refused = Some(f),
        }
        let mut accepted = 0;
        for _ in 0..rcpts {
            match self.reply(Stage::RcptTo).await {
                Ok(_) => accepted += 1,
                Err(f) if self.broken => return Err(refused.unwrap_or(f)),
                Err(f) => {
                    refused.get_or_insert(f);
                }
            }
        }
        match (self.reply(Stage::Data).await, refused) {
            (Ok(_), None) => Ok(()),
            (Ok(_), Some(f)) => {
                if accepted == 0 {
                    // A server that takes DATA with no recipient gets the empty message RFC
                    // 2920 asks for, which it must refuse.
                    let _ = self.step(Stage::Message, b".\r\n").await;
                    self.reset().await;
                } else {
                    // Some recipients were accepted and the message cannot be taken back
                    // short of hanging up.
                    self.broken = true;
                }
                Err(f)
            }
            (Err(f), refused) if self.broken => Err(refused.unwrap_or(f)),
            (Err(f), refused) => {
                self.reset().await;
                Err(refused.unwrap_or(f))
            }
        }
    }

    /// `MAIL FROM` of the envelope sender, then `RSET`: whether the server takes mail from us,
    /// without sending any.
    pub async fn try_sender(&mut self, from: Option<&Address>) -> Result<(), SmtpFailure> {
        let mail = Mail::new(from.cloned(), vec![]).to_string();
        self.step(Stage::MailFrom, mail.as_bytes()).await?;
        self.step(Stage::MailFrom, Rset.to_string().as_bytes())
            .await?;
        Ok(())
    }

    /// False once the session cannot be used again.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Says QUIT and waits a little for the answer; a session waiting for a message's text
    /// (an envelope went ahead of it) is closed without it, so that the server takes nothing.
    pub async fn quit(mut self) {
        if self.is_usable() && self.ahead.is_none() {
            let limit = self.limit.min(Duration::from_secs(5));
            let quit = Quit.to_string();
            if write(&mut self.io, Stage::MailFrom, limit, quit.as_bytes())
                .await
                .is_ok()
            {
                let _ = read_reply(&mut self.io, Stage::MailFrom, limit).await;
            }
        }
    }
}
