//! lscp-mail: compose, send and serve a safeguarding children partnership's monthly
//! email newsletter.
//!
//! One module per job:
//! - [`content`]: an issue folder of TOML sections, loaded and checked;
//! - [`render`]: handlebars templates to MJML, MJML to HTML with `mrml`, plus the plain-text part;
//! - [`store`]: subscribers, their topics and the consent log in PostgreSQL;
//! - [`mail`]: every message the project sends, made, signed and handed to the SMTP server;
//! - [`bounces`]: `lscp-mail bounces`, what comes back after sending;
//! - [`links`]: `check --links`, every address of an issue requested;
//! - [`next_issue`]: `lscp-mail new`, next month's issue started from the last;
//! - [`preview`]: `lscp-mail preview`, the editor's live preview;
//! - [`web`]: `lscp-mail serve`, the pages behind the email's links;
//! - [`config`]: `lscp-mail.toml` and the environment;
//! - [`cli`]: the command-line front end, one file per subcommand.

pub mod bounces;
pub mod cli;
pub mod config;
pub mod content;
pub mod links;
pub mod mail;
pub mod next_issue;
pub mod preview;
pub mod render;
pub mod retry;
pub mod send;
pub mod store;
pub mod web;
