//! What the templates see: plain serialisable structs built from an [`Issue`] for one audience.
//! Kept apart from the domain types so a template change never reaches the content model, and
//! Markdown arrives already turned into HTML.

use serde::Serialize;

use super::Audience;
use super::markdown;
use crate::config::{Brand, Config};
use crate::content::model::Placement;
use crate::content::{
    Booking, CONTENT_WIDTH, Course, DiaryDate, ImageSrc, Issue, Markdown, PHOTO_WIDTH, Section,
    SectionBody, TopicCatalog, TopicInfo,
};

/// The links that differ per reader. A preview uses stand-ins; `send` uses each reader's token.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderLinks {
    pub view_online: String,
    pub preferences: String,
    pub unsubscribe: String,
    pub subscribe: String,
    /// What a local image's published name is appended to: the issue's address on the site
    /// (`…/issues/2026-02/`), or nothing for `compose`'s files, which sit beside index.html.
    pub images: String,
}

impl ReaderLinks {
    /// Links for a preview: the reader-specific pages point at a `preview` token.
    pub fn preview(config: &Config, issue: &Issue) -> Self {
        Self {
            view_online: config.site.url(&format!("/issues/{}", issue.id)),
            preferences: config.site.url("/p/preview"),
            unsubscribe: config.site.url("/u/preview"),
            subscribe: config.site.url("/subscribe"),
            images: images_base(config, issue),
        }
    }

    /// The same, with local images named relative to the email's own folder, as `compose`
    /// writes them and `preview` serves them.
    pub fn with_relative_images(self) -> Self {
        Self {
            images: String::new(),
            ..self
        }
    }
}

/// `https://…/issues/2026-02/`: where `serve` answers an issue's published images.
pub fn images_base(config: &Config, issue: &Issue) -> String {
    config.site.url(&format!("/issues/{}/", issue.id))
}

#[derive(Serialize)]
pub struct EmailView<'a> {
    pub title: &'a str,
    pub subject: &'a str,
    pub preheader: &'a str,
    pub intro_html: Option<String>,
    pub contents: Vec<TocEntry<'a>>,
    pub sections: Vec<SectionView<'a>>,
    pub brand: &'a Brand,
    pub topics: &'a [TopicInfo],
    pub links: &'a ReaderLinks,
}

#[derive(Serialize)]
pub struct TocEntry<'a> {
    pub anchor: &'a str,
    pub heading: &'a str,
}

/// One section, tagged by `kind`: the layout picks the partial named after it.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SectionView<'a> {
    Article(ArticleView<'a>),
    Training(TrainingView<'a>),
    Links(LinksView<'a>),
    Diary(DiaryView<'a>),
    Resources(ResourcesView<'a>),
}

#[derive(Serialize)]
pub struct Heading<'a> {
    pub anchor: &'a str,
    pub heading: &'a str,
    pub topic: Option<&'a str>,
}

#[derive(Serialize)]
pub struct ArticleView<'a> {
    #[serde(flatten)]
    pub head: Heading<'a>,
    pub body_html: String,
    pub image: Option<ImageView<'a>>,
    pub buttons: Vec<LinkView<'a>>,
}

#[derive(Serialize)]
pub struct ImageView<'a> {
    pub src: String,
    pub alt: &'a str,
    pub width: String,
    pub link: Option<&'a str>,
    pub caption_html: Option<String>,
    /// Beside the text: two columns on a desktop, stacked on a phone.
    pub beside: bool,
    /// Beside the text, on its left (first when stacked).
    pub left: bool,
}

#[derive(Serialize)]
pub struct LinkView<'a> {
    pub label: &'a str,
    pub url: &'a str,
    /// A one-paragraph description as inline HTML, written on the link's own line.
    pub description: Option<String>,
    /// A description with lists or paragraphs, as block HTML under the link.
    pub description_block: Option<String>,
}

#[derive(Serialize)]
pub struct TrainingView<'a> {
    #[serde(flatten)]
    pub head: Heading<'a>,
    pub intro_html: Option<String>,
    pub groups: Vec<CourseGroup<'a>>,
}

/// Consecutive courses that share a `group` sub-heading (or none).
#[derive(Serialize)]
pub struct CourseGroup<'a> {
    pub name: Option<&'a str>,
    /// Every course of the group is listed by title only: shown as a list of links rather
    /// than a block and a button per course.
    pub compact: bool,
    pub courses: Vec<CourseView<'a>>,
}

