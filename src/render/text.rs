//! The plain-text part, written from the content (not scraped from the HTML) so it reads well
//! on its own: headings underlined, lists as lists, every link written out on its own line.

use std::fmt::Write;

use super::markdown::{to_text, wrap};
use super::view::{calendar_link, session_event_id};
use super::{Audience, ReaderLinks};
use crate::config::Config;
use crate::content::{Issue, Markdown, Section, SectionBody, Topic, TopicCatalog};

const WIDTH: usize = 72;

pub fn render(
    issue: &Issue,
    config: &Config,
    catalog: &TopicCatalog,
    audience: &Audience,
    links: &ReaderLinks,
) -> String {
    parts(issue, config, catalog, links).assemble(audience)
}

/// The plain text of an issue written once, section by section, so that every reader's
/// version is put together from the pieces.
pub struct TextParts {
    head: String,
    contents: bool,
    sections: Vec<SectionText>,
    tail: String,
}

struct SectionText {
    /// Who gets it: chosen by the section's topic, as [`Audience::includes`] does.
    topic: Option<Topic>,
    heading: String,
    text: String,
}

pub fn parts(
    issue: &Issue,
    config: &Config,
    catalog: &TopicCatalog,
    links: &ReaderLinks,
) -> TextParts {
    let brand = &config.brand;
    let mut head = Text::default();
    head.heading(&issue.title, '=');
    head.para(&brand.organisation);
    head.para(&format!(
        "View this email in your browser:\n{}",
        links.view_online
    ));
    if let Some(intro) = &issue.intro {
        head.markdown(intro);
    }
    let sections = issue
        .sections
        .iter()
        .map(|s| {
            let mut t = Text::default();
            t.rule();
            if let Some(topic) = s.topic.as_ref().and_then(|t| catalog.get(t)) {
                t.out.push_str(&format!("[{}]\n", topic.name));
            }
            t.heading(&s.heading, '=');
            section(&mut t, s, links);
            SectionText {
                topic: s.topic.clone(),
                heading: s.heading.clone(),
                text: t.out,
            }
        })
        .collect();
    let mut t = Text::default();
    t.rule();
    t.heading(&brand.signup_heading, '-');
    t.para(&brand.signup_intro);
    let topics: Vec<String> = catalog
        .info()
        .iter()
        .map(|i| format!("- {}", i.description))
        .collect();
    t.raw(&topics.join("\n"));
    t.para(&brand.signup_closing);
    t.link("Sign up", &links.subscribe);
    t.rule();
    t.para(&brand.footer_reason);
    t.link("Choose the topics you receive", &links.preferences);
    t.link("Unsubscribe", &links.unsubscribe);
    t.raw(&format!(
        "{}\n{}\n{}\n{}",
        brand.organisation,
        wrap(&brand.postal_address, WIDTH),
        brand.contact_email,
        brand.website
    ));
    TextParts {
        head: head.out,
        contents: issue.contents,
        sections,
        tail: t.out,
    }
}

impl TextParts {
    /// The text for `audience`.
    pub fn assemble(&self, audience: &Audience) -> String {
        let included: Vec<&SectionText> = self
            .sections
            .iter()
            .filter(|s| audience.includes_topic(s.topic.as_ref()))
            .collect();
        let mut t = Text {
            out: self.head.clone(),
        };
        if self.contents && !included.is_empty() {
            t.heading("In this issue", '-');
            let list: Vec<String> = included
                .iter()
                .map(|s| format!("- {}", s.heading))
                .collect();
            t.raw(&list.join("\n"));
        }
        for s in included {
            t.out.push_str(&s.text);
        }
        t.out.push_str(&self.tail);
        t.out.trim_end().to_string() + "\n"
    }
}

