//! The pages, one file each, and what they share: the templates (built into the binary from
//! `src/web/templates/`, escaped like the email's), the layout with its Quick leave button,
//! the stylesheet and script, and finding the reader a link belongs to.

pub mod archive;
pub mod preferences;
pub mod signup;
pub mod unsubscribe;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};

use super::error::ErrorPage;
use super::ratelimit::Client;
use super::security::FormCookie;
use super::{AppState, WebError};
use crate::config::{Brand, Config};
use crate::content::TopicCatalog;
use crate::store::{LinkToken, Subscriber};

/// The page templates, `src/web/templates/` embedded in the binary, each registered under its
/// file name without `.html.hbs`.
#[derive(rust_embed::RustEmbed)]
#[folder = "src/web/templates/"]
#[include = "*.html.hbs"]
struct PageTemplates;

const PAGE_EXTENSION: &str = ".html.hbs";

const STYLESHEET: &str = include_str!("../assets/site.css.hbs");
const QUICK_LEAVE_JS: &str = include_str!("../assets/quick-leave.js");

/// The templates, the stylesheet in the brand's colours, and the error pages, all made once.
pub struct Pages {
    hb: Handlebars<'static>,
    brand: Brand,
    quick_leave_url: String,
    stylesheet: String,
    not_found: String,
    csrf: String,
    too_many: String,
    internal: String,
}

#[derive(Serialize)]
struct Layout<'a> {
    title: &'a str,
    body: &'a str,
    brand: &'a Brand,
    quick_leave_url: &'a str,
}

/// A page that only says something.
#[derive(Serialize)]
pub struct Message<'a> {
    pub heading: &'a str,
    pub paragraphs: Vec<String>,
    pub link: Option<LinkView<'a>>,
}

#[derive(Serialize)]
pub struct LinkView<'a> {
    pub url: &'a str,
    pub label: &'a str,
}

impl Pages {
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_embed_templates_with_extension::<PageTemplates>(PAGE_EXTENSION)
            .map_err(|e| e.to_string())?;
        let brand = &config.brand;
        let stylesheet = Handlebars::new()
            .render_template(STYLESHEET, &serde_json::json!({ "brand": brand }))
            .map_err(|e| format!("site.css: {e}"))?;
        let mut pages = Self {
            hb,
            brand: brand.clone(),
            quick_leave_url: config.site.quick_leave_url.to_string(),
            stylesheet,
            not_found: String::new(),
            csrf: String::new(),
            too_many: String::new(),
            internal: String::new(),
        };
        let contact = format!("email {}", brand.contact_email);
        let home = || {
            Some(LinkView {
                url: "/issues",
                label: "Read the newsletter",
            })
        };
        let message = |pages: &Self, heading: &str, paragraphs: Vec<String>, link| {
            pages
                .render(
                    "message",
                    heading,
                    &Message {
                        heading,
                        paragraphs,
                        link,
                    },
                )
                .map_err(|e| format!("{heading}: {e}"))
        };
        pages.not_found = message(
            &pages,
            "Page not found",
            vec![
                "There is no page at this address. If you followed a link from an email, it \
                 may have been cut short, or replaced by a newer one: use the link in the \
                 latest newsletter."
                    .into(),
            ],
            home(),
        )?;
        pages.csrf = message(
            &pages,
            "Please try again",
            vec![
                "This form was out of date, or your browser did not send it back to us \
                 with its cookie. Go back, reload the page and send the form again."
                    .into(),
                format!("If this keeps happening, allow cookies for this site or {contact}."),
            ],
            None,
        )?;
        pages.too_many = message(
            &pages,
            "Too many requests",
            vec!["Wait a few minutes, then try again.".into()],
            None,
        )?;
        pages.internal = message(
            &pages,
            "Something went wrong",
            vec![format!(
                "Sorry: this did not work, and nothing was changed. Try again later, or {contact}."
            )],
            None,
        )?;
        Ok(pages)
    }

    /// The page's own template inside the layout.
    pub fn render(
        &self,
        template: &str,
        title: &str,
        context: &impl Serialize,
    ) -> Result<String, WebError> {
        let fail = |e: handlebars::RenderError| {
            WebError::Internal(anyhow::anyhow!("rendering the page `{template}`: {e}"))
        };
        let body = self.hb.render(template, context).map_err(fail)?;
        self.hb
            .render(
                "layout",
                &Layout {
                    title,
                    body: &body,
                    brand: &self.brand,
                    quick_leave_url: &self.quick_leave_url,
                },
            )
            .map_err(fail)
    }

    pub fn error(&self, page: ErrorPage) -> &str {
        match page {
            ErrorPage::NotFound => &self.not_found,
            ErrorPage::Csrf => &self.csrf,
            ErrorPage::TooMany => &self.too_many,
            ErrorPage::Internal => &self.internal,
        }
    }
}

