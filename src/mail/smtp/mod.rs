//! One SMTP connection per worker, opened by us so that `TCP_NODELAY` is set (lettre 0.11.23
//! does not, and the message body and its final `.` then stall ~40 ms on Nagle and delayed
//! ACK), with every exchange under a timeout (lettre's covers only connecting). Each command
//! of a transaction is sent on its own so that a failure knows where it happened (the session,
//! one recipient, one message) and keeps the server's reply code and enhanced status: only a
//! fact about one reader may change that reader's record.
//!
//! - `target`: the `SMTP_URL` and CA file, parsed into an [`SmtpTarget`].
//! - `failure`: the typed [`SmtpFailure`] and its classification.
//! - `connection`: the [`Connection`] and its timed exchanges (with `greeting` read first).
//! - `redaction`: [`redact`], for logs.

mod connection;
mod failure;
mod greeting;
mod redaction;
mod target;
#[cfg(test)]
mod tests;

pub use connection::Connection;
pub use failure::{Reply, Scope, SmtpFailure, Stage, enhanced_status};
pub use redaction::redact;
pub use target::{Security, SmtpError, SmtpTarget};
