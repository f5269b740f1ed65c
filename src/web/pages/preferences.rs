//! `/p/{token}`: the reader's topics as checkboxes, saved by a form post; and resubscribing
//! after an unsubscribe.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::Form;
use serde::{Deserialize, Serialize};

use super::{Forms, Reader, ReaderPage, TokenOnly, TopicChoice, topic_choices};
use crate::content::TopicCatalog;
use crate::store::{ConsentSource, NewSubscriber, Subscriber, SubscriberStatus};
use crate::web::{AppState, WebError};

#[derive(Serialize)]
struct PreferencesPage<'a> {
    /// With the token of the topics form.
    #[serde(flatten)]
    reader: ReaderPage<'a>,
    unsubscribe_csrf: String,
    resubscribe_csrf: String,
    topics: Vec<TopicChoice<'a>>,
    active: bool,
    unsubscribed: bool,
    /// Bounced or blocked: we do not write to them, and they cannot resubscribe here.
    stopped: bool,
    contact_email: &'a str,
}

pub async fn show(
    State(state): State<AppState>,
    Reader { subscriber, token }: Reader,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    page(&state, &subscriber, &token, &headers).await
}

async fn page(
    state: &AppState,
    subscriber: &Subscriber,
    token: &str,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    let catalog = state.store.topic_catalog().await?;
    let forms = Forms::of(state, headers)?;
    let page = PreferencesPage {
        reader: ReaderPage::new(subscriber, token, Some(forms.token(state, "preferences")?)),
        unsubscribe_csrf: forms.token(state, "unsubscribe")?,
        resubscribe_csrf: forms.token(state, "resubscribe")?,
        topics: topic_choices(&catalog, |slug| subscriber.topics.iter().any(|t| t == slug)),
        active: matches!(
            subscriber.status,
            SubscriberStatus::Active | SubscriberStatus::Pending
        ),
        unsubscribed: subscriber.status == SubscriberStatus::Unsubscribed,
        stopped: matches!(
            subscriber.status,
            SubscriberStatus::Bounced | SubscriberStatus::Blocked
        ),
        contact_email: &state.config.brand.contact_email,
    };
    let body = state
        .pages
        .render("preferences", "Your newsletter choices", &page)?;
    Ok(forms.respond(StatusCode::OK, body))
}

#[derive(Serialize)]
struct SavedPage<'a> {
    token: &'a str,
    changed: bool,
    added: Vec<&'a str>,
    removed: Vec<&'a str>,
    now: String,
}

/// The topics form: one `topic` field per ticked box.
#[derive(Deserialize)]
pub struct TopicsForm {
    csrf: Option<String>,
    #[serde(default)]
    topic: Vec<String>,
}

/// Replaces the reader's topics with the ticked ones: adding as well as removing.
pub async fn save(
    State(state): State<AppState>,
    Reader { subscriber, token }: Reader,
    headers: HeaderMap,
    Form(form): Form<TopicsForm>,
) -> Result<Response, WebError> {
    let csrf = form.csrf.as_deref();
    state.form_key.check(&headers, "preferences", csrf)?;
    let catalog = state.store.topic_catalog().await?;
    // A box for a topic that no longer exists is ignored, like an unticked one.
    let wanted = form
        .topic
        .iter()
        .filter_map(|slug| catalog.parse(slug).ok())
        .collect();
    let change = state
        .store
        .set_topics(&subscriber.email, &wanted, &ConsentSource::Web)
        .await?;
    let name = |slug| topic_name(&catalog, slug);
    let page = SavedPage {
        token: &token,
        changed: change.changed(),
        added: change
            .after
            .iter()
            .filter(|t| !change.before.contains(t))
            .map(name)
            .collect(),
        removed: change
            .before
            .iter()
            .filter(|t| !change.after.contains(t))
            .map(name)
            .collect(),
        now: change.after.iter().map(name).collect::<Vec<_>>().join(", "),
    };
    let title = if page.changed {
        "Your choices are saved"
    } else {
        "Nothing changed"
    };
    let body = state.pages.render("preferences-saved", title, &page)?;
    Ok(super::html(StatusCode::OK, body, None))
}

/// Someone who unsubscribed comes back, with the topics they had. The link came in a message
/// to their address, so it proves the address is theirs: no second confirmation is needed.
pub async fn resubscribe(
    State(state): State<AppState>,
    Reader { subscriber, token }: Reader,
    headers: HeaderMap,
    Form(form): Form<TokenOnly>,
) -> Result<Response, WebError> {
    let csrf = form.csrf.as_deref();
    state.form_key.check(&headers, "resubscribe", csrf)?;
    if subscriber.status == SubscriberStatus::Unsubscribed {
        let catalog = state.store.topic_catalog().await?;
        let topics = subscriber
            .topics
            .iter()
            .filter_map(|slug| catalog.parse(slug).ok())
            .collect();
        let again = NewSubscriber {
            email: subscriber.email.clone(),
            // None keeps the name and organisation they had.
            name: None,
            organisation: None,
            topics,
        };
        state
            .store
            .add_subscriber(&again, SubscriberStatus::Active, &ConsentSource::Web, true)
            .await?;
    } else if subscriber.status != SubscriberStatus::Active {
        // Bounced or blocked: the preferences page says whom to ask.
        return page(&state, &subscriber, &token, &headers).await;
    }
    let page = ReaderPage::new(&subscriber, &token, None);
    let body = state.pages.render("resubscribed", "Welcome back", &page)?;
    Ok(super::html(StatusCode::OK, body, None))
}

fn topic_name<'a>(catalog: &'a TopicCatalog, slug: &'a String) -> &'a str {
    catalog
        .info()
        .iter()
        .find(|t| &t.slug == slug)
        .map_or(slug.as_str(), |t| t.name.as_str())
}
