//! What comes back after the relay accepted a message: delivery reports (hard and soft
//! bounces), complaints and emailed unsubscribes, each recorded once under its report key, in
//! the same transaction as its effect, so a report read twice (or after a crash half-way)
//! changes nothing the second time.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use super::consent::{self, ConsentAction, ConsentSource};
use super::email::redact_addresses;
use super::subscriber::{self, Change, SubscriberId, SubscriberStatus};
use super::token::{self, LinkToken};
use super::{BadLink, Store, StoreError, SubscriberEmail};

/// A delivery we made, found by its Message-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub delivery_id: i64,
    pub campaign_id: i64,
    /// `None` once the reader was erased.
    pub subscriber_id: Option<SubscriberId>,
    /// The reader's normalised address, to check a report's own recipient against.
    pub email_normalised: Option<String>,
}

/// What a report is, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A permanent failure (5.x.x).
    Hard,
    /// A temporary failure or a delay (4.x.x).
    Soft,
    Complaint,
    Unsubscribe,
}

impl ReportKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Complaint => "complaint",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// A report's identity (a SHA-256 of its Message-ID, else of its bytes) and when it was made.
#[derive(Debug, Clone)]
pub struct ReportKey {
    pub key: [u8; 32],
    pub reported_at: DateTime<Utc>,
}

/// What recording a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The same report was recorded before: nothing changed now.
    AlreadyRead,
    /// Recorded; `status` says whether the reader's status changed.
    Recorded {
        status: Option<Change<SubscriberStatus>>,
    },
}

/// What a delivery report says of the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    /// A temporary failure or a delay (4.x.x): counted towards the soft limit.
    Soft,
    /// Permanent for a reason other than the address (policy, content): the delivery only.
    Hard,
    /// Permanent and about the address itself: the reader becomes `bounced` too.
    DeadMailbox,
}

/// Soft bounces that make a reader bounced: `limit` within `days`.
#[derive(Debug, Clone, Copy)]
pub struct SoftLimit {
    pub limit: u32,
    pub days: u32,
}

/// Bounces and complaints of one campaign, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BounceCounts {
    pub hard: i64,
    pub soft: i64,
    pub complaints: i64,
    pub unsubscribes: i64,
}

