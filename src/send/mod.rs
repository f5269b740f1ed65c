//! Delivering an issue: SMTP connections, the delivery ledger, throttling, personalised messages,
//! and the campaign runner that ties them together.

pub mod campaign;
pub mod dkim;
pub mod ledger;
pub mod personalise;
pub mod smtp;
pub mod throttle;
