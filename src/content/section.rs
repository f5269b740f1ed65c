//! The sections of an issue, one type per kind (article, training, saved links, diary,
//! resources) with what they hold: images, courses and how to book them, dates. Built only by
//! [`super::load`], so each holds only what was checked there.

use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::issue::{Anchor, EmailAddress, Issue, Link, Markdown};
use super::topic::Topic;
use super::when::Session;

#[derive(Debug, Clone)]
pub struct Section {
    /// The anchor used by "In this issue", unique within the issue: `safer-sleep-week`.
    pub anchor: Anchor,
    pub file: PathBuf,
    pub heading: String,
    /// `None`: for every reader.
    pub topic: Option<Topic>,
    pub body: SectionBody,
}

#[derive(Debug, Clone)]
pub enum SectionBody {
    /// Boxed: an article's links and image make it several times the size of the others.
    Article(Box<Article>),
    Training(Training),
    Links(SavedLinks),
    Diary(Diary),
    Resources(Resources),
}

impl SectionBody {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Article(_) => "article",
            Self::Training(_) => "training",
            Self::Links(_) => "links",
            Self::Diary(_) => "diary",
            Self::Resources(_) => "resources",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Article {
    pub body: Markdown,
    pub image: Option<Image>,
    pub buttons: Vec<Button>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub src: ImageSrc,
    pub alt: String,
    /// The width the email shows it at, in CSS pixels: `width`, at most the content column.
    pub display_width: u32,
    pub link: Option<Link>,
    pub caption: Option<Markdown>,
    pub placement: super::model::Placement,
}

/// The widest an image can show: the email's 600 px column less its padding.
pub const CONTENT_WIDTH: u32 = 552;

/// Where an image comes from: an address, as written, or a file in the issue folder.
#[derive(Debug, Clone)]
pub enum ImageSrc {
    Remote(Link),
    Local(LocalImage),
}

/// A PNG, JPEG or GIF in the issue folder, checked when the issue loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// The file on disk.
    pub path: PathBuf,
    pub format: LocalImageFormat,
    pub width: u32,
    pub height: u32,
    /// The width it is published at: twice its display width, never more than its own.
    pub target_width: u32,
    /// The name it is published under: a hash of the file and the width it is resized to, so
    /// a changed photo gets a new name and a name can be cached for ever.
    pub published_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalImageFormat {
    Png,
    Jpeg,
    Gif,
}

impl LocalImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
        }
    }
}

impl Issue {
    /// Every local image of the issue (articles' images, resources' photos), once each.
    pub fn local_images(&self) -> Vec<&LocalImage> {
        let mut seen = Vec::<&LocalImage>::new();
        let sources = self.sections.iter().flat_map(|s| -> Vec<&ImageSrc> {
            match &s.body {
                SectionBody::Article(a) => a.image.iter().map(|i| &i.src).collect(),
                SectionBody::Resources(r) => r
                    .resources
                    .iter()
                    .filter_map(|r| r.photo.as_ref().map(|p| &p.src))
                    .collect(),
                _ => Vec::new(),
            }
        });
        for src in sources {
            if let ImageSrc::Local(img) = src
                && !seen.iter().any(|i| i.published_name == img.published_name)
            {
                seen.push(img);
            }
        }
        seen
    }
}

#[derive(Debug, Clone)]
pub struct Button {
    pub label: String,
    pub url: Link,
}

#[derive(Debug, Clone)]
pub struct Training {
    pub intro: Option<Markdown>,
    pub courses: Vec<Course>,
}

#[derive(Debug, Clone)]
pub struct Course {
    /// Stable within the issue: the section anchor and the course's position, `training-3`.
    pub id: String,
    pub title: String,
    pub group: Option<String>,
    pub description: Markdown,
    pub audience: Option<Markdown>,
    pub sessions: Vec<Session>,
    /// The course's own page, which its title links to.
    pub page: Option<Link>,
    /// `None` only for a course listed by title: no sessions, and a `page`. A course with
    /// sessions always has a way to book.
    pub booking: Option<Booking>,
}

impl Course {
    /// Listed by title only (a recording, a briefing's page): no dates, nothing to book.
    pub fn is_listed(&self) -> bool {
        self.sessions.is_empty() && self.booking.is_none()
    }
}

/// Every course has a way to book: a link, an email address, or both.
#[derive(Debug, Clone)]
pub enum Booking {
    Online {
        label: String,
        url: Link,
    },
    Email {
        label: String,
        address: EmailAddress,
    },
    OnlineOrEmail {
        label: String,
        url: Link,
        address: EmailAddress,
    },
}

impl Booking {
    pub fn label(&self) -> &str {
        match self {
            Self::Online { label, .. }
            | Self::Email { label, .. }
            | Self::OnlineOrEmail { label, .. } => label,
        }
    }

    pub fn url(&self) -> Option<&Link> {
        match self {
            Self::Online { url, .. } | Self::OnlineOrEmail { url, .. } => Some(url),
            Self::Email { .. } => None,
        }
    }

    pub fn email(&self) -> Option<&EmailAddress> {
        match self {
            Self::Email { address, .. } | Self::OnlineOrEmail { address, .. } => Some(address),
            Self::Online { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SavedLinks {
    pub intro: Option<Markdown>,
    pub links: Vec<SavedLink>,
}

#[derive(Debug, Clone)]
pub struct SavedLink {
    pub title: String,
    pub description: Markdown,
    pub url: Link,
}

#[derive(Debug, Clone)]
pub struct Diary {
    pub intro: Option<Markdown>,
    pub dates: Vec<DiaryDate>,
}

/// A table of resources: a row per subject.
#[derive(Debug, Clone)]
pub struct Resources {
    pub intro: Option<Markdown>,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    /// Stable within the issue: the section anchor and the row's position, `speakers-2`.
    pub id: String,
    pub subject: String,
    pub description: Markdown,
    /// The resource's page, which its subject links to.
    pub url: Option<Link>,
    pub photo: Option<Photo>,
}

/// A resource's photo, such as a speaker's portrait, always with alt text.
#[derive(Debug, Clone)]
pub struct Photo {
    pub src: ImageSrc,
    pub alt: String,
    pub caption: Option<Markdown>,
}

/// A resource's photo shows at most this wide: its column, 35% of the 600 px email, less the
/// column's padding.
pub const PHOTO_WIDTH: u32 = 160;

#[derive(Debug, Clone)]
pub struct DiaryDate {
    pub id: String,
    pub label: String,
    pub when: DateSpan,
}

/// A single day or an inclusive range of days, `from` strictly before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateSpan {
    Day(NaiveDate),
    Range { from: NaiveDate, to: NaiveDate },
}

impl DateSpan {
    pub fn first(&self) -> NaiveDate {
        match *self {
            Self::Day(d) => d,
            Self::Range { from, .. } => from,
        }
    }

    pub fn last(&self) -> NaiveDate {
        match *self {
            Self::Day(d) => d,
            Self::Range { to, .. } => to,
        }
    }
}

impl fmt::Display for DateSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Day(d) => f.write_str(&super::when::format_date(d)),
            Self::Range { from, to } => f.write_str(&super::when::format_date_range(from, to)),
        }
    }
}
