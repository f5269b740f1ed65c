//! The typed SMTP failure: the step it happened at ([`Stage`]), the server's [`Reply`] with its
//! code and enhanced status, and its classification: permanent or not, whose it is
//! ([`Scope`]), whether it says the mailbox does not exist or asks us to slow down, and which
//! setting is most likely at fault.

use std::fmt;

/// The step of the SMTP conversation a failure happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    /// The `DATA` command itself (before the message is sent).
    Data,
    /// The reply after the message's final dot.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::StartTls => "STARTTLS",
            Self::Auth => "AUTH",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "end of DATA",
        })
    }
}

/// Whom a failure is about, which decides whose record it may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The connection, the login, the sender, or the server's state (a 421, a rate limit):
    /// not a fact about any reader.
    Session,
    /// The reply to `RCPT TO`: about this reader's address.
    Recipient,
    /// The reply to `DATA` or after the message: about this message.
    Message,
}

/// A server's reply: its code, the RFC 3463 enhanced status if it gave one, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: &str) -> Self {
        Self {
            code,
            enhanced: enhanced_status(text).map(str::to_string),
            text: text.trim().to_string(),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a message (or a session) did not go: where, whether it may work later, and the
/// server's reply when there was one (none for a refused connection, a timeout, a drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    pub stage: Stage,
    pub permanent: bool,
    pub reply: Option<Reply>,
    /// What went wrong when the server gave no reply (a network error, a timeout, a missing
    /// extension).
    pub cause: String,
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind(), self.stage, self.detail())
    }
}

impl std::error::Error for SmtpFailure {}

/// Enhanced codes that say an address does not exist (or no longer takes mail): RFC 3463's
/// 5.1.1 bad mailbox, 5.1.6 moved, 5.1.10 null MX, 5.2.1 disabled.
const NO_SUCH_MAILBOX: [&str; 4] = ["5.1.1", "5.1.6", "5.1.10", "5.2.1"];

/// Without an enhanced code, a 550 or 553 is a dead address only when its text says so: a bare
/// 550 is as often a policy refusal ("relay denied", "spam"), which is not the reader's fault.
/// RFC 5321's stock 550 text, "mailbox unavailable", is not among them: servers give it for
/// blocklisted senders too.
const NO_SUCH_MAILBOX_WORDS: [&str; 8] = [
    "no such user",
    "user unknown",
    "unknown user",
    "no such mailbox",
    "mailbox not found",
    "does not exist",
    "invalid recipient",
    "recipient not found",
];

/// Enhanced codes that are about the sender or the login, wherever they come (Postfix checks
/// the sender at `RCPT TO`): 5.1.7/5.1.8 bad sender, 5.7.57/5.7.8 not authenticated.
const ABOUT_THE_SENDER: [&str; 6] = ["5.1.7", "5.1.8", "5.7.57", "5.7.8", "4.1.8", "4.7.57"];

/// Enhanced codes of servers asking us to slow down: Microsoft 365's 4.4.2 submission rate and
/// 4.3.2 thread limit, 4.5.3 too many recipients, Gmail's 4.7.28 and 4.7.0 rate limits.
const RATE_COMPLAINTS: [&str; 5] = ["4.4.2", "4.3.2", "4.5.3", "4.7.28", "4.7.0"];

impl SmtpFailure {
    pub(super) fn replied(stage: Stage, reply: Reply) -> Self {
        Self {
            stage,
            permanent: reply.code >= 500,
            reply: Some(reply),
            cause: String::new(),
        }
    }

    pub(super) fn temporary(stage: Stage, cause: impl Into<String>) -> Self {
        Self {
            stage,
            permanent: false,
            reply: None,
            cause: cause.into(),
        }
    }

