//! The delivery ledger in PostgreSQL: campaigns, one delivery per recipient, and the senders
//! working them. Every statement is short and set-based; no transaction is held across an SMTP
//! conversation. What `send` does with them is in `send::ledger` and `send::campaign`.
//!
//! This module holds the ledger's ids and re-exports the rest: its statements are in
//! `campaigns`, `claims`, `recipients`, `counts` and `senders`, the transaction that prepares a
//! campaign in `prepare`, and the [`Store`](crate::store::Store)'s methods over them in `handle`.

mod campaigns;
mod claims;
mod counts;
mod handle;
mod prepare;
mod recipients;
mod senders;

pub use campaigns::*;
pub use claims::*;
pub use counts::*;
pub use prepare::*;
pub use recipients::*;
pub use senders::*;

/// A campaign's number in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct CampaignId(i64);

impl CampaignId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for CampaignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One delivery's number in the ledger: one recipient of one campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct DeliveryId(i64);

impl DeliveryId {
    pub fn get(self) -> i64 {
        self.0
    }

    /// A delivery id that names no row, for tests of what carries ids around.
    #[cfg(test)]
    pub(crate) fn for_test(n: i64) -> Self {
        Self(n)
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a delivery is: the `deliveries.status` column's values (a `CHECK` keeps them to
/// these), written and read back by sqlx, which rejects any other value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Padded to a width when one is asked for (`{status:7}` lines `status`'s errors up).
impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus;

    #[test]
    fn a_delivery_status_fills_the_width_it_is_given_as_its_text_did() {
        assert_eq!(format!("{:7}|", DeliveryStatus::Failed), "failed |");
        assert_eq!(format!("{:7}|", DeliveryStatus::Queued), "queued |");
        assert_eq!(DeliveryStatus::Skipped.to_string(), "skipped");
    }
}
