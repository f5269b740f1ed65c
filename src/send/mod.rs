//! Delivering an issue: the delivery ledger, throttling, personalised messages, and the
//! campaign runner that ties them together. The messages are made and handed to the server by
//! [`crate::mail`], which `serve`'s sign-up mails share.

pub mod campaign;
pub mod control;
pub mod estimate;
pub mod job;
pub mod ledger;
pub mod pace;
pub mod personalise;
pub mod presence;
pub mod throttle;
