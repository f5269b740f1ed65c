//! What `subscribers list` and `subscribers show` print: the table, one subscriber's record,
//! and the log of their changes in words.

use std::process::ExitCode;

use crate::cli::output::OutputError;
use crate::cli::{code, exit};
use crate::store::{ConsentEntry, Store, SubscriberEmail};

pub(super) fn print_list(subscribers: &[crate::store::Subscriber]) -> Result<(), OutputError> {
    let width = subscribers
        .iter()
        .map(|s| s.email.as_str().chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let topics = subscribers
        .iter()
        .map(|s| topics_text(&s.topics).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    outln!(
        "{:width$}  {:12}  {:topics$}  NAME",
        "EMAIL",
        "STATUS",
        "TOPICS"
    )?;
    for s in subscribers {
        let who = match (&s.name, &s.organisation) {
            (Some(n), Some(o)) => format!("{n} ({o})"),
            (Some(n), None) => n.to_string(),
            (None, Some(o)) => format!("({o})"),
            (None, None) => String::new(),
        };
        outln!(
            "{:width$}  {:12}  {:topics$}  {who}",
            s.email.as_str(),
            s.status.as_str(),
            topics_text(&s.topics)
        )?;
    }
    outln!(
        "{} subscriber{}",
        subscribers.len(),
        plural(subscribers.len())
    )
}

pub(super) async fn show(store: &Store, email: &SubscriberEmail) -> anyhow::Result<ExitCode> {
    let subscriber = match store.subscriber(email).await {
        Ok(s) => s,
        Err(crate::store::StoreError::NotFound(_)) => {
            return match store.erasure(email).await? {
                Some(erasure) => {
                    outln!(
                        "{email} was erased on {}; its change log is kept without personal data:",
                        erasure.erased_at.format("%Y-%m-%d %H:%M UTC")
                    )?;
                    print_history(&erasure.history)?;
                    Ok(code(exit::OK))
                }
                None => Err(crate::store::StoreError::NotFound(email.to_string()).into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    outln!("{}", subscriber.email)?;
    outln!(
        "  name:          {}",
        subscriber.name.as_deref().unwrap_or("-")
    )?;
    outln!(
        "  organisation:  {}",
        subscriber.organisation.as_deref().unwrap_or("-")
    )?;
    outln!("  status:        {}", subscriber.status)?;
    outln!("  topics:        {}", topics_text(&subscriber.topics))?;
    outln!("  added:         {}", when(subscriber.created_at))?;
    outln!(
        "  confirmed:     {}",
        subscriber
            .confirmed_at
            .map(when)
            .unwrap_or_else(|| "-".into())
    )?;
    outln!("  last changed:  {}", when(subscriber.updated_at))?;
    outln!("history:")?;
    print_history(&store.history(&subscriber).await?)?;
    Ok(code(exit::OK))
}

fn print_history(entries: &[ConsentEntry]) -> Result<(), OutputError> {
    let sources: Vec<String> = entries.iter().map(|e| e.source.to_string()).collect();
    let width = sources.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    for (e, source) in entries.iter().zip(&sources) {
        outln!(
            "  {}  {:14}  {source:width$}  {}",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.action.as_str(),
            detail_text(&e.detail)
        )?;
    }
    Ok(())
}

/// `{"from": "active", "topics": ["a", "b"]}` as `from=active topics=a,b`.
fn detail_text(detail: &serde_json::Value) -> String {
    let Some(map) = detail.as_object() else {
        return detail.to_string();
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn topics_text(topics: &[String]) -> String {
    if topics.is_empty() {
        "(none)".into()
    } else {
        topics.join(", ")
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