    pub(super) fn permanent(stage: Stage, cause: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::temporary(stage, cause)
        }
    }

    /// The failure a refusal says: its code, and its lines joined with spaces with an enhanced
    /// status repeated at the start of each line kept once (as lettre's errors had them).
    pub(super) fn from_response(
        stage: Stage,
        response: &lettre::transport::smtp::response::Response,
    ) -> Self {
        let mut lines = response.message();
        let first = lines.next().unwrap_or("");
        let code = u16::from(response.code());
        let class = (code / 100).to_string();
        let repeated = enhanced_status(first)
            .filter(|e| first.starts_with(e) && e.starts_with(class.as_str()));
        let mut text = first.to_string();
        for line in lines {
            text.push(' ');
            text.push_str(match repeated {
                Some(e) => line
                    .strip_prefix(e)
                    .filter(|rest| rest.starts_with(' '))
                    .map_or(line, str::trim_start),
                None => line,
            });
        }
        Self::replied(stage, Reply::new(code, &text))
    }

    fn kind(&self) -> &'static str {
        if self.permanent {
            "refused"
        } else {
            "failed for now"
        }
    }

    /// The server's reply, or what went wrong without one.
    pub fn detail(&self) -> String {
        match &self.reply {
            Some(r) => r.to_string(),
            None => self.cause.clone(),
        }
    }

    pub fn code(&self) -> Option<u16> {
        self.reply.as_ref().map(|r| r.code)
    }

    pub fn enhanced(&self) -> Option<&str> {
        self.reply.as_ref().and_then(|r| r.enhanced.as_deref())
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub fn is_transient(&self) -> bool {
        !self.permanent
    }

    /// Whom this failure is about. Everything before `RCPT TO`, every dropped connection or
    /// timeout, a 421 anywhere, a refusal of the sender or the login anywhere, and a server
    /// asking us to slow down are the session's; otherwise the reply to `RCPT TO` is the
    /// recipient's and the reply to `DATA` or the message is the message's.
    pub fn scope(&self) -> Scope {
        match self.stage {
            Stage::Connect
            | Stage::Greeting
            | Stage::Ehlo
            | Stage::StartTls
            | Stage::Auth
            | Stage::MailFrom => Scope::Session,
            Stage::RcptTo | Stage::Data | Stage::Message => {
                let Some(reply) = &self.reply else {
                    return Scope::Session;
                };
                let enhanced = reply.enhanced.as_deref();
                // 4.7.1 to RCPT TO is what most greylisting answers ("451 4.7.1 Try again
                // later"): the reader's, counted. Other 4.3.x, 4.4.x and 4.7.x are the server's.
                let greylisting = self.stage == Stage::RcptTo && enhanced == Some("4.7.1");
                let server_state = !self.permanent
                    && !greylisting
                    && enhanced.is_some_and(|e| {
                        e.starts_with("4.3.") || e.starts_with("4.4.") || e.starts_with("4.7.")
                    });
                if matches!(reply.code, 421 | 530 | 535)
                    || enhanced.is_some_and(|e| ABOUT_THE_SENDER.contains(&e))
                    || server_state
                    || self.is_rate_complaint()
                {
                    Scope::Session
                } else if self.stage == Stage::RcptTo {
                    Scope::Recipient
                } else {
                    Scope::Message
                }
            }
        }
    }

    /// A permanent refusal of the recipient saying the mailbox does not exist: the one failure
    /// that marks a subscriber bounced.
    pub fn is_no_such_mailbox(&self) -> bool {
        let Some(reply) = &self.reply else {
            return false;
        };
        if !self.permanent || self.scope() != Scope::Recipient {
            return false;
        }
        match reply.enhanced.as_deref() {
            Some(e) => NO_SUCH_MAILBOX.contains(&e),
            // 551 "user not local" names the address as gone; 550 and 553 only with words.
            None => {
                let text = reply.text.to_lowercase();
                reply.code == 551
                    || (matches!(reply.code, 550 | 553)
                        && NO_SUCH_MAILBOX_WORDS.iter().any(|w| text.contains(w)))
            }
        }
    }

    /// A temporary reply asking us to send more slowly.
    pub fn is_rate_complaint(&self) -> bool {
        let Some(reply) = &self.reply else {
            return false;
        };
        if self.permanent {
            return false;
        }
        if reply
            .enhanced
            .as_deref()
            .is_some_and(|e| RATE_COMPLAINTS.contains(&e))
        {
            return true;
        }
        let text = reply.text.to_lowercase();
        ["too many", "rate limit", "exceeded", "slow down", "throttl"]
            .iter()
            .any(|w| text.contains(w))
    }

    /// The same refusal as `other`: the same step, code and enhanced status.
    pub fn same_as(&self, other: &Self) -> bool {
        self.stage == other.stage
            && self.code() == other.code()
            && self.enhanced() == other.enhanced()
    }

    /// The setting most likely at fault when the session is refused for good.
    pub fn suspect(&self) -> &'static str {
        let enhanced = self.enhanced().unwrap_or("");
        if self.stage == Stage::Auth
            || matches!(self.code(), Some(530 | 535))
            || matches!(enhanced, "5.7.57" | "5.7.8" | "5.7.3")
        {
            "the user name and password in SMTP_URL (smtp.url): the server refused the login, or requires one"
        } else if self.stage == Stage::MailFrom || matches!(enhanced, "5.1.7" | "5.1.8") {
            "mail.from: the server does not let this account send as that address"
        } else if self.stage == Stage::StartTls {
            "the TLS mode: SMTP_URL's scheme (smtp:// uses STARTTLS, smtps:// TLS from the first byte), and smtp.ca_file for a relay with a private CA"
        } else if matches!(self.stage, Stage::Connect | Stage::Greeting | Stage::Ehlo) {
            "the host and port in SMTP_URL (smtp.url)"
        } else {
            "the server's reply above"
        }
    }
}

/// The RFC 3463 enhanced status code in a reply, such as `5.1.1` (no such mailbox).
pub fn enhanced_status(reply: &str) -> Option<&str> {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | ','))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
        })
}
