//! Shared by the integration tests: running the binary, the test's own database, and the
//! servers and browsers a test talks to. Each test module uses some of it.

mod binary;
pub mod browser;
pub mod dkim;
pub mod dovecot;
pub mod issues;
pub mod postfix;
pub mod preview;
pub mod scripted_smtp;
pub mod sending;
pub mod smtp_sink;
pub mod store;
pub mod web;

pub use binary::{Run, lscp_mail, run_lscp_mail};

/// A local port nothing listens on now (another process may take it before we do).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
