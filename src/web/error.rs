//! What a request that fails gets: a handler returns a [`WebError`], and
//! [`render_error_pages`] gives it the page made once at start-up for that kind of failure.
//! So every 404, whether an unknown address or a forged link, has the very same bytes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::mail::smtp::redact;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// An unknown page, or a link token that is malformed, forged or replaced: one answer.
    #[error("not found")]
    NotFound,
    /// A form post without the form token its page gave, or with another one.
    #[error("the form's security token is missing or does not match")]
    Csrf,
    #[error("too many requests from one client")]
    TooMany { retry_after: Duration },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The kinds of error page, each rendered once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPage {
    NotFound,
    Csrf,
    TooMany,
    Internal,
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::BadLink(_) => Self::NotFound,
            other => Self::Internal(other.into()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            Self::NotFound => (StatusCode::NOT_FOUND, ErrorPage::NotFound),
            Self::Csrf => (StatusCode::FORBIDDEN, ErrorPage::Csrf),
            Self::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorPage::TooMany),
            Self::Internal(e) => {
                // Most store errors that name an address are NotFound above; the rest (and a
                // mail server's reply quoted in an error) lose it here.
                let e = format!("{e:#}");
                tracing::error!("a request failed: {}", redact(&e));
                tracing::debug!("a request failed: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage::Internal)
            }
        };
        let mut response = status.into_response();
        if let Self::TooMany { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(page);
        response
    }
}

/// Gives a failed request the body of its error page.
pub async fn render_error_pages(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions().get::<ErrorPage>().copied() {
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        *response.body_mut() = Body::from(state.pages.error(page).to_owned());
    }
    response
}
