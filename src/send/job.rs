//! The send job: what `lscp-mail send` does around a campaign's run. Before it: a session tried
//! as the workers will open it, the campaign prepared, and what it holds ([`start`]). Instead
//! of it: every message written to a folder ([`dry_run`]), or sent to a few addresses outside
//! the ledger ([`TestSend`]). The run itself is [`campaign::run`]; the command line chooses
//! among these, and prints what they return.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::campaign::{self, SendError, SendOptions};
use super::personalise::{PersonaliseError, Personaliser};
use crate::content::{Issue, TopicSet};
use crate::mail::smtp::{Connection, SmtpFailure, SmtpTarget};
use crate::store::ledger::{Campaign, CampaignStatus, Counts, Holder};
use crate::store::{LinkToken, Store, StoreError, SubscriberEmail};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Message(#[from] PersonaliseError),
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a send finds before it sends anything.
#[derive(Debug)]
pub enum Start {
    /// The mail server refused the session for good: nothing was sent or recorded.
    Refused(SmtpFailure),
    /// The mail server cannot take the run now: nothing was sent or recorded.
    Unavailable(SmtpFailure),
    /// The campaign is finished and nobody is left to send to.
    Finished(Counts),
    /// The campaign is ready for [`campaign::run`].
    Ready(Ready),
}

#[derive(Debug)]
pub struct Ready {
    pub campaign: Campaign,
    /// Where the campaign stands before this run.
    pub counts: Counts,
    /// Claims of senders that have stopped: this run takes them over at once.
    pub stopped: Vec<Holder>,
}

/// Tries a session as the workers will open it, before the audience is frozen or anyone
/// claimed; then prepares the campaign (see [`campaign::prepare`]).
pub async fn start(
    store: &Store,
    issue: &Issue,
    personaliser: &Personaliser,
    target: &SmtpTarget,
    options: &SendOptions,
) -> Result<Start, JobError> {
    if let Err(failure) = campaign::preflight(
        target,
        personaliser.hello_name(),
        personaliser.sender(),
        options.smtp_timeout,
    )
    .await
    {
        return Ok(if failure.is_permanent() {
            Start::Refused(failure)
        } else {
            Start::Unavailable(failure)
        });
    }
    let campaign = campaign::prepare(store, issue, options).await?;
    let counts = store.delivery_counts(campaign.id).await?;
    if campaign.status == CampaignStatus::Finished && counts.remaining() == 0 {
        return Ok(Start::Finished(counts));
    }
    let stopped = store
        .holders(campaign.id)
        .await?
        .into_iter()
        .filter(|h| !h.alive)
        .collect();
    Ok(Start::Ready(Ready {
        campaign,
        counts,
        stopped,
    }))
}

/// What a dry run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRun {
    pub written: usize,
    /// Active subscribers with no topic in the issue.
    pub skipped: usize,
}

/// Writes every message the issue would send now into `out`, one file each (see
/// [`message_file_name`]), and changes nothing.
pub async fn dry_run(
    store: &Store,
    issue: &Issue,
    personaliser: &Personaliser,
    out: &Path,
) -> Result<DryRun, JobError> {
    let audience = store.audience(&issue.topics()).await?;
    std::fs::create_dir_all(out).map_err(|source| JobError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let (mut written, mut skipped) = (0, 0);
    for (n, (r, topics)) in audience.into_iter().enumerate() {
        if topics.is_empty() {
            skipped += 1;
            continue;
        }
        let token = LinkToken::new(r.link_id.clone(), r.link_secret.clone());
        let message = personaliser.message(&r.email, r.name.as_ref(), Some(&topics), &token)?;
        let path = out.join(message_file_name(n + 1, r.email.as_str()));
        std::fs::write(&path, &message.bytes).map_err(|source| JobError::Write {
            path: path.clone(),
            source,
        })?;
        written += 1;
    }
    Ok(DryRun { written, skipped })
}

/// `00012-a_b@example.org.eml`: unique by the counter, whatever two addresses look like once
/// sanitised, and safe by construction (only ASCII letters, digits and `@._+-`, bounded length,
/// never `.` or `..`), so no address can name a path outside the folder.
fn message_file_name(n: usize, email: &str) -> String {
    let readable: String = email
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("{n:05}-{readable}.eml")
}

/// Which version of the issue a test address gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// A subscriber's own: the sections of their topics, with their links.
    TheirTopics,
    /// Anyone else's: the whole issue, with links that lead nowhere.
    WholeIssue,
}

/// Personalised messages sent to a few addresses over one session, outside the ledger.
pub struct TestSend<'a> {
    store: &'a Store,
    personaliser: &'a Personaliser,
    issue_topics: TopicSet,
    conn: Connection,
}

impl<'a> TestSend<'a> {
    pub async fn open(
        store: &'a Store,
        issue: &Issue,
        personaliser: &'a Personaliser,
        target: &SmtpTarget,
        limit: Duration,
    ) -> Result<Self, SmtpFailure> {
        let issue_topics = issue.topics();
        let conn = Connection::open(target, personaliser.hello_name(), limit).await?;
        Ok(Self {
            store,
            personaliser,
            issue_topics,
            conn,
        })
    }

    /// Sends `email` the version it would get; the inner result is the server's answer.
    pub async fn send(
        &mut self,
        email: &SubscriberEmail,
    ) -> Result<(Version, Result<String, SmtpFailure>), JobError> {
        let (topics, token, version) = match self.store.subscriber(email).await {
            Ok(s) => {
                let mine: TopicSet = self
                    .issue_topics
                    .iter()
                    .filter(|i| s.topics.iter().any(|t| i.as_str() == t.as_str()))
                    .cloned()
                    .collect();
                let token = self.store.link_token(&s).await?;
                (
                    Some(mine).filter(|m| !m.is_empty()),
                    token,
                    Version::TheirTopics,
                )
            }
            Err(StoreError::NotFound(_)) => (
                None,
                LinkToken::new(vec![0; 16], vec![0; 32]),
                Version::WholeIssue,
            ),
            Err(e) => return Err(e.into()),
        };
        let message = self
            .personaliser
            .message(email, None, topics.as_ref(), &token)?;
        let answer = self.conn.send(&message.envelope, &message.bytes).await;
        Ok((version, answer))
    }

    pub async fn quit(self) {
        self.conn.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::message_file_name;

    #[test]
    fn every_dry_run_message_gets_its_own_safe_file() {
        let emails = [
            "a/b@example.org",
            "a_b@example.org",
            "A_B@example.org",
            "../x@example.org",
        ];
        let names: Vec<String> = emails
            .iter()
            .enumerate()
            .map(|(i, e)| message_file_name(i + 1, e))
            .collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), emails.len(), "{names:?}");
        assert_eq!(names[0], "00001-a_b@example.org.eml");
        assert!(
            names
                .iter()
                .all(|n| !n.contains('/') && !n.starts_with('.'))
        );
    }
}
