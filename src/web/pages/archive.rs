//! `/issues` (the sent issues), `/issues/{YYYY-MM}` (one, whole), its events' `.ics` files and
//! its published images.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::content::IssueId;
use crate::render::ReaderLinks;
use crate::web::archive::{self, IssuePage};
use crate::web::calendar;
use crate::web::{AppState, WebError};

/// Archive pages are the same for everyone: caches may keep them a while.
const CACHE: &str = "public, max-age=300";

pub async fn home() -> Redirect {
    Redirect::to("/issues")
}

#[derive(Serialize)]
struct IssuesPage {
    issues: Vec<Listed>,
}

#[derive(Serialize)]
struct Listed {
    id: String,
    title: String,
    subject: String,
}

pub async fn list(State(state): State<AppState>) -> Result<Response, WebError> {
    let ids = archive::sent_issues(&state.store).await?;
    let issues = ids
        .into_iter()
        .filter_map(|id| archive::load(&state.issues_dir, id, &state.catalog))
        .map(|issue| Listed {
            id: issue.id.to_string(),
            title: issue.title,
            subject: issue.subject,
        })
        .collect();
    let body = state
        .pages
        .render("issues", "Newsletter archive", &IssuesPage { issues })?;
    Ok(cached(super::html(StatusCode::OK, body, None)))
}

pub async fn issue(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let issue = sent(&state, &id).await?;
    let links = ReaderLinks::preview(&state.config, &issue);
    let page = IssuePage::new(&issue, &state.config, &state.catalog, &links);
    let body = state.pages.render("issue", &issue.title, &page)?;
    let body = archive::without_inline_link_styles(&body, &state.config);
    Ok(cached(super::html(StatusCode::OK, body, None)))
}

pub async fn event(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let event_id = file.strip_suffix(".ics").ok_or(WebError::NotFound)?;
    let issue = sent(&state, &id).await?;
    let url = archive::issue_url(&state.config, issue.id);
    let event = calendar::events(&issue, &url)
        .into_iter()
        .find(|e| e.id == event_id)
        .ok_or(WebError::NotFound)?;
    let domain = (state.config.site.base_url.url().host_str())
        .unwrap_or("localhost")
        .to_string();
    let ics = calendar::ics(&event, &issue, &state.config.brand.organisation, &domain);
    let mut response = ics.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    // The id is the issue's own: letters, digits and dashes.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.ics\"", event.id)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(cached(response))
}

/// Published images are named by a hash of their content: a name never changes meaning.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// An issue's local image as `send` stored it with the campaign: the email's `<img>` points here.
pub async fn image(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = IssueId::parse(&id).map_err(|_| WebError::NotFound)?;
    let image = state
        .store
        .issue_image(id, &name)
        .await?
        .ok_or(WebError::NotFound)?;
    let content_type =
        HeaderValue::from_str(&image.content_type).map_err(|e| WebError::Internal(e.into()))?;
    let mut response = image.bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(response)
}

/// The sent issue `id`, or the site's 404 for a malformed, unsent or missing one.
async fn sent(state: &AppState, id: &str) -> Result<crate::content::Issue, WebError> {
    let id = IssueId::parse(id).map_err(|_| WebError::NotFound)?;
    if !archive::is_sent(&state.store, id).await? {
        return Err(WebError::NotFound);
    }
    archive::load(&state.issues_dir, id, &state.catalog).ok_or(WebError::NotFound)
}

fn cached(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    response
}
