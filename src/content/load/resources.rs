//! `kind = "resources"`: a table of resources, each row a subject with an optional page and
//! photo, and a Markdown description.

use toml::Spanned;

use super::super::diagnostic::Rule;
use super::super::issue::*;
use super::super::model::*;
use super::file::File;
use super::{Cx, Judged};

impl Cx<'_> {
    /// `kind = "resources"`: its rows, each judged like the other kinds' links and images.
    pub(super) fn resources_section(&mut self, file: &File, anchor: &Anchor) -> Option<Judged> {
        let raw: ResourcesToml = self.parse(file)?;
        let heading = self.heading(file, &raw.heading);
        let topic = self.topic(file, raw.topic);
        let intro = self.markdown(file, raw.intro, "intro", 2);
        if raw.resources.is_empty() {
            self.empty(file, &raw.heading, "add at least one [[resources]] table");
        }
        let resources: Vec<_> = raw
            .resources
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.resource(file, anchor, i, r))
            .collect();
        let body = resources
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|resources| SectionBody::Resources(Resources { intro, resources }));
        Some((heading, topic, body))
    }

    fn resource(
        &mut self,
        file: &File,
        anchor: &str,
        i: usize,
        row: Spanned<ResourceToml>,
    ) -> Option<Resource> {
        let r = row.into_inner();
        let at = format!("resources[{i}]");
        let subject = r.subject.get_ref().trim().to_string();
        if subject.is_empty() {
            self.push(
                file.error(Rule::BadValue, r.subject.span(), "the subject is empty")
                    .field(format!("{at}.subject")),
            );
        }
        // The subject is a level-3 heading; the description's own headings come under it.
        let description = self
            .markdown(file, r.description, &format!("{at}.description"), 3)
            .unwrap_or_default();
        let url = match &r.url {
            Some(u) => {
                let url = self.link(file, u, &format!("{at}.url"));
                if let Some(url) = &url {
                    self.link_words(
                        file,
                        r.subject.span(),
                        &subject,
                        url.as_str(),
                        format!("{at}.subject"),
                    );
                }
                Some(url?)
            }
            None => None,
        };
        let photo = match r.photo {
            Some(p) => Some(self.photo(file, p, &format!("{at}.photo"))?),
            None => None,
        };
        if subject.is_empty() {
            return None;
        }
        Some(Resource {
            id: format!("{anchor}-{}", i + 1),
            subject,
            description,
            url,
            photo,
        })
    }

    fn photo(&mut self, file: &File, photo: Spanned<PhotoToml>, at: &str) -> Option<Photo> {
        let span = photo.span();
        let p = photo.into_inner();
        let src = self.image_src(file, &p.src, PHOTO_WIDTH, at);
        let alt = self.alt_text(file, p.alt.as_ref(), span, at);
        let caption = self
            .markdown(file, p.caption, &format!("{at}.caption"), 3)
            .filter(|c| !c.is_blank());
        Some(Photo {
            src: src?,
            alt: alt?,
            caption,
        })
    }
}
