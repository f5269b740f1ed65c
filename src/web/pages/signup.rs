//! `/subscribe` (the sign-up form) and `/confirm/{token}` (the double opt-in's link, whose
//! page confirms with a button, since mail scanners follow links).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::Form;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Forms, LinkView, Message, TopicChoice, mask, topic_choices};
use crate::config::Brand;
use crate::content::TopicCatalog;
use crate::mail::smtp::redact;
use crate::store::{DisplayName, EmailError, NameError, SubscriberEmail, name};
use crate::web::ratelimit::Client;
use crate::web::signup::{self, Confirmed, Details, LinkState, Mail, Signup, SignupRequest};
use crate::web::{AppState, WebError};
/// "Check your inbox" is never answered sooner than this after the post arrived, so how long
/// the database took (a new address does more work than a known one) does not show.
const ANSWER_AFTER: Duration = Duration::from_millis(250);

#[derive(Serialize)]
struct SignupPage<'a> {
    csrf: String,
    brand: &'a Brand,
    email: &'a str,
    topics: Vec<TopicChoice<'a>>,
    errors: Vec<FieldError>,
    email_error: Option<String>,
    topics_error: Option<String>,
}

#[derive(Serialize)]
struct FieldError {
    field: &'static str,
    message: String,
}

/// The message for `field`, to show beside it.
fn error_of(errors: &[FieldError], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.clone())
}

/// The form, with every topic ticked.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let catalog = state.store.topic_catalog().await?;
    let entered = Entered {
        email: "",
        topics: catalog.slugs().collect(),
    };
    page(
        &state,
        &headers,
        &catalog,
        &entered,
        Vec::new(),
        StatusCode::OK,
    )
}

/// What the visitor typed, to show again beside what was wrong with it.
struct Entered<'a> {
    email: &'a str,
    topics: Vec<&'a str>,
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    catalog: &TopicCatalog,
    entered: &Entered,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let forms = Forms::of(state, headers)?;
    let error_of = |field: &str| error_of(&errors, field);
    let page = SignupPage {
        csrf: forms.token(state, "subscribe")?,
        brand: &state.config.brand,
        email: entered.email,
        topics: topic_choices(catalog, |slug| entered.topics.contains(&slug)),
        email_error: error_of("email"),
        topics_error: error_of("topics"),
        errors,
    };
    let title = if page.errors.is_empty() {
        "Sign up"
    } else {
        "Error: sign up"
    };
    let body = state.pages.render("subscribe", title, &page)?;
    Ok(forms.respond(status, body))
}

#[derive(Serialize)]
struct CheckInbox<'a> {
    email: &'a str,
}

/// The sign-up form: the address and one `topic` field per ticked box.
#[derive(Deserialize)]
pub struct SignupForm {
    csrf: Option<String>,
    email: Option<String>,
    #[serde(default)]
    topic: Vec<String>,
}

