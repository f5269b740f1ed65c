//! The integration tests: one binary, a module per area, so the crate is linked once.
//!
//! `common` holds the shared helpers (the binary, databases, servers, browsers); each other
//! module pins down the behaviour of one job from the outside.

mod common;

mod bounces;
mod browser_email;
mod campaign_control;
mod campaign_pace;
mod check_links;
mod check_rules;
mod cli_compose;
mod cli_new;
mod cli_subscribers;
mod docs;
mod fuzz;
mod hardening;
mod issue_variants;
mod layers;
mod local_images;
mod preview;
mod send_delivery;
mod send_faults;
mod send_messages;
mod send_outage;
mod send_process;
mod shipped_issues;
mod smtp_session;
mod special_edition;
mod store_import;
mod store_subscribers;
mod web_browser;
mod web_cli;
mod web_pages;