#[derive(Serialize)]
pub struct CourseView<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub description_html: String,
    pub audience_html: Option<String>,
    pub sessions: Vec<SessionView>,
    pub booking_label: &'a str,
    pub booking_url: Option<&'a str>,
    pub booking_email: Option<&'a str>,
    /// The course's own page, which its title links to.
    pub url: Option<&'a str>,
}

/// A session with its "Add to calendar" link.
#[derive(Serialize)]
pub struct SessionView {
    pub when: String,
    pub calendar: String,
}

#[derive(Serialize)]
pub struct LinksView<'a> {
    #[serde(flatten)]
    pub head: Heading<'a>,
    pub intro_html: Option<String>,
    pub links: Vec<LinkView<'a>>,
}

#[derive(Serialize)]
pub struct DiaryView<'a> {
    #[serde(flatten)]
    pub head: Heading<'a>,
    pub intro_html: Option<String>,
    pub dates: Vec<DiaryDateView<'a>>,
}

/// A table of resources: per row, two columns on a desktop that MJML stacks on a phone.
#[derive(Serialize)]
pub struct ResourcesView<'a> {
    #[serde(flatten)]
    pub head: Heading<'a>,
    pub intro_html: Option<String>,
    pub resources: Vec<ResourceView<'a>>,
}

#[derive(Serialize)]
pub struct ResourceView<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub url: Option<&'a str>,
    pub description_html: Option<String>,
    pub photo: Option<PhotoView<'a>>,
}

#[derive(Serialize)]
pub struct PhotoView<'a> {
    pub src: String,
    pub alt: &'a str,
    pub width: String,
    pub caption_html: Option<String>,
}

#[derive(Serialize)]
pub struct DiaryDateView<'a> {
    pub id: &'a str,
    pub when: String,
    pub label: &'a str,
    pub calendar: String,
}

/// The calendar id of a course's `n`th session (from 1): `training-3-session-2`. Course and
/// diary ids are the section anchor and a position, so these never meet a diary date's.
pub fn session_event_id(course: &Course, n: usize) -> String {
    format!("{}-session-{n}", course.id)
}

/// The "Add to calendar" link of an event of the issue whose page is `links.view_online`:
/// `…/issues/2026-02/events/training-3-session-2.ics`, served by `lscp-mail serve`.
pub fn calendar_link(links: &ReaderLinks, event_id: &str) -> String {
    format!("{}/events/{event_id}.ics", links.view_online)
}

