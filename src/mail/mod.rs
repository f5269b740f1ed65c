//! Mail as the project sends it, below the jobs that send it: [`outgoing`] makes (and
//! DKIM-signs, with the key [`dkim`] reads) every message, the newsletter and the sign-up
//! mails alike, and [`smtp`] hands it to the server, keeping what the server said as a typed
//! failure. `send` (the newsletter) and `web` (`serve`'s confirmation mail) both use it.

pub mod dkim;
pub mod outgoing;
pub mod smtp;
