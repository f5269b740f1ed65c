//! One SMTP connection per worker, spoken by us: `TCP_NODELAY` is set (lettre 0.11.23 does
//! not, and the message body and its final `.` then stall ~40 ms on Nagle and delayed ACK),
//! every exchange is under a timeout (lettre's covers only connecting), and a server offering
//! PIPELINING gets MAIL FROM, RCPT TO and DATA in one write. Every reply is read and kept with
//! its step, so that a failure knows where it happened (the session, one recipient, one
//! message) and keeps the server's reply code and enhanced status: only a fact about one
//! reader may change that reader's record.
//!
//! - `target`: the `SMTP_URL` and CA file, parsed into an [`SmtpTarget`].
//! - `failure`: the typed [`SmtpFailure`] and its classification.
//! - `connection`: the [`Connection`]: greeting, EHLO, STARTTLS, AUTH and the transactions.
//! - `wire`: replies read and parsed, commands written, the body made transparent.
//! - `redaction`: [`redact`], for logs.

mod connection;
mod failure;
mod redaction;
mod target;
#[cfg(test)]
mod tests;
mod wire;

pub use connection::Connection;
pub use failure::{Reply, Scope, SmtpFailure, Stage, enhanced_status};
pub use redaction::redact;
pub use target::{Security, SmtpError, SmtpTarget};