/// An HTML response, setting the form cookie when the browser had none.
pub fn html(status: StatusCode, body: String, cookie: Option<HeaderValue>) -> Response {
    let mut response = (status, axum::response::Html(body)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn stylesheet(State(state): State<AppState>) -> Response {
    asset("text/css; charset=utf-8", state.pages.stylesheet.clone())
}

pub async fn quick_leave_script() -> Response {
    asset("text/javascript; charset=utf-8", QUICK_LEAVE_JS.to_string())
}

fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A form on a page: the browser's form cookie and what to set when it is new.
pub struct Forms {
    cookie: FormCookie,
    secure: bool,
}

impl Forms {
    pub fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, WebError> {
        Ok(Self {
            cookie: FormCookie::of(headers)?,
            secure: state.config.site.base_url.is_https(),
        })
    }

    /// The token for one form with this purpose.
    pub fn token(&self, state: &AppState, purpose: &str) -> Result<String, WebError> {
        state.form_key.token(&self.cookie, purpose)
    }

    pub fn respond(&self, status: StatusCode, body: String) -> Response {
        html(status, body, self.cookie.set_cookie(self.secure))
    }
}

/// A post of a form with only its token (the unsubscribe and resubscribe buttons).
#[derive(Deserialize)]
pub struct TokenOnly {
    pub csrf: Option<String>,
}

/// The reader whose link token is in the address (`/p/{token}`, `/u/{token}`), each request
/// counted against the client's limit for link pages.
pub struct Reader {
    pub subscriber: Subscriber,
    pub token: String,
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let client = Client::from_request_parts(parts, state).await?;
        state.link_limit.check(client)?;
        Self::find(parts, state).await
    }
}

impl Reader {
    /// Without counting the request: for mail providers' one-click unsubscribes.
    pub async fn find(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let Path(token) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::NotFound)?;
        let subscriber = find_by_link(state, &token).await?;
        Ok(Self { subscriber, token })
    }
}

/// The subscriber a link token belongs to. A malformed token is looked up as a token that
/// matches no one, so it takes as long as a forged one and gets the same 404.
async fn find_by_link(state: &AppState, token: &str) -> Result<Subscriber, WebError> {
    let token =
        LinkToken::parse(token).unwrap_or_else(|_| LinkToken::new(vec![0; 16], vec![0; 32]));
    Ok(state.store.find_by_link(&token).await?)
}

/// `a•••@example.org`: enough for readers to recognise their address, not enough for someone
/// looking over their shoulder to learn it.
pub fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".into(),
    }
}

/// What every page behind a reader's link shows of them (their address, masked), its links'
/// token and, when the page has a form, that form's token. Pages with more flatten it in.
#[derive(Serialize)]
pub struct ReaderPage<'a> {
    pub email: String,
    pub token: &'a str,
    pub csrf: Option<String>,
}

impl<'a> ReaderPage<'a> {
    pub fn new(subscriber: &Subscriber, token: &'a str, csrf: Option<String>) -> Self {
        Self {
            email: mask(subscriber.email.as_str()),
            token,
            csrf,
        }
    }
}

/// A topic checkbox.
#[derive(Serialize)]
pub struct TopicChoice<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub checked: bool,
}

pub fn topic_choices<'a>(
    catalog: &'a TopicCatalog,
    checked: impl Fn(&str) -> bool,
) -> Vec<TopicChoice<'a>> {
    catalog
        .info()
        .iter()
        .map(|t| TopicChoice {
            slug: &t.slug,
            name: &t.name,
            description: &t.description,
            checked: checked(&t.slug),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_shown_masked() {
        assert_eq!(mask("Ann.Smith@example.org"), "A•••@example.org");
        assert_eq!(mask("nonsense"), "•••");
    }

    #[test]
    fn every_page_template_builds_with_the_default_configuration() {
        let pages = Pages::new(&Config::default()).expect("templates build");
        assert!(pages.error(ErrorPage::NotFound).contains("Page not found"));
        assert!(pages.stylesheet.contains("#4b2e83"));
    }
}
