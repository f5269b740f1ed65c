//! `/u/{token}`: the footer's unsubscribe link and the `List-Unsubscribe` URL.
//!
//! A `GET` only shows a page with one button and never changes anything, because mail
//! scanners follow links. A `POST` unsubscribes: from the page's form (with its form token,
//! logged as `web`), or from a mail client's one-click button (RFC 8058), which posts exactly
//! `List-Unsubscribe=One-Click` with no cookie and so no form token; then the link token in
//! the address is the authority, and the change is logged as `one-click`.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::{Forms, Reader, ReaderPage};
use crate::store::{ConsentSource, Subscriber, SubscriberStatus};
use crate::web::{AppState, WebError};

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

#[derive(Serialize)]
struct UnsubscribePage<'a> {
    #[serde(flatten)]
    reader: ReaderPage<'a>,
    organisation: &'a str,
}

pub async fn show(
    State(state): State<AppState>,
    Reader { subscriber, token }: Reader,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if subscriber.status == SubscriberStatus::Unsubscribed {
        return unsubscribed_page(&state, &subscriber, &token, &headers);
    }
    let forms = Forms::of(&state, &headers)?;
    let page = UnsubscribePage {
        reader: ReaderPage::new(
            &subscriber,
            &token,
            Some(forms.token(&state, "unsubscribe")?),
        ),
        organisation: &state.config.brand.organisation,
    };
    let body = state.pages.render("unsubscribe", "Unsubscribe", &page)?;
    Ok(forms.respond(StatusCode::OK, body))
}

/// Unsubscribes at once; answers 200 with the page that offers to resubscribe, never a redirect.
pub async fn unsubscribe(
    State(state): State<AppState>,
    mut parts: Parts,
    body: Bytes,
) -> Result<Response, WebError> {
    let headers = &parts.headers.clone();
    let one_click = is_one_click(headers, &body);
    // Mail providers post one-click unsubscribes for all their users from a few addresses: a
    // per-client limit would refuse them. The 256-bit token in the address is the guard.
    let Reader { subscriber, token } = if one_click {
        Reader::find(&mut parts, &state).await?
    } else {
        Reader::from_request_parts(&mut parts, &state).await?
    };
    let source = if one_click {
        ConsentSource::OneClick
    } else {
        // The body is read here rather than by a form extractor: a one-click post may be
        // multipart.
        let csrf = url::form_urlencoded::parse(&body)
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.into_owned());
        state
            .form_key
            .check(headers, "unsubscribe", csrf.as_deref())?;
        ConsentSource::Web
    };
    // Bounced or blocked readers get no mail already, and must not become "unsubscribed",
    // which they could undo here.
    if matches!(
        subscriber.status,
        SubscriberStatus::Active | SubscriberStatus::Pending
    ) {
        state.store.unsubscribe(&subscriber.email, &source).await?;
    }
    unsubscribed_page(&state, &subscriber, &token, headers)
}

fn unsubscribed_page(
    state: &AppState,
    subscriber: &Subscriber,
    token: &str,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    let forms = Forms::of(state, headers)?;
    let page = ReaderPage::new(subscriber, token, Some(forms.token(state, "resubscribe")?));
    let body = state
        .pages
        .render("unsubscribed", "You are unsubscribed", &page)?;
    Ok(forms.respond(StatusCode::OK, body))
}

/// RFC 8058's body: the one field `List-Unsubscribe=One-Click`, form-encoded or as
/// `multipart/form-data`, and nothing else.
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return multipart_one_click(content_type, body);
    }
    body.trim_ascii_end() == ONE_CLICK.as_bytes()
}

fn multipart_one_click(content_type: &str, body: &[u8]) -> bool {
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        return false;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return false;
    };
    let delimiter = format!("--{boundary}");
    let parts: Vec<&str> = body
        .split(delimiter.as_str())
        .skip(1)
        .take_while(|p| !p.starts_with("--"))
        .collect();
    let [part] = parts.as_slice() else {
        return false;
    };
    let Some((head, value)) = part.trim_start_matches("\r\n").split_once("\r\n\r\n") else {
        return false;
    };
    let named = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-disposition:")
            && line.contains("form-data")
            && line.contains("name=\"list-unsubscribe\"")
    });
    named && value.trim_end_matches("\r\n") == "One-Click"
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(t).expect("header"),
        );
        h
    }

    #[test]
    fn only_the_exact_rfc_8058_body_is_a_one_click_unsubscribe() {
        let form = with_type("application/x-www-form-urlencoded");
        assert!(is_one_click(&form, b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(&form, b"List-Unsubscribe=One-Click\r\n"));
        assert!(!is_one_click(&form, b"List-Unsubscribe=One-Click&x=1"));
        assert!(!is_one_click(&form, b"csrf=abc"));
        assert!(!is_one_click(&form, b""));
    }

    #[test]
    fn a_multipart_one_click_body_is_understood() {
        let h = with_type("multipart/form-data; boundary=XyZ");
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(&h, body.as_bytes()));
        let two = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--XyZ--\r\n";
        assert!(!is_one_click(&h, two.as_bytes()));
        let other = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nYes\r\n--XyZ--\r\n";
        assert!(!is_one_click(&h, other.as_bytes()));
    }
}
