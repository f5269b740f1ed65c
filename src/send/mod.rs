//! Delivering an issue: SMTP connections, the delivery ledger, throttling, personalised messages.

pub mod smtp;
