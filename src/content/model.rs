//! The TOML an editor writes, exactly as written. Every table denies unknown keys so that a
//! typo is an error, and the values `check` judges are `Spanned` so that an error can name its
//! line. These types are only read by [`super::load`], which turns them into the domain types
//! of [`super::issue`].

use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

/// `issue.toml`: what the whole issue says about itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueToml {
    /// "February 2026 newsletter"
    pub title: String,
    /// "2026-02": the issue's identity in the archive and the send ledger.
    pub month: Spanned<String>,
    /// The day the issue goes out; sessions before it are errors, diary dates before it warnings.
    pub published: Spanned<Datetime>,
    pub subject: Spanned<String>,
    /// The line inbox lists show after the subject.
    pub preheader: Spanned<String>,
    /// Markdown shown above the sections.
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    /// Ask for an "In this issue" list built from the section headings.
    #[serde(default)]
    pub contents: bool,
}

/// Read first, to learn which kind of section a file holds.
#[derive(Debug, Deserialize)]
pub struct SectionHead {
    pub kind: Spanned<String>,
}

pub const SECTION_KINDS: &str = "article, training, links, diary, resources";

/// `kind = "article"`: a news item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticleToml {
    pub kind: String,
    pub heading: Spanned<String>,
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    /// Markdown: paragraphs, bullet lists, links, bold.
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub image: Option<Spanned<ImageToml>>,
    #[serde(default)]
    pub buttons: Vec<Spanned<ButtonToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageToml {
    pub src: Spanned<String>,
    /// Required: an email with images blocked, or read aloud, has only this.
    #[serde(default)]
    pub alt: Option<Spanned<String>>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub link: Option<Spanned<String>>,
    /// Markdown shown under the image.
    #[serde(default)]
    pub caption: Option<Spanned<String>>,
    /// Where the image goes: under the text (the default), or beside it.
    #[serde(default)]
    pub placement: Placement,
}

/// `placement = "left"`: beside the text on a desktop, above it on a phone.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    #[default]
    Below,
    Left,
    Right,
}

/// A call to action such as "Book your place".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonToml {
    pub label: String,
    pub url: Spanned<String>,
}

/// `kind = "training"`: a programme of courses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingToml {
    pub kind: String,
    pub heading: Spanned<String>,
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    #[serde(default)]
    pub courses: Vec<Spanned<CourseToml>>,
    /// Sub-headings declared once, each with its courses: `[[groups]]` with `heading` and
    /// `[[groups.courses]]`, instead of `group = "…"` repeated on every course.
    #[serde(default)]
    pub groups: Vec<Spanned<CourseGroupToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseGroupToml {
    /// "Recorded sessions on YouTube"
    pub heading: Spanned<String>,
    #[serde(default)]
    pub courses: Vec<Spanned<CourseToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseToml {
    pub title: String,
    /// A sub-heading shared by consecutive courses, such as "Webinars".
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// Who the course is for.
    #[serde(default)]
    pub audience: Option<Spanned<String>>,
    /// "Tuesday 14 April 2026, 9am to 3.15pm"
    #[serde(default)]
    pub sessions: Vec<Spanned<String>>,
    #[serde(default)]
    pub booking_url: Option<Spanned<String>>,
    #[serde(default)]
    pub booking_email: Option<Spanned<String>>,
    /// The booking link's words; "Book your place" when not given.
    #[serde(default)]
    pub booking_label: Option<String>,
    /// The course's own page: its title links there. Enough on its own for a course with no
    /// sessions, such as a recording.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
}

/// `kind = "links"`: "Save to your favourites".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksToml {
    pub kind: String,
    pub heading: Spanned<String>,
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    #[serde(default)]
    pub links: Vec<Spanned<SavedLinkToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedLinkToml {
    pub title: String,
    /// Markdown, like every text a reader sees.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    pub url: Spanned<String>,
}

/// `kind = "diary"`: "Dates for your diary".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiaryToml {
    pub kind: String,
    pub heading: Spanned<String>,
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    #[serde(default)]
    pub dates: Vec<Spanned<DiaryDateToml>>,
}

/// Either `date = 2026-03-18`, or `from = 2026-03-09` and `to = 2026-03-15`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiaryDateToml {
    pub label: String,
    #[serde(default)]
    pub date: Option<Spanned<Datetime>>,
    #[serde(default)]
    pub from: Option<Spanned<Datetime>>,
    #[serde(default)]
    pub to: Option<Spanned<Datetime>>,
}

/// `kind = "resources"`: a table of resources, one row per subject: the subject (linked to its
/// page when it has one) and a photo with its caption on the left, the description on the right.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesToml {
    pub kind: String,
    pub heading: Spanned<String>,
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    #[serde(default)]
    pub resources: Vec<Spanned<ResourceToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceToml {
    /// "Professional curiosity", or a speaker's name.
    pub subject: Spanned<String>,
    /// Markdown: paragraphs, lists, links, bold.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// The resource's page: the subject links there.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub photo: Option<Spanned<PhotoToml>>,
}

/// A row's photo, such as a speaker's portrait: a file in the issue folder or an https address,
/// shown at most [`super::issue::PHOTO_WIDTH`] px wide.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoToml {
    pub src: Spanned<String>,
    /// Required, as for every image.
    #[serde(default)]
    pub alt: Option<Spanned<String>>,
    /// Markdown shown under the photo.
    #[serde(default)]
    pub caption: Option<Spanned<String>>,
}
