//! The consent and change log: what UK GDPR and PECR ask a sender to be able to show about
//! each subscriber. Entries are only ever appended (a trigger in the schema enforces it); an
//! erasure detaches them from the person and ties them to the tombstone instead.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};

use super::StoreError;
use super::subscriber::SubscriberId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAction {
    /// Added (pending or active), or brought back at the practitioner's request.
    Subscribed,
    /// Double opt-in completed: pending became active.
    Confirmed,
    TopicsChanged,
    Unsubscribed,
    Bounced,
    Blocked,
    /// The personal data was removed; only the tombstone and this history remain.
    Erased,
    /// The link secret was replaced, so links in earlier messages stop working.
    LinkRotated,
    /// An administrator brought back a bounced reader (`subscribers reactivate`).
    Reactivated,
}

impl ConsentAction {
    pub const ALL: [ConsentAction; 9] = [
        Self::Subscribed,
        Self::Confirmed,
        Self::TopicsChanged,
        Self::Unsubscribed,
        Self::Bounced,
        Self::Blocked,
        Self::Erased,
        Self::LinkRotated,
        Self::Reactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribed => "subscribed",
            Self::Confirmed => "confirmed",
            Self::TopicsChanged => "topics_changed",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
            Self::Blocked => "blocked",
            Self::Erased => "erased",
            Self::LinkRotated => "link_rotated",
            Self::Reactivated => "reactivated",
        }
    }

    fn from_store(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown consent action `{s}`")))
    }
}

impl fmt::Display for ConsentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a change came from: `import:FILE`, `web`, `cli`, `one-click` (the `List-Unsubscribe`
/// button of a mail client), `bounce` (a delivery report), `complaint` (a provider's abuse
/// report) or `email` (a mail to the `List-Unsubscribe` mailto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentSource {
    /// The file as it was named on the command line.
    Import(String),
    Web,
    Cli,
    OneClick,
    Bounce,
    Complaint,
    Email,
}

impl ConsentSource {
    pub fn import(file: &std::path::Path) -> Self {
        Self::Import(file.display().to_string())
    }

    fn from_store(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "web" => Self::Web,
            "cli" => Self::Cli,
            "one-click" => Self::OneClick,
            "bounce" => Self::Bounce,
            "complaint" => Self::Complaint,
            "email" => Self::Email,
            _ => match s.strip_prefix("import:") {
                Some(file) if !file.is_empty() => Self::Import(file.to_string()),
                _ => return Err(StoreError::Corrupt(format!("unknown consent source `{s}`"))),
            },
        })
    }
}

impl fmt::Display for ConsentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Import(file) => write!(f, "import:{file}"),
            Self::Web => f.write_str("web"),
            Self::Cli => f.write_str("cli"),
            Self::OneClick => f.write_str("one-click"),
            Self::Bounce => f.write_str("bounce"),
            Self::Complaint => f.write_str("complaint"),
            Self::Email => f.write_str("email"),
        }
    }
}

/// One line of a subscriber's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentEntry {
    pub at: DateTime<Utc>,
    pub action: ConsentAction,
    pub source: ConsentSource,
    /// Statuses and topic slugs; never an address, a name or a token.
    pub detail: serde_json::Value,
}

pub(crate) async fn record(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
    action: ConsentAction,
    source: &ConsentSource,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    record_many(tx, &[subscriber_id.get()], action, source, &[detail]).await
}

/// The same entry for many subscribers at once, each with its own detail.
pub(crate) async fn record_many(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_ids: &[i64],
    action: ConsentAction,
    source: &ConsentSource,
    details: &[serde_json::Value],
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO consent_log (subscriber_id, action, source, detail)
         SELECT id, $3, $4, detail FROM UNNEST($1::bigint[], $2::jsonb[]) AS r (id, detail)",
        subscriber_ids,
        details,
        action.as_str(),
        source.to_string(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn history(
    conn: &mut PgConnection,
    subscriber_id: SubscriberId,
) -> Result<Vec<ConsentEntry>, StoreError> {
    let rows = sqlx::query!(
        "SELECT at, action, source, detail FROM consent_log WHERE subscriber_id = $1 ORDER BY id",
        subscriber_id as SubscriberId
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| entry(r.at, &r.action, &r.source, r.detail))
        .collect()
}

pub(crate) fn entry(
    at: DateTime<Utc>,
    action: &str,
    source: &str,
    detail: serde_json::Value,
) -> Result<ConsentEntry, StoreError> {
    Ok(ConsentEntry {
        at,
        action: ConsentAction::from_store(action)?,
        source: ConsentSource::from_store(source)?,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_reads_back_as_it_was_written() {
        for source in [
            ConsentSource::Import("subscribers/example.csv".into()),
            ConsentSource::Web,
            ConsentSource::Cli,
            ConsentSource::OneClick,
            ConsentSource::Bounce,
            ConsentSource::Complaint,
            ConsentSource::Email,
        ] {
            assert_eq!(
                ConsentSource::from_store(&source.to_string()).ok(),
                Some(source)
            );
        }
        assert!(ConsentSource::from_store("import:").is_err());
        assert!(ConsentSource::from_store("fax").is_err());
    }

    #[test]
    fn every_action_reads_back_as_it_was_written() {
        for action in ConsentAction::ALL {
            assert_eq!(
                ConsentAction::from_store(action.as_str()).ok(),
                Some(action)
            );
        }
    }
}
