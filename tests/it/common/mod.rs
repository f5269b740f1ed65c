//! Shared by the integration tests; each test file uses some of it.
#![allow(dead_code)]

pub mod browser;
pub mod dkim;
pub mod dovecot;
pub mod postfix;
pub mod scripted_smtp;
pub mod sending;
pub mod smtp_sink;
pub mod web;

/// A local port nothing listens on now (another process may take it before we do).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
