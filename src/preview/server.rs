//! The preview's routes: the page (`/`), the email exactly as `compose` makes it (`/email`), its
//! plain-text part (`/email.txt`), the `.eml` (`/message.eml`), and the stream of rebuilds
//! (`/events`), and the issue's local images (`/<published name>`). Every route reads the latest build; none ever answers from an older one.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast;
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};

use super::{Build, Ready, Sources, page};
use crate::content::TopicSet;
use crate::render::message;

/// One build and its number: the page knows which build it shows and reloads when the server
/// has a newer one.
pub struct Snapshot {
    pub generation: u64,
    pub build: Build,
}

/// What the page hears on `/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A file changed and a rebuild started: the email on screen is about to be outdated.
    Building,
    /// Build number `n` is ready (or broken): reload.
    Built(u64),
    /// The server is stopping: end the streams so that it can.
    Closing,
}

#[derive(Clone)]
pub struct Preview(Arc<Inner>);

pub struct Inner {
    pub sources: Sources,
    current: RwLock<Arc<Snapshot>>,
    notices: broadcast::Sender<Notice>,
}

impl Preview {
    pub fn new(sources: Sources, first: Build) -> Self {
        let (notices, _) = broadcast::channel(64);
        Self(Arc::new(Inner {
            sources,
            current: RwLock::new(Arc::new(Snapshot {
                generation: 1,
                build: first,
            })),
            notices,
        }))
    }

    pub fn sources(&self) -> &Sources {
        &self.0.sources
    }

    pub fn current(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a panic elsewhere mid-swap of an Arc: the value is whole.
        self.0
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn building(&self) {
        // No page listening is fine.
        let _ = self.0.notices.send(Notice::Building);
    }

    /// Makes `build` the current one and tells every open page; returns its number.
    pub fn publish(&self, build: Build) -> u64 {
        let generation = {
            let mut current = self.0.current.write().unwrap_or_else(|e| e.into_inner());
            let generation = current.generation + 1;
            *current = Arc::new(Snapshot { generation, build });
            generation
        };
        let _ = self.0.notices.send(Notice::Built(generation));
        generation
    }

    pub fn close(&self) {
        let _ = self.0.notices.send(Notice::Closing);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.0.notices.subscribe()
    }
}

pub fn router(preview: Preview) -> Router {
    Router::new()
        .route("/", get(show_page))
        .route("/email", get(email_html))
        .route("/email.txt", get(email_text))
        .route("/message.eml", get(eml))
        .route("/events", get(events))
        .route("/{image}", get(image))
        .with_state(preview)
}

/// `?topics=training,events`, or `?topic=training&topic=events` as the page's form sends them.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub topics: Option<Vec<String>>,
    pub phone: bool,
    pub text: bool,
}

impl View {
    pub fn parse(query: Option<&str>) -> Self {
        let mut view = Self::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "topics" | "topic" => view.topics.get_or_insert_with(Vec::new).extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from),
                ),
                "width" => view.phone = v == "phone",
                "part" => view.text = v == "text",
                _ => {}
            }
        }
        view
    }

    /// The topics as the catalogue knows them; an unknown one is an error to show, not ignore.
    pub fn topic_set(&self, ready: &Ready) -> Result<Option<TopicSet>, String> {
        match &self.topics {
            None => Ok(None),
            Some(list) => list
                .iter()
                .map(|t| ready.catalog.parse(t).map_err(|e| e.to_string()))
                .collect::<Result<TopicSet, _>>()
                .map(Some),
        }
    }

    /// The query string for the same view with `topics`.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &self.topics {
            q.append_pair("topics", &t.join(","));
        }
        q.finish()
    }
}

async fn show_page(State(p): State<Preview>, RawQuery(q): RawQuery) -> Html<String> {
    let snapshot = p.current();
    Html(page::render(
        &p.sources().issue,
        &snapshot,
        &View::parse(q.as_deref()),
    ))
}

/// The email's own HTML, with a policy that forbids script: it is shown as it will be sent.
async fn email_html(State(p): State<Preview>, RawQuery(q): RawQuery) -> Response {
    with_email(&p, q.as_deref(), |r| {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "script-src 'none'; object-src 'none'",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            r.html.clone(),
        )
            .into_response()
    })
}

async fn email_text(State(p): State<Preview>, RawQuery(q): RawQuery) -> Response {
    with_email(&p, q.as_deref(), |r| {
        (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            r.text.clone(),
        )
            .into_response()
    })
}

/// The message as `compose` writes `message.eml`, made when asked for.
async fn eml(State(p): State<Preview>, RawQuery(q): RawQuery) -> Response {
    let snapshot = p.current();
    let Build::Ready(ready) = &snapshot.build else {
        return not_ready();
    };
    with_email(&p, q.as_deref(), |r| {
        match message::preview(&ready.mail, &ready.subject, r) {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "message/rfc822".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.eml\"", ready.id),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    })
}

/// A local image of the issue, at the relative address the email gives it.
async fn image(State(p): State<Preview>, Path(name): Path<String>) -> Response {
    let snapshot = p.current();
    let Build::Ready(ready) = &snapshot.build else {
        return not_ready();
    };
    match ready.images.iter().find(|i| i.name == name) {
        Some(img) => (
            [
                (header::CONTENT_TYPE, img.content_type),
                (header::CACHE_CONTROL, "no-store"),
            ],
            img.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "No such image in this issue.").into_response(),
    }
}

fn with_email(
    p: &Preview,
    query: Option<&str>,
    answer: impl FnOnce(&crate::render::Rendered) -> Response,
) -> Response {
    let snapshot = p.current();
    let Build::Ready(ready) = &snapshot.build else {
        return not_ready();
    };
    match View::parse(query).topic_set(ready) {
        Ok(topics) => answer(ready.email(topics.as_ref())),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Never an older email in place of the current one: while the issue is broken there is none.
fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        "The issue has errors: the preview page lists them.",
    )
        .into_response()
}

/// `event: built` with the build number, first the current one (so a page that loaded just
/// before a rebuild catches up), then each new one; `event: building` when a rebuild starts.
async fn events(State(p): State<Preview>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = p.subscribe();
    let now = p.current().generation;
    let first = tokio_stream::once(Notice::Built(now));
    let rest = BroadcastStream::new(rx).filter_map(Result::ok);
    let stream = first
        .chain(rest)
        .take_while(|n| *n != Notice::Closing)
        .map(|n| {
            Ok(match n {
                Notice::Building => Event::default().event("building").data(""),
                Notice::Built(g) => Event::default().event("built").data(g.to_string()),
                Notice::Closing => Event::default(),
            })
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
