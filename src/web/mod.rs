//! `lscp-mail serve`: the small public site behind every link in the newsletter.
//!
//! Its readers are busy practitioners on phones and, sometimes, people reading in an unsafe
//! home, so the pages are plain HTML that works without JavaScript, each with a "Quick leave"
//! button, sent with strict security headers.
//!
//! One module per job: [`pages`] (a file per page: the handlers and their templates),
//! [`security`] (headers, form tokens), [`ratelimit`] (per client), [`signup`] (double opt-in
//! and its email), [`archive`] (sent issues as web pages), [`calendar`] (`.ics` events),
//! [`error`] (the error pages, one body each).

pub mod archive;
pub mod calendar;
pub mod error;
pub mod pages;
pub mod ratelimit;
pub mod security;
pub mod signup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::content::TopicCatalog;
use crate::mail::outgoing::{Outbox, OutboxError};
use crate::mail::smtp::SmtpTarget;
use crate::store::{Store, StoreError};
pub use error::WebError;
use pages::Pages;
use ratelimit::RateLimiter;
use security::FormKey;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub config: Config,
    /// The topics issues are checked against (the configuration's, as `compose` uses).
    pub catalog: TopicCatalog,
    pub issues_dir: PathBuf,
    /// Where sign-up confirmation emails go out.
    pub smtp: SmtpTarget,
    /// Makes (and signs) them.
    pub outbox: Outbox,
    pub form_key: FormKey,
    pub pages: Pages,
    pub signup_limit: RateLimiter,
    pub link_limit: RateLimiter,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the configuration is not valid: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("the page templates do not build: {0}")]
    Templates(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl AppState {
    /// Reads (or makes, the first time) the installation's form key from the database.
    pub async fn new(store: Store, config: Config, smtp: SmtpTarget) -> Result<Self, ServeError> {
        let form_key = security::form_key(&store).await?;
        let catalog = config.topic_catalog()?;
        let pages = Pages::new(&config).map_err(ServeError::Templates)?;
        let outbox = Outbox::new(&config)?;
        let serve = &config.serve;
        Ok(Self(Arc::new(Inner {
            signup_limit: RateLimiter::new(serve.signup_per_hour, Duration::from_secs(3600)),
            link_limit: RateLimiter::new(serve.link_requests_per_minute, Duration::from_secs(60)),
            issues_dir: serve.issues_dir.clone(),
            store,
            catalog,
            smtp,
            outbox,
            form_key,
            pages,
            config,
        })))
    }
}

/// Every route of the site.
pub fn router(state: AppState) -> Router {
    use pages::{archive, preferences, signup, unsubscribe};
    let routes = Router::new()
        .route("/", get(archive::home))
        .route("/healthz", get(healthz))
        .route("/static/site.css", get(pages::stylesheet))
        .route("/static/quick-leave.js", get(pages::quick_leave_script))
        .route("/p/{token}", get(preferences::show).post(preferences::save))
        .route("/p/{token}/resubscribe", post(preferences::resubscribe))
        .route(
            "/u/{token}",
            get(unsubscribe::show).post(unsubscribe::unsubscribe),
        )
        .route("/subscribe", get(signup::form).post(signup::submit))
        .route(
            "/confirm/{token}",
            get(signup::confirm_page).post(signup::confirm),
        )
        .route("/issues", get(archive::list))
        .merge(
            Router::new()
                .route("/issues/{id}", get(archive::issue))
                .route("/issues/{id}/events/{file}", get(archive::event))
                .route("/issues/{id}/{image}", get(archive::image))
                .layer(security::archive_policy()),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::render_error_pages,
        ));
    security::headers(routes.with_state(state))
}

/// Serves until `shutdown` completes. Tests call it on a listener bound to `127.0.0.1:0`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn not_found() -> WebError {
    WebError::NotFound
}

/// For monitoring: 200 when the database answers, 503 when it does not.
async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer\n",
        )
            .into_response(),
    }
}
