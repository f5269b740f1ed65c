//! `kind = "links"`: saved links, each with a title and a Markdown description.

use super::super::issue::*;
use super::super::model::*;
use super::file::File;
use super::{Cx, Judged};

impl Cx<'_> {
    /// `kind = "links"`: saved links with their descriptions.
    pub(super) fn links_section(&mut self, file: &File) -> Option<Judged> {
        let raw: LinksToml = self.parse(file)?;
        let heading = self.heading(file, &raw.heading);
        let topic = self.topic(file, raw.topic);
        let intro = self.markdown(file, raw.intro, "intro", 2);
        if raw.links.is_empty() {
            self.empty(file, &raw.heading, "add at least one [[links]] table");
        }
        let links: Vec<_> = raw
            .links
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let span = l.span();
                let l = l.into_inner();
                let description = self
                    .markdown(file, l.description, &format!("links[{i}].description"), 2)
                    .unwrap_or_default();
                let url = self.link(file, &l.url, &format!("links[{i}].url"))?;
                self.link_words(
                    file,
                    span,
                    &l.title,
                    url.as_str(),
                    format!("links[{i}].title"),
                );
                Some(SavedLink {
                    title: l.title.trim().to_string(),
                    description,
                    url,
                })
            })
            .collect();
        let body = links
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|links| SectionBody::Links(SavedLinks { intro, links }));
        Some((heading, topic, body))
    }
}
