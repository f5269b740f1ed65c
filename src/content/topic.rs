//! Topics a reader can choose, and a section can be tagged with.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A topic slug that is known to the configuration. Only [`TopicCatalog::parse`] makes one from
/// what a person wrote, so past the edge a `Topic` is always one the newsletter offers; the
/// store reads back the ones it was given ([`Topic::from_stored`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Topic(String);

impl Topic {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A slug read back from the database, where only parsed topics are written (a delivery's
    /// topics were the issue's): trusted as it is, not parsed against today's catalog.
    pub fn from_stored(slug: String) -> Self {
        Self(slug)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One topic as configured: what the sign-up box and the preferences page show.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicInfo {
    pub slug: String,
    pub name: String,
    pub description: String,
}

/// The topics the newsletter offers, in the order readers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCatalog {
    topics: Vec<TopicInfo>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("unknown topic `{given}`; the topics are: {known}")]
    Unknown { given: String, known: String },
    #[error("topic slug `{0}` is not valid: use lower-case letters, digits and `-`")]
    BadSlug(String),
    #[error("topic `{0}` is configured twice")]
    Duplicate(String),
}

impl TopicCatalog {
    pub fn new(topics: Vec<TopicInfo>) -> Result<Self, TopicError> {
        let mut seen = BTreeSet::new();
        for t in &topics {
            let ok = !t.slug.is_empty()
                && t.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(TopicError::BadSlug(t.slug.clone()));
            }
            if !seen.insert(t.slug.clone()) {
                return Err(TopicError::Duplicate(t.slug.clone()));
            }
        }
        Ok(Self { topics })
    }

    /// The four topics of the newsletter's own sign-up box.
    pub fn builtin() -> Self {
        let t = |slug: &str, name: &str, description: &str| TopicInfo {
            slug: slug.into(),
            name: name.into(),
            description: description.into(),
        };
        Self {
            topics: vec![
                t(
                    "training",
                    "Training dates",
                    "The latest dates for LSCP training and development opportunities",
                ),
                t(
                    "protocols",
                    "Local protocols and guidance",
                    "Updates to local protocols and guidance",
                ),
                t(
                    "reviews",
                    "Learning from reviews",
                    "Learning from reviews and sharing best practice",
                ),
                t(
                    "events",
                    "Events and campaigns",
                    "Upcoming events, campaigns and national guidance",
                ),
            ],
        }
    }

    pub fn parse(&self, slug: &str) -> Result<Topic, TopicError> {
        let slug = slug.trim();
        if self.topics.iter().any(|t| t.slug == slug) {
            Ok(Topic(slug.to_string()))
        } else {
            Err(TopicError::Unknown {
                given: slug.to_string(),
                known: self.slugs().collect::<Vec<_>>().join(", "),
            })
        }
    }

    /// Parses a comma-separated list such as `training,events`.
    pub fn parse_list(&self, list: &str) -> Result<TopicSet, TopicError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| self.parse(s))
            .collect()
    }

    pub fn all(&self) -> TopicSet {
        self.topics.iter().map(|t| Topic(t.slug.clone())).collect()
    }

    pub fn slugs(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|t| t.slug.as_str())
    }

    pub fn info(&self) -> &[TopicInfo] {
        &self.topics
    }

    pub fn get(&self, topic: &Topic) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.slug == topic.0)
    }
}

/// A set of topics, kept sorted so equal sets compare and print the same.
pub type TopicSet = BTreeSet<Topic>;
