//! Requesting addresses: HEAD first (no body to download), GET when a server refuses HEAD;
//! redirects followed by hand so that a permanent one can be reported with its new address;
//! a limit per host and in all; `mailto:` and `tel:` checked for their syntax only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{LOCATION, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use url::Url;

use super::Options;
use super::cache::Cache;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Fine,
    /// Works, but through a permanent redirect (301 or 308): the issue should give `to`.
    Moved {
        to: String,
    },
    Failed(String),
    /// Not a web address (an in-page anchor, a relative path): nothing to request.
    Skipped,
}

/// The outcome for each distinct address.
pub async fn probe_all(urls: &[&str], options: &Options) -> HashMap<String, Outcome> {
    let mut cache = options
        .cache
        .as_deref()
        .map(Cache::load)
        .unwrap_or_default();
    let mut outcomes = HashMap::new();
    let mut wanted = Vec::new();
    for url in urls {
        if let Some(o) = syntax_only(url) {
            outcomes.insert(url.to_string(), o);
        } else if let Some(o) = cache.get(url) {
            outcomes.insert(url.to_string(), o.clone());
        } else {
            wanted.push(url.to_string());
        }
    }
    if wanted.is_empty() {
        return outcomes;
    }
    let client = match client(options) {
        Ok(c) => c,
        Err(e) => {
            for url in wanted {
                outcomes.insert(url, Outcome::Failed(format!("no HTTP client: {e}")));
            }
            return outcomes;
        }
    };
    let total = Arc::new(Semaphore::new(options.total.max(1)));
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for url in wanted {
        let host = Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let per_host = hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(options.per_host.max(1))))
            .clone();
        let (client, total, timeout) = (client.clone(), total.clone(), options.timeout);
        tasks.spawn(async move {
            let outcome = match (per_host.acquire_owned().await, total.acquire_owned().await) {
                (Ok(_h), Ok(_t)) => request(&client, &url, timeout).await,
                _ => Outcome::Failed("stopped".into()),
            };
            (url, outcome)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((url, outcome)) = joined {
            cache.put(&url, &outcome);
            outcomes.insert(url, outcome);
        }
    }
    if let Some(path) = &options.cache
        && let Err(e) = cache.save(path)
    {
        // The check itself is done; only the next run is slower.
        tracing::warn!("cannot save the link cache {}: {e}", path.display());
    }
    outcomes
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client of its own (hyper, rustls with ring and Mozilla's roots), so that no other HTTP
/// client in the process needs a TLS provider chosen for it.
fn client(_options: &Options) -> Result<HttpClient, rustls::Error> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// `mailto:` and `tel:` are judged by their syntax; anything not http(s) is skipped.
fn syntax_only(url: &str) -> Option<Outcome> {
    if let Some(rest) = url.strip_prefix("mailto:") {
        let address = rest.split('?').next().unwrap_or("");
        let address = percent_encoding::percent_decode_str(address).decode_utf8_lossy();
        let ok = !address.is_empty()
            && address
                .split(',')
                .all(|a| a.trim().parse::<lettre::Address>().is_ok());
        return Some(if ok {
            Outcome::Fine
        } else {
            Outcome::Failed(format!("`{address}` is not an email address"))
        });
    }
    if let Some(number) = url.strip_prefix("tel:") {
        let digits = number.chars().filter(char::is_ascii_digit).count();
        let ok = digits >= 3
            && number
                .chars()
                .all(|c| c.is_ascii_digit() || "+-(). ".contains(c));
        return Some(if ok {
            Outcome::Fine
        } else {
            Outcome::Failed(format!("`{number}` is not a telephone number"))
        });
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return None;
    }
    Some(Outcome::Skipped)
}

async fn request(client: &HttpClient, url: &str, timeout: Duration) -> Outcome {
    let mut current = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Outcome::Failed(format!("not an address: {e}")),
    };
    let mut moved_to = None;
    // Permanent only while every hop is: one temporary hop means the first address is the one
    // to keep.
    let mut all_permanent = true;
    for _ in 0..=MAX_REDIRECTS {
        let status = match status_of(client, &current, timeout).await {
            Ok(s) => s,
            Err(why) => return Outcome::Failed(why),
        };
        match status {
            (s, _) if s.is_success() => {
                return match moved_to {
                    Some(to) if all_permanent => Outcome::Moved { to },
                    _ => Outcome::Fine,
                };
            }
            (s, Some(location)) if s.is_redirection() => {
                let next = match current.join(&location) {
                    Ok(n) => n,
                    Err(_) => {
                        return Outcome::Failed(format!("{s} to an unreadable `{location}`"));
                    }
                };
                all_permanent &=
                    s == StatusCode::MOVED_PERMANENTLY || s == StatusCode::PERMANENT_REDIRECT;
                moved_to = Some(next.to_string());
                current = next;
            }
            (s, _) => return Outcome::Failed(s.to_string()),
        }
    }
    Outcome::Failed(format!("more than {MAX_REDIRECTS} redirects"))
}

/// HEAD, or GET when the server refuses HEAD (405 Method Not Allowed, 501 Not Implemented).
async fn status_of(
    client: &HttpClient,
    url: &Url,
    timeout: Duration,
) -> Result<(StatusCode, Option<String>), String> {
    let mut response = send(client, Method::HEAD, url, timeout).await?;
    if matches!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        // The body is never read: dropping the response closes it.
        response = send(client, Method::GET, url, timeout).await?;
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    Ok((response.status(), location))
}

async fn send(
    client: &HttpClient,
    method: Method,
    url: &Url,
    timeout: Duration,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let request = Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(
            USER_AGENT,
            concat!("lscp-mail/", env!("CARGO_PKG_VERSION"), " (link check)"),
        )
        .body(Empty::new())
        .map_err(|e| format!("cannot make a request for it: {e}"))?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err("no answer in time (timeout)".to_string()),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// What went wrong, in the terms an editor can act on.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        source = inner.source();
    }
    let lower = chain.to_lowercase();
    if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("resolve") {
        format!("the name does not resolve (DNS): {chain}")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!("the secure connection failed (TLS): {chain}")
    } else if e.is_connect() {
        format!("cannot connect: {chain}")
    } else {
        chain
    }
}