impl<'a> EmailView<'a> {
    pub fn new(
        issue: &'a Issue,
        config: &'a Config,
        catalog: &'a TopicCatalog,
        audience: &Audience,
        links: &'a ReaderLinks,
    ) -> Self {
        let colour = config.brand.primary_colour.as_str();
        let sections: Vec<&Section> = issue
            .sections
            .iter()
            .filter(|s| audience.includes(s))
            .collect();
        Self {
            title: &issue.title,
            subject: &issue.subject,
            preheader: &issue.preheader,
            intro_html: html(issue.intro.as_ref(), colour),
            contents: if issue.contents {
                sections
                    .iter()
                    .map(|s| TocEntry {
                        anchor: &s.anchor,
                        heading: &s.heading,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            sections: sections
                .into_iter()
                .map(|s| section(s, catalog, colour, links))
                .collect(),
            brand: &config.brand,
            topics: catalog.info(),
            links,
        }
    }
}

fn html(md: Option<&Markdown>, colour: &str) -> Option<String> {
    md.filter(|m| !m.is_blank())
        .map(|m| markdown::to_html(m, colour))
}

fn section<'a>(
    s: &'a Section,
    catalog: &'a TopicCatalog,
    colour: &str,
    links: &ReaderLinks,
) -> SectionView<'a> {
    let head = Heading {
        anchor: &s.anchor,
        heading: &s.heading,
        topic: s
            .topic
            .as_ref()
            .and_then(|t| catalog.get(t))
            .map(|t| t.name.as_str()),
    };
    match &s.body {
        SectionBody::Article(a) => SectionView::Article(ArticleView {
            head,
            body_html: markdown::to_html(&a.body, colour),
            image: a.image.as_ref().map(|i| {
                let beside = i.placement != Placement::Below;
                // Beside the text, the image has its column: at most 40% of 600 px less padding.
                let max = if beside { 192 } else { CONTENT_WIDTH };
                ImageView {
                    src: image_src(&i.src, links),
                    alt: &i.alt,
                    width: format!("{}px", i.display_width.min(max)),
                    link: i.link.as_ref().map(|l| l.as_str()),
                    caption_html: html(i.caption.as_ref(), colour),
                    beside,
                    left: i.placement == Placement::Left,
                }
            }),
            buttons: a
                .buttons
                .iter()
                .map(|b| LinkView {
                    label: &b.label,
                    url: b.url.as_str(),
                    description: None,
                    description_block: None,
                })
                .collect(),
        }),
        SectionBody::Training(t) => SectionView::Training(TrainingView {
            head,
            intro_html: html(t.intro.as_ref(), colour),
            groups: group_courses(&t.courses, colour, links),
        }),
        SectionBody::Links(l) => SectionView::Links(LinksView {
            head,
            intro_html: html(l.intro.as_ref(), colour),
            links: l
                .links
                .iter()
                .map(|l| {
                    let (description, description_block) =
                        match markdown::to_inline_html(&l.description, colour) {
                            _ if l.description.is_blank() => (None, None),
                            Some(inline) => (Some(inline), None),
                            None => (None, Some(markdown::to_html(&l.description, colour))),
                        };
                    LinkView {
                        label: &l.title,
                        url: l.url.as_str(),
                        description,
                        description_block,
                    }
                })
                .collect(),
        }),
        SectionBody::Diary(d) => SectionView::Diary(DiaryView {
            head,
            intro_html: html(d.intro.as_ref(), colour),
            dates: d.dates.iter().map(|d| diary_date(d, links)).collect(),
        }),
        SectionBody::Resources(r) => SectionView::Resources(ResourcesView {
            head,
            intro_html: html(r.intro.as_ref(), colour),
            resources: r
                .resources
                .iter()
                .map(|r| ResourceView {
                    id: &r.id,
                    subject: &r.subject,
                    url: r.url.as_ref().map(|u| u.as_str()),
                    description_html: html(Some(&r.description), colour),
                    photo: r.photo.as_ref().map(|p| PhotoView {
                        src: image_src(&p.src, links),
                        alt: &p.alt,
                        width: format!("{PHOTO_WIDTH}px"),
                        caption_html: html(p.caption.as_ref(), colour),
                    }),
                })
                .collect(),
        }),
    }
}

/// Where the email loads an image from: its address, or a local image's published name under
/// the reader's image base.
fn image_src(src: &ImageSrc, links: &ReaderLinks) -> String {
    match src {
        ImageSrc::Remote(link) => link.as_str().to_string(),
        ImageSrc::Local(local) => format!("{}{}", links.images, local.published_name),
    }
}

fn diary_date<'a>(d: &'a DiaryDate, links: &ReaderLinks) -> DiaryDateView<'a> {
    DiaryDateView {
        id: &d.id,
        when: d.when.to_string(),
        label: &d.label,
        calendar: calendar_link(links, &d.id),
    }
}

fn group_courses<'a>(
    courses: &'a [Course],
    colour: &str,
    links: &ReaderLinks,
) -> Vec<CourseGroup<'a>> {
    let mut groups: Vec<CourseGroup<'a>> = Vec::new();
    for c in courses {
        let view = CourseView {
            id: &c.id,
            title: &c.title,
            description_html: markdown::to_html(&c.description, colour),
            audience_html: html(c.audience.as_ref(), colour),
            sessions: c
                .sessions
                .iter()
                .enumerate()
                .map(|(i, s)| SessionView {
                    when: s.to_string(),
                    calendar: calendar_link(links, &session_event_id(c, i + 1)),
                })
                .collect(),
            booking_label: c.booking.as_ref().map_or("", Booking::label),
            booking_url: c
                .booking
                .as_ref()
                .and_then(Booking::url)
                .map(|u| u.as_str()),
            booking_email: c
                .booking
                .as_ref()
                .and_then(Booking::email)
                .map(|a| a.as_str()),
            url: c.page.as_ref().map(|u| u.as_str()),
        };
        match groups.last_mut() {
            Some(g) if g.name == c.group.as_deref() => {
                g.compact &= c.is_listed();
                g.courses.push(view)
            }
            _ => groups.push(CourseGroup {
                name: c.group.as_deref(),
                compact: c.is_listed(),
                courses: vec![view],
            }),
        }
    }
    groups
}
