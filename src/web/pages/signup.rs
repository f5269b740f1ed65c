//! `/subscribe` (the sign-up form) and `/confirm/{token}` (the double opt-in's link, whose
//! page confirms with a button, since mail scanners follow links).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use tokio::time::Instant;

use super::{Fields, Forms, LinkView, Message, TopicChoice, mask, topic_choices};
use crate::config::Brand;
use crate::content::TopicCatalog;
use crate::store::{EmailError, NewSubscriber, SubscriberEmail};
use crate::web::ratelimit::Client;
use crate::web::signup::{self, Confirmed, LinkState, Mail, Signup};
use crate::web::{AppState, WebError};

/// Names and organisations longer than this are refused (as the import refuses them).
const MAX_TEXT: usize = 200;
/// "Check your inbox" is never answered sooner than this after the post arrived, so how long
/// the database took (a new address does more work than a known one) does not show.
const ANSWER_AFTER: Duration = Duration::from_millis(250);

#[derive(Serialize)]
struct SignupPage<'a> {
    csrf: String,
    brand: &'a Brand,
    email: &'a str,
    name: &'a str,
    organisation: &'a str,
    topics: Vec<TopicChoice<'a>>,
    errors: Vec<FieldError>,
    email_error: Option<String>,
    name_error: Option<String>,
    organisation_error: Option<String>,
    topics_error: Option<String>,
}

#[derive(Serialize)]
struct FieldError {
    field: &'static str,
    message: String,
}

/// The form, with every topic ticked.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let catalog = state.store.topic_catalog().await?;
    let entered = Entered {
        email: "",
        name: "",
        organisation: "",
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
    name: &'a str,
    organisation: &'a str,
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
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    };
    let page = SignupPage {
        csrf: forms.token(state, "subscribe")?,
        brand: &state.config.brand,
        email: entered.email,
        name: entered.name,
        organisation: entered.organisation,
        topics: topic_choices(catalog, |slug| entered.topics.contains(&slug)),
        email_error: error_of("email"),
        name_error: error_of("name"),
        organisation_error: error_of("organisation"),
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

/// Checks the form; then, whatever the address's state, says "check your inbox".
pub async fn submit(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let arrived = Instant::now();
    state.signup_limit.check(client)?;
    let fields = Fields::parse(&body);
    fields.check(&state, &headers, "subscribe")?;
    let catalog = state.store.topic_catalog().await?;
    let entered = Entered {
        email: fields.get("email").unwrap_or("").trim(),
        name: fields.get("name").unwrap_or("").trim(),
        organisation: fields.get("organisation").unwrap_or("").trim(),
        topics: fields.all("topic").collect(),
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
/// nothing; a failure is logged without the address.
fn send_later(state: AppState, mail: Mail) {
    tokio::spawn(async move {
        if let Err(e) = signup::deliver(&state.config, &state.smtp, &mail).await {
            tracing::warn!("a sign-up email was not sent: {e}");
        }
    });
}

fn check(entered: &Entered, catalog: &TopicCatalog) -> Result<NewSubscriber, Vec<FieldError>> {
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
    let mut text = |field: &'static str, label: &str, value: &str| {
        if value.chars().count() > MAX_TEXT {
            errors.push(FieldError {
                field,
                message: format!("{label} must be {MAX_TEXT} characters or fewer"),
            });
        }
        Some(value.to_string()).filter(|v| !v.is_empty())
    };
    let name = text("name", "Your name", entered.name);
    let organisation = text("organisation", "Your organisation", entered.organisation);
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
        Some(email) if errors.is_empty() => Ok(NewSubscriber {
            email,
            name,
            organisation,
            topics,
        }),
        _ => Err(errors),
    }
}

#[derive(Serialize)]
struct ConfirmPage<'a> {
    token: &'a str,
    csrf: String,
    organisation: &'a str,
}

/// The page the emailed link opens: a button, since opening the link must change nothing.
pub async fn confirm_page(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.link_limit.check(client)?;
    match signup::link_state(&state.store, &token).await? {
        LinkState::Usable => {
            let forms = Forms::of(&state, &headers)?;
            let page = ConfirmPage {
                token: &token,
                csrf: forms.token(&state, "confirm")?,
                organisation: &state.config.brand.organisation,
            };
            let body = state
                .pages
                .render("confirm", "Confirm your subscription", &page)?;
            Ok(forms.respond(StatusCode::OK, body))
        }
        other => not_usable(&state, other),
    }
}

#[derive(Serialize)]
struct ConfirmedPage<'a> {
    email: String,
    token: &'a str,
}

pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    state.link_limit.check(client)?;
    Fields::parse(&body).check(&state, &headers, "confirm")?;
    match signup::confirm(&state.store, &token).await? {
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