/// Checks the form; then, whatever the address's state, says "check your inbox".
pub async fn submit(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Result<Response, WebError> {
    let arrived = Instant::now();
    state.signup_limit.check(client)?;
    state
        .form_key
        .check(&headers, "subscribe", form.csrf.as_deref())?;
    let catalog = state.store.topic_catalog().await?;
    // A name or organisation posted here is ignored: see `SignupRequest`.
    let entered = Entered {
        email: form.email.as_deref().unwrap_or("").trim(),
        topics: form.topic.iter().map(String::as_str).collect(),
    };
    let new = match check(&entered, &catalog) {
        Ok(new) => new,
        Err(errors) => {
            return page(
                &state,
                &headers,
                &catalog,
                &entered,
                errors,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let mail = match signup::sign_up(&state.store, &new).await? {
        Signup::Confirm { subscriber, token } => Some(signup::confirmation_mail(
            &state.config,
            &subscriber,
            &token,
        )),
        Signup::AlreadyActive { subscriber, link } => Some(signup::already_subscribed_mail(
            &state.config,
            &subscriber,
            &link,
        )),
        Signup::Nothing => None,
    };
    if let Some(mail) = mail {
        send_later(state.clone(), mail);
    }
    tokio::time::sleep_until(arrived + ANSWER_AFTER).await;
    let body = state.pages.render(
        "check-inbox",
        "Check your inbox",
        &CheckInbox {
            email: new.email.as_str(),
        },
    )?;
    Ok(super::html(StatusCode::OK, body, None))
}

/// Sends after the answer has gone, so how long the mail server takes tells the visitor
/// nothing; a failure is logged without the address or the link's token (servers quote them),
/// except at debug level.
fn send_later(state: AppState, mail: Mail) {
    tokio::spawn(async move {
        if let Err(e) = signup::deliver(&state.outbox, &state.smtp, &mail).await {
            let e = e.to_string();
            tracing::warn!("a sign-up email was not sent: {}", redact(&e));
            tracing::debug!("a sign-up email was not sent: {e}");
        }
    });
}

fn check(entered: &Entered, catalog: &TopicCatalog) -> Result<SignupRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let email = SubscriberEmail::parse(entered.email)
        .map_err(|e| {
            errors.push(FieldError {
                field: "email",
                message: match e {
                    EmailError::Empty => "Enter your email address".into(),
                    EmailError::TooLong => {
                        "Enter an email address of 254 characters or fewer".into()
                    }
                    EmailError::NonAsciiLocalPart(_) => {
                        "Enter an address with only unaccented letters, digits and . _ - + \
                         before the @: most mail servers cannot deliver to other letters there"
                            .into()
                    }
                    _ => "Enter an email address like name@example.org".into(),
                },
            })
        })
        .ok();
    let topics: crate::content::TopicSet = entered
        .topics
        .iter()
        .filter_map(|t| catalog.parse(t).ok())
        .collect();
    if topics.is_empty() {
        errors.push(FieldError {
            field: "topics",
            message: "Choose at least one topic".into(),
        });
    }
    match email {
        Some(email) if errors.is_empty() => Ok(SignupRequest { email, topics }),
        _ => Err(errors),
    }
}

#[derive(Serialize)]
struct ConfirmPage<'a> {
    token: &'a str,
    csrf: String,
    organisation: &'a str,
    name_value: &'a str,
    organisation_value: &'a str,
    errors: Vec<FieldError>,
    name_error: Option<String>,
    organisation_error: Option<String>,
}

/// The page the emailed link opens: a button, since opening the link must change nothing, and
/// the name and organisation to keep, asked here, of the mailbox's owner, and not on the
/// sign-up form, of anyone.
pub async fn confirm_page(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.link_limit.check(client)?;
    match signup::link_state(&state.store, &token).await? {
        LinkState::Usable => confirm_form(
            &state,
            &headers,
            &token,
            ("", ""),
            Vec::new(),
            StatusCode::OK,
        ),
        other => not_usable(&state, other),
    }
}

fn confirm_form(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    (name, organisation): (&str, &str),
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let forms = Forms::of(state, headers)?;
    let error_of = |field: &str| error_of(&errors, field);
    let page = ConfirmPage {
        token,
        csrf: forms.token(state, "confirm")?,
        organisation: &state.config.brand.organisation,
        name_value: name,
        organisation_value: organisation,
        name_error: error_of("name"),
        organisation_error: error_of("organisation"),
        errors,
    };
    let title = if page.errors.is_empty() {
        "Confirm your subscription"
    } else {
        "Error: confirm your subscription"
    };
    let body = state.pages.render("confirm", title, &page)?;
    Ok(forms.respond(status, body))
}

/// The name and organisation given with the confirmation, or what is wrong with them.
fn details(name: &str, organisation: &str) -> Result<Details, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text = |field: &'static str, label: &str, value: &str| {
        DisplayName::parse(value)
            .map_err(|e| {
                errors.push(FieldError {
                    field,
                    message: match e {
                        NameError::TooLong => {
                            format!("{label} must be {} characters or fewer", name::MAX_CHARS)
                        }
                        NameError::LineBreak | NameError::Control(_) => {
                            format!("{label} must be one line of ordinary text")
                        }
                    },
                })
            })
            .ok()
            .flatten()
    };
    let name = text("name", "Your name", name);
    let organisation = text("organisation", "Your organisation", organisation);
    if errors.is_empty() {
        Ok(Details { name, organisation })
    } else {
        Err(errors)
    }
}

