//! The headers every page is sent with, and the form tokens that stop another site from
//! posting our forms (CSRF).
//!
//! A form token is `SALT.MAC`: a fresh random salt per rendered form, and an HMAC-SHA256 under
//! the installation's form key of the form's purpose, the salt and a random value kept in the
//! browser's `lscp_form` cookie (`HttpOnly`, `SameSite=Strict`). A post is accepted only when
//! the token matches the cookie it arrives with, which a page on another site can neither read
//! nor set. The key is made once and kept in the database ([`Store::form_key`]).

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tower_http::set_header::SetResponseHeaderLayer;

use super::WebError;
use crate::store::token::random;
use crate::store::{Store, StoreError};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 16;
const COOKIE: &str = "lscp_form";

/// No inline script or style anywhere: the stylesheet and the Quick leave script are files.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The archive's issues may show an article's image from its https address.
pub const CSP_ARCHIVE: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
                               img-src 'self' https:; form-action 'self'; base-uri 'none'; \
                               frame-ancestors 'none'";

/// Adds the security headers to every response of `router`; pages not marked cacheable are
/// `no-store`, since most carry a reader's link token. A response that has its own
/// `Content-Security-Policy` ([`archive_policy`]) keeps it.
pub fn headers(router: Router) -> Router {
    let always =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    let unless_set =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(unless_set(header::CONTENT_SECURITY_POLICY, CSP))
        // Tokens are in page addresses: never send them on to another site.
        .layer(always(header::REFERRER_POLICY, "no-referrer"))
        .layer(always(header::X_FRAME_OPTIONS, "DENY"))
        .layer(always(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(always(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(unless_set(header::CACHE_CONTROL, "no-store"))
}

/// The archive's policy, for its routes (`/issues/{id}` and what hangs below it).
pub fn archive_policy() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP_ARCHIVE),
    )
}

/// The installation's key for form tokens.
pub struct FormKey(Vec<u8>);

/// The key, made on first use.
pub async fn form_key(store: &Store) -> Result<FormKey, StoreError> {
    Ok(FormKey(store.form_key(&random(KEY_LEN)?).await?))
}

/// The browser's half of the form tokens: the value of its `lscp_form` cookie, or a new one
/// to set when it has none.
pub struct FormCookie {
    value: String,
    new: bool,
}

impl FormCookie {
    pub fn of(headers: &HeaderMap) -> Result<Self, WebError> {
        match form_cookie(headers) {
            Some(value) => Ok(Self { value, new: false }),
            None => Ok(Self {
                value: URL_SAFE_NO_PAD.encode(random(NONCE_LEN)?),
                new: true,
            }),
        }
    }

    /// The `Set-Cookie` header for a new cookie; `secure` when the site is served over https.
    pub fn set_cookie(&self, secure: bool) -> Option<HeaderValue> {
        let cookie = Cookie::build((COOKIE, self.value.as_str()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure);
        self.new
            .then(|| HeaderValue::from_str(&cookie.to_string()).ok())
            .flatten()
    }
}

impl FormKey {
    /// A token for one rendered form with this purpose (`"preferences"`, `"subscribe"`…).
    pub fn token(&self, cookie: &FormCookie, purpose: &str) -> Result<String, WebError> {
        let salt = URL_SAFE_NO_PAD.encode(random(NONCE_LEN)?);
        let mac = self
            .mac(&cookie.value, purpose, &salt)
            .finalize()
            .into_bytes();
        Ok(format!("{salt}.{}", URL_SAFE_NO_PAD.encode(mac)))
    }

    /// Accepts a post only with a token made for this purpose and the cookie it came with.
    pub fn check(
        &self,
        headers: &HeaderMap,
        purpose: &str,
        given: Option<&str>,
    ) -> Result<(), WebError> {
        let cookie = form_cookie(headers).ok_or(WebError::Csrf)?;
        let (salt, mac) = given
            .and_then(|t| t.split_once('.'))
            .ok_or(WebError::Csrf)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| WebError::Csrf)?;
        self.mac(&cookie, purpose, salt)
            .verify_slice(&mac)
            .map_err(|_| WebError::Csrf)
    }

    fn mac(&self, cookie: &str, purpose: &str, salt: &str) -> Hmac<Sha256> {
        // new_from_slice only fails for key sizes HMAC cannot take; any length is fine for it.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in ["lscp-form", purpose, cookie, salt] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac
    }
}

fn is_nonce(v: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(v)
        .is_ok_and(|bytes| bytes.len() == NONCE_LEN)
}

/// The value of the request's `lscp_form` cookie, when it is one we could have made.
fn form_cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| is_nonce(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).expect("header"),
        );
        h
    }

    #[test]
    fn a_form_token_is_good_only_with_its_cookie_and_its_purpose() {
        let key = FormKey(vec![7; KEY_LEN]);
        let cookie = FormCookie::of(&HeaderMap::new()).expect("new cookie");
        assert!(cookie.set_cookie(false).is_some(), "a new cookie is set");
        let token = key.token(&cookie, "preferences").expect("token");
        let headers = headers_with_cookie(&cookie.value);

        assert!(key.check(&headers, "preferences", Some(&token)).is_ok());
        assert!(key.check(&headers, "subscribe", Some(&token)).is_err());
        assert!(
            key.check(&HeaderMap::new(), "preferences", Some(&token))
                .is_err()
        );
        let other = FormCookie::of(&HeaderMap::new()).expect("another cookie");
        assert!(
            key.check(
                &headers_with_cookie(&other.value),
                "preferences",
                Some(&token)
            )
            .is_err()
        );
        assert!(key.check(&headers, "preferences", None).is_err());
        assert!(key.check(&headers, "preferences", Some("x.y")).is_err());
    }

    #[test]
    fn each_form_gets_a_different_token() {
        let key = FormKey(vec![7; KEY_LEN]);
        let cookie = FormCookie::of(&HeaderMap::new()).expect("cookie");
        assert_ne!(
            key.token(&cookie, "subscribe").ok(),
            key.token(&cookie, "subscribe").ok()
        );
    }

    #[test]
    fn a_browser_that_has_the_cookie_keeps_it() {
        let first = FormCookie::of(&HeaderMap::new()).expect("cookie");
        let again = FormCookie::of(&headers_with_cookie(&first.value)).expect("cookie");
        assert_eq!(again.value, first.value);
        assert!(again.set_cookie(true).is_none());
        let mangled = FormCookie::of(&headers_with_cookie("not-a-nonce")).expect("cookie");
        assert_ne!(mangled.value, "not-a-nonce");
    }
}