impl Store {
    /// The delivery that went out with `message_id` (with angle brackets, as the ledger keeps it).
    pub async fn delivery_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<Delivered>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        delivery_by_message_id(&mut conn, message_id).await
    }

    /// A delivery report: the delivery records it; a bounce about the address itself, or the
    /// soft bounce that reaches `soft.limit` within `soft.days`, makes an active reader
    /// `bounced`. A hard bounce for another reason (policy, content) changes only the delivery.
    pub async fn record_bounce(
        &self,
        report: &ReportKey,
        delivered: &Delivered,
        bounce: Bounce,
        status_code: &str,
        diagnostic: &str,
        soft: SoftLimit,
    ) -> Result<Taken, StoreError> {
        let kind = match bounce {
            Bounce::Soft => ReportKind::Soft,
            Bounce::Hard | Bounce::DeadMailbox => ReportKind::Hard,
        };
        let mut tx = self.pool.begin().await?;
        if !insert_report(
            &mut tx,
            report,
            kind,
            Some(delivered),
            delivered.subscriber_id,
            Some(status_code),
        )
        .await?
        {
            return Ok(Taken::AlreadyRead);
        }
        mark_delivery(
            &mut tx,
            delivered.delivery_id,
            kind,
            status_code,
            diagnostic,
        )
        .await?;
        let mut status = None;
        if let Some(id) = delivered.subscriber_id {
            let detail = match bounce {
                Bounce::DeadMailbox => {
                    Some(json!({ "from": "active", "to": "bounced", "smtp_status": status_code }))
                }
                Bounce::Hard => None,
                Bounce::Soft => {
                    let n = soft_bounces(&mut tx, id, soft.days).await?;
                    (n >= i64::from(soft.limit)).then(|| {
                        json!({ "from": "active", "to": "bounced", "smtp_status": status_code,
                                "soft_bounces": n, "days": soft.days })
                    })
                }
            };
            if let Some(detail) = detail {
                status = change_status(
                    &mut tx,
                    id,
                    &[SubscriberStatus::Active],
                    SubscriberStatus::Bounced,
                    ConsentAction::Bounced,
                    &ConsentSource::Bounce,
                    detail,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Taken::Recorded { status })
    }

    /// A complaint (an ARF report): the reader is unsubscribed and never mailed again unless
    /// they sign up anew.
    pub async fn record_complaint(
        &self,
        report: &ReportKey,
        delivered: &Delivered,
        feedback_type: &str,
    ) -> Result<Taken, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !insert_report(
            &mut tx,
            report,
            ReportKind::Complaint,
            Some(delivered),
            delivered.subscriber_id,
            Some(feedback_type),
        )
        .await?
        {
            return Ok(Taken::AlreadyRead);
        }
        mark_complaint(&mut tx, delivered.delivery_id).await?;
        let mut status = None;
        if let Some(id) = delivered.subscriber_id {
            status = leave(
                &mut tx,
                id,
                &ConsentSource::Complaint,
                json!({ "feedback_type": feedback_type }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Taken::Recorded { status })
    }

    /// A mail to the reader's own `List-Unsubscribe` mailto: they are unsubscribed.
    pub async fn record_emailed_unsubscribe(
        &self,
        report: &ReportKey,
        link: &LinkToken,
    ) -> Result<Taken, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = match token::secret_for(&mut tx, link.id()).await? {
            Some((id, stored)) if link.matches(&stored) => id,
            _ => return Err(StoreError::BadLink(BadLink)),
        };
        if !insert_report(
            &mut tx,
            report,
            ReportKind::Unsubscribe,
            None,
            Some(id),
            None,
        )
        .await?
        {
            return Ok(Taken::AlreadyRead);
        }
        let status = leave(&mut tx, id, &ConsentSource::Email, json!({})).await?;
        tx.commit().await?;
        Ok(Taken::Recorded { status })
    }

    /// Brings a bounced reader back: an administrator's decision, in the consent log. Soft
    /// bounces from before it no longer count.
    pub async fn reactivate(
        &self,
        email: &SubscriberEmail,
    ) -> Result<Change<SubscriberStatus>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let s = subscriber::locked(&mut tx, email).await?;
        if s.status != SubscriberStatus::Bounced {
            return Err(StoreError::NotBounced {
                email: s.email.to_string(),
                status: s.status,
            });
        }
        let change = change_status(
            &mut tx,
            s.id,
            &[SubscriberStatus::Bounced],
            SubscriberStatus::Active,
            ConsentAction::Reactivated,
            &ConsentSource::Cli,
            json!({}),
        )
        .await?
        .unwrap_or(Change {
            before: s.status,
            after: s.status,
        });
        tx.commit().await?;
        Ok(change)
    }

    /// Bounces and complaints recorded for a campaign.
    pub async fn bounce_counts(
        &self,
        campaign_id: super::ledger::CampaignId,
    ) -> Result<BounceCounts, StoreError> {
        let r = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE kind = 'hard') AS "hard!",
                      count(*) FILTER (WHERE kind = 'soft') AS "soft!",
                      count(*) FILTER (WHERE kind = 'complaint') AS "complaints!",
                      count(*) FILTER (WHERE kind = 'unsubscribe') AS "unsubscribes!"
               FROM bounce_reports WHERE campaign_id = $1"#,
            campaign_id.get()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(BounceCounts {
            hard: r.hard,
            soft: r.soft,
            complaints: r.complaints,
            unsubscribes: r.unsubscribes,
        })
    }
}

/// A complaint or an emailed unsubscribe: anyone not already gone becomes `unsubscribed`.
async fn leave(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
    source: &ConsentSource,
    extra: serde_json::Value,
) -> Result<Option<Change<SubscriberStatus>>, StoreError> {
    change_status(
        tx,
        id,
        &[
            SubscriberStatus::Pending,
            SubscriberStatus::Active,
            SubscriberStatus::Bounced,
        ],
        SubscriberStatus::Unsubscribed,
        ConsentAction::Unsubscribed,
        source,
        extra,
    )
    .await
}