fn section(t: &mut Text, s: &Section, links: &ReaderLinks) {
    match &s.body {
        SectionBody::Article(a) => {
            t.markdown(&a.body);
            if let Some(img) = &a.image {
                t.image(&img.alt, img.caption.as_ref());
            }
            for b in &a.buttons {
                t.link(&b.label, b.url.as_str());
            }
        }
        SectionBody::Training(tr) => {
            if let Some(intro) = &tr.intro {
                t.markdown(intro);
            }
            let mut group: Option<&str> = None;
            let mut listed: Vec<String> = Vec::new();
            for c in &tr.courses {
                if c.group.as_deref() != group {
                    flush_listed(t, &mut listed);
                    group = c.group.as_deref();
                    if let Some(g) = group {
                        t.heading(&g.to_uppercase(), ' ');
                    }
                }
                if let (true, Some(page)) = (c.is_listed(), &c.page) {
                    // A course listed by title: one line and its address, as in the HTML's list.
                    let mut item = wrap(&format!("- {}", c.title), WIDTH);
                    if !c.description.is_blank() {
                        let d = to_text(&c.description, WIDTH - 2);
                        item = format!("{item}\n{}", indent(&d, "  "));
                    }
                    listed.push(format!("{item}\n  {}", page.as_str()));
                    continue;
                }
                flush_listed(t, &mut listed);
                t.heading(&c.title, '-');
                if let Some(page) = &c.page {
                    t.para(page.as_str());
                }
                t.markdown(&c.description);
                if let Some(a) = &c.audience {
                    t.markdown(a);
                }
                if !c.sessions.is_empty() {
                    let list: Vec<String> = c
                        .sessions
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let ics = calendar_link(links, &session_event_id(c, i + 1));
                            format!("- {s}\n  Add to calendar: {ics}")
                        })
                        .collect();
                    t.raw(&list.join("\n"));
                }
                if let Some(booking) = &c.booking {
                    if let Some(url) = booking.url() {
                        t.link(booking.label(), url.as_str());
                    }
                    if let Some(email) = booking.email() {
                        let how = if booking.url().is_some() {
                            "Or book"
                        } else {
                            booking.label()
                        };
                        t.para(&format!("{how} by email: {}", email.as_str()));
                    }
                }
            }
            flush_listed(t, &mut listed);
        }
        SectionBody::Links(l) => {
            if let Some(intro) = &l.intro {
                t.markdown(intro);
            }
            for link in &l.links {
                let description = to_text(&link.description, usize::MAX);
                if description.contains('\n') {
                    // Lists or paragraphs: under the title, the address last.
                    let d = to_text(&link.description, WIDTH);
                    t.raw(&format!(
                        "{}:\n{d}\n{}",
                        wrap(&link.title, WIDTH),
                        link.url.as_str()
                    ));
                    continue;
                }
                let mut p = link.title.clone();
                if !description.is_empty() {
                    p = format!("{p}: {description}");
                }
                t.raw(&format!("{}\n{}", wrap(&p, WIDTH), link.url.as_str()));
            }
        }
        SectionBody::Resources(r) => {
            if let Some(intro) = &r.intro {
                t.markdown(intro);
            }
            for r in &r.resources {
                t.heading(&r.subject, '-');
                if let Some(url) = &r.url {
                    t.para(url.as_str());
                }
                if let Some(photo) = &r.photo {
                    t.image(&photo.alt, photo.caption.as_ref());
                }
                t.markdown(&r.description);
            }
        }
        SectionBody::Diary(d) => {
            if let Some(intro) = &d.intro {
                t.markdown(intro);
            }
            let list: Vec<String> = d
                .dates
                .iter()
                .map(|d| {
                    let ics = calendar_link(links, &d.id);
                    let line = wrap(&format!("- {}: {}", d.when, d.label), WIDTH);
                    format!("{line}\n  Add to calendar: {ics}")
                })
                .collect();
            t.raw(&list.join("\n"));
        }
    }
}

/// The courses listed by title so far, as one list.
fn flush_listed(t: &mut Text, listed: &mut Vec<String>) {
    if !listed.is_empty() {
        t.raw(&listed.join("\n"));
        listed.clear();
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{by}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Default)]
struct Text {
    out: String,
}

impl Text {
    fn heading(&mut self, text: &str, underline: char) {
        let text = text.trim();
        let _ = writeln!(self.out, "{text}");
        if underline != ' ' {
            let n = text.chars().count().min(WIDTH);
            let _ = writeln!(self.out, "{}", underline.to_string().repeat(n));
        }
        self.out.push('\n');
    }

    fn para(&mut self, text: &str) {
        let wrapped: Vec<String> = text.lines().map(|l| wrap(l, WIDTH)).collect();
        self.raw(&wrapped.join("\n"));
    }

    fn markdown(&mut self, md: &Markdown) {
        if !md.is_blank() {
            self.raw(&to_text(md, WIDTH));
        }
    }

    /// An image as its alt text, and its caption.
    fn image(&mut self, alt: &str, caption: Option<&Markdown>) {
        self.para(&format!("[Image: {alt}]"));
        if let Some(caption) = caption {
            self.markdown(caption);
        }
    }

    /// A call to action: its words, then the address on a line of its own.
    fn link(&mut self, label: &str, url: &str) {
        self.raw(&format!("{label}:\n{url}"));
    }

    fn raw(&mut self, block: &str) {
        self.out.push_str(block.trim_end());
        self.out.push_str("\n\n");
    }

    fn rule(&mut self) {
        self.out.push_str(&"-".repeat(WIDTH));
        self.out.push_str("\n\n");
    }
}
