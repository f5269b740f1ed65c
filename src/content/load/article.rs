//! `kind = "article"`: a news item, with its image and buttons.

use toml::Spanned;

use super::super::issue::*;
use super::super::model::*;
use super::file::File;
use super::{Cx, Judged};

impl Cx<'_> {
    /// `kind = "article"`: its heading, topic and article.
    pub(super) fn article_section(&mut self, file: &File) -> Option<Judged> {
        let raw: ArticleToml = self.parse(file)?;
        let heading = self.heading(file, &raw.heading);
        let topic = self.topic(file, raw.topic);
        let body = self.article(file, raw.body, raw.image, raw.buttons, &raw.heading);
        Some((
            heading,
            topic,
            body.map(|a| SectionBody::Article(Box::new(a))),
        ))
    }

    pub(super) fn article(
        &mut self,
        file: &File,
        body: Option<Spanned<String>>,
        image: Option<Spanned<ImageToml>>,
        buttons: Vec<Spanned<ButtonToml>>,
        heading: &Spanned<String>,
    ) -> Option<Article> {
        let body = self.markdown(file, body, "body", 2).unwrap_or_default();
        if body.is_blank() && image.is_none() && buttons.is_empty() {
            self.empty(
                file,
                heading,
                "write a `body`, or add an [image] or [[buttons]]",
            );
        }
        let image = match image {
            Some(img) => Some(self.image(file, img)?),
            None => None,
        };
        let buttons: Vec<_> = buttons
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let span = b.span();
                let b = b.into_inner();
                let url = self.link(file, &b.url, &format!("buttons[{i}].url"))?;
                self.link_words(
                    file,
                    span,
                    &b.label,
                    url.as_str(),
                    format!("buttons[{i}].label"),
                );
                Some(Button {
                    label: b.label.trim().to_string(),
                    url,
                })
            })
            .collect();
        Some(Article {
            body,
            image,
            buttons: buttons.into_iter().collect::<Option<_>>()?,
        })
    }
}