#[derive(Serialize)]
struct ConfirmedPage<'a> {
    email: String,
    token: &'a str,
}

/// The confirmation form: who the person confirming says they are.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: Option<String>,
    name: Option<String>,
    organisation: Option<String>,
}

pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    state.link_limit.check(client)?;
    state
        .form_key
        .check(&headers, "confirm", form.csrf.as_deref())?;
    let name = form.name.as_deref().unwrap_or("").trim();
    let organisation = form.organisation.as_deref().unwrap_or("").trim();
    let details = match details(name, organisation) {
        Ok(d) => d,
        Err(errors) => {
            // The link is not used until what comes with it is right.
            return match signup::link_state(&state.store, &token).await? {
                LinkState::Usable => confirm_form(
                    &state,
                    &headers,
                    &token,
                    (name, organisation),
                    errors,
                    StatusCode::BAD_REQUEST,
                ),
                other => not_usable(&state, other),
            };
        }
    };
    match signup::confirm(&state.store, &token, &details).await? {
        Confirmed::Subscribed(subscriber) => {
            let link = state.store.link_token(&subscriber).await?.expose();
            let page = ConfirmedPage {
                email: mask(subscriber.email.as_str()),
                token: &link,
            };
            let body = state
                .pages
                .render("confirmed", "You are subscribed", &page)?;
            Ok(super::html(StatusCode::OK, body, None))
        }
        Confirmed::NotUsable(why) => not_usable(&state, why),
    }
}

/// An unknown link gets the site's one 404; an expired or used one says so, since only the
/// mailbox's owner has it.
fn not_usable(state: &AppState, why: LinkState) -> Result<Response, WebError> {
    let (heading, paragraph) = match why {
        LinkState::Expired => (
            "This link has expired",
            format!(
                "Links to confirm a sign-up work for {} hours. Sign up again for a new one.",
                signup::CONFIRM_WITHIN_HOURS
            ),
        ),
        LinkState::Used => (
            "This link has been used",
            "Each link to confirm a sign-up works once. If you pressed Confirm, you are \
             subscribed; if not, sign up again."
                .to_string(),
        ),
        LinkState::Unknown | LinkState::Usable => return Err(WebError::NotFound),
    };
    let message = Message {
        heading,
        paragraphs: vec![paragraph],
        link: Some(LinkView {
            url: "/subscribe",
            label: "Sign up",
        }),
    };
    let body = state.pages.render("message", heading, &message)?;
    Ok(super::html(StatusCode::GONE, body, None))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::{FromRequest, Request};
    use axum::http::header;

    use super::*;

    async fn posted<T: serde::de::DeserializeOwned>(body: &'static str) -> T {
        let request = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("a request");
        let Form(form) = Form::<T>::from_request(request, &())
            .await
            .expect("the form reads");
        form
    }

    #[tokio::test]
    async fn repeated_form_fields_are_all_kept() {
        let form: SignupForm =
            posted("topic=training&topic=events&csrf=a.b&email=ann%40x.org").await;
        assert_eq!(form.topic, ["training", "events"]);
        assert_eq!(form.csrf.as_deref(), Some("a.b"));
        assert_eq!(form.email.as_deref(), Some("ann@x.org"));

        let form: ConfirmForm = posted("csrf=a.b&name=Ann+O%27Neill").await;
        assert_eq!(form.name.as_deref(), Some("Ann O'Neill"));
        assert_eq!(form.organisation, None);
    }
}