/// Moves the subscriber to `to` when their status is one of `from`, and logs it with the old
/// status; `None` when it was not.
async fn change_status(
    tx: &mut Transaction<'_, Postgres>,
    id: SubscriberId,
    from: &[SubscriberStatus],
    to: SubscriberStatus,
    action: ConsentAction,
    source: &ConsentSource,
    extra: serde_json::Value,
) -> Result<Option<Change<SubscriberStatus>>, StoreError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let before = sqlx::query_scalar!(
        r#"UPDATE subscribers s SET status = $2, updated_at = now()
           FROM (SELECT id, status FROM subscribers WHERE id = $1 FOR UPDATE) old
           WHERE s.id = old.id AND old.status = ANY($3)
           RETURNING old.status AS "status: SubscriberStatus""#,
        id as SubscriberId,
        to as SubscriberStatus,
        &from as &[&str]
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let mut detail = json!({ "from": before.as_str(), "to": to.as_str() });
    if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
        for (k, v) in more {
            if k != "from" && k != "to" {
                d.insert(k, v);
            }
        }
    }
    consent::record(tx, id, action, source, detail).await?;
    Ok(Some(Change { before, after: to }))
}

async fn delivery_by_message_id(
    conn: &mut PgConnection,
    message_id: &str,
) -> Result<Option<Delivered>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT d.id, d.campaign_id, d.subscriber_id AS "subscriber_id: SubscriberId",
                  s.email_normalised AS "email?"
           FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
           WHERE d.message_id = $1"#,
        message_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Delivered {
        delivery_id: r.id,
        campaign_id: r.campaign_id,
        subscriber_id: r.subscriber_id,
        email_normalised: r.email,
    }))
}

/// Records the report unless its key is known; false when it was (nothing else may change).
async fn insert_report(
    tx: &mut Transaction<'_, Postgres>,
    report: &ReportKey,
    kind: ReportKind,
    delivered: Option<&Delivered>,
    subscriber_id: Option<SubscriberId>,
    status_code: Option<&str>,
) -> Result<bool, StoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO bounce_reports
               (report_key, kind, delivery_id, campaign_id, subscriber_id, status_code, reported_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (report_key) DO NOTHING
           RETURNING id"#,
        &report.key[..],
        kind.as_str(),
        delivered.map(|d| d.delivery_id),
        delivered.map(|d| d.campaign_id),
        subscriber_id as Option<SubscriberId>,
        status_code,
        report.reported_at
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.is_some())
}

/// A hard bounce is final: a later soft report for the same delivery does not undo it. The
/// diagnostic is kept without any address it quotes, as replies are.
async fn mark_delivery(
    tx: &mut Transaction<'_, Postgres>,
    delivery_id: i64,
    kind: ReportKind,
    status_code: &str,
    diagnostic: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE deliveries
           SET bounce = CASE WHEN bounce = 'hard' THEN 'hard' ELSE $2 END,
               bounce_status = CASE WHEN bounce = 'hard' THEN bounce_status ELSE $3 END,
               bounce_diagnostic = CASE WHEN bounce = 'hard' THEN bounce_diagnostic ELSE $4 END,
               bounced_at = now(), updated_at = now()
           WHERE id = $1"#,
        delivery_id,
        kind.as_str(),
        status_code,
        &*redact_addresses(diagnostic)
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn mark_complaint(
    tx: &mut Transaction<'_, Postgres>,
    delivery_id: i64,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE deliveries SET complained_at = now(), updated_at = now() WHERE id = $1",
        delivery_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deliveries to the reader soft-bounced within `days` (a server's repeated delay warnings
/// about one message count once), not counting those before an administrator last
/// reactivated them.
async fn soft_bounces(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
    days: u32,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(DISTINCT delivery_id) AS "n!" FROM bounce_reports
           WHERE subscriber_id = $1 AND kind = 'soft'
             AND reported_at > now() - make_interval(days => $2)
             AND read_at > coalesce((SELECT max(at) FROM consent_log
                                     WHERE subscriber_id = $1 AND action = 'reactivated'),
                                    '-infinity')"#,
        subscriber_id as SubscriberId,
        days as i32
    )
    .fetch_one(&mut **tx)
    .await?)
}
