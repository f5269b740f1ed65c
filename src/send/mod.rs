//! Delivering an issue: SMTP connections, the delivery ledger, throttling, personalised messages,
//! and the campaign runner that ties them together; [`outgoing`] makes (and signs) every
//! message the project sends, the sign-up mails included.

pub mod campaign;
pub mod control;
pub mod dkim;
pub mod estimate;
pub mod job;
pub mod ledger;
pub mod outgoing;
pub mod pace;
pub mod personalise;
pub mod presence;
pub mod smtp;
pub mod throttle;
