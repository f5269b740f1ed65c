//! The public site in-process for tests: `lscp_mail::web::serve` on `127.0.0.1:0` over the
//! test's own database, and a small HTTP client that keeps the form cookie like a browser.

use std::path::Path;

use lscp_mail::config::Config;
use lscp_mail::content::TopicCatalog;
use lscp_mail::mail::smtp::SmtpTarget;
use lscp_mail::send::campaign::{self, SendOptions};
use lscp_mail::store::ledger::CampaignId;
use lscp_mail::store::{
    ConsentSource, DisplayName, NewSubscriber, Store, Subscriber, SubscriberEmail, SubscriberStatus,
};
use lscp_mail::web::{self, AppState};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use secrecy::SecretString;
use sqlx::PgPool;

pub struct Site {
    pub base: String,
    pub store: Store,
    pub pool: PgPool,
}

/// Where mail goes when a test does not look at it: a port nothing listens on.
pub const NOWHERE: &str = "smtp://127.0.0.1:9";

impl Site {
    /// The site with the default configuration, no rate limits, Quick leave pointing at its
    /// own /healthz, the shipped issues, and mail going nowhere.
    pub async fn start(pool: PgPool) -> Self {
        Self::start_with(pool, NOWHERE, |_| {}).await
    }

    /// With mail going to `smtp_url`, and any other settings changed by `configure`.
    pub async fn start_with(
        pool: PgPool,
        smtp_url: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let mut config = Config::default();
        config.site.base_url = base.parse().expect("an http URL");
        config.site.quick_leave_url = format!("{base}/healthz").parse().expect("an http URL");
        config.serve.issues_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("issues");
        config.serve.signup_per_hour = 0;
        config.serve.link_requests_per_minute = 0;
        configure(&mut config);
        let smtp = SmtpTarget::parse(&SecretString::from(smtp_url.to_string())).expect("SMTP URL");
        let store = Store::from_pool(pool.clone());
        let state = AppState::new(store.clone(), config, smtp)
            .await
            .expect("the site starts");
        tokio::spawn(web::serve(listener, state, std::future::pending()));
        Self { base, store, pool }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new visitor, with no cookie yet.
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.base)
    }

    /// Adds an active practitioner with these topics; returns them and their link token.
    pub async fn reader(&self, address: &str, topics: &str) -> (Subscriber, String) {
        let catalog = self.store.topic_catalog().await.expect("topics");
        let new = NewSubscriber {
            email: SubscriberEmail::parse(address).expect("an address"),
            name: DisplayName::parse("Ann Smith").expect("valid"),
            organisation: None,
            topics: catalog.parse_list(topics).expect("known topics"),
        };
        let subscriber = self
            .store
            .add_subscriber(&new, SubscriberStatus::Active, &ConsentSource::Cli, false)
            .await
            .expect("added");
        let token = self
            .store
            .link_token(&subscriber)
            .await
            .expect("token")
            .expose();
        (subscriber, token)
    }

    pub async fn now(&self, subscriber: &Subscriber) -> Subscriber {
        self.store
            .subscriber(&subscriber.email)
            .await
            .expect("still there")
    }

    /// Begins sending `issue` as `lscp-mail send` does: its campaign, the audience queued.
    /// Returns the campaign's id.
    pub async fn mark_sent(&self, issue: &str) -> CampaignId {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("issues")
            .join(issue);
        self.mark_sent_from(&dir).await
    }

    /// [`Self::mark_sent`] for the issue folder `dir`, wherever it is.
    pub async fn mark_sent_from(&self, dir: &Path) -> CampaignId {
        let issue = lscp_mail::content::load_issue(dir, &self.catalog())
            .issue
            .expect("the issue loads");
        let options = SendOptions::from_config(&Config::default());
        campaign::prepare(&self.store, &issue, &options)
            .await
            .expect("a campaign")
            .id
    }

    /// The number of consent log entries: unchanged means nothing was changed.
    pub async fn log_entries(&self) -> i64 {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM consent_log"#)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// The source of the latest consent log entry, and its action.
    pub async fn last_log(&self) -> (String, String) {
        let r = sqlx::query!("SELECT action, source FROM consent_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&self.pool)
            .await
            .expect("an entry");
        (r.action, r.source)
    }

    pub fn catalog(&self) -> TopicCatalog {
        TopicCatalog::builtin()
    }
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The form token of the form posting to `action`.
    pub fn form_token(&self, action: &str) -> String {
        let form = format!("action=\"{action}\"");
        let at = self
            .body
            .find(&form)
            .unwrap_or_else(|| panic!("no form posts to {action}:\n{}", self.body));
        let rest = &self.body[at..];
        let value = rest
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .expect("the form has a token");
        value.to_string()
    }
}

/// A browser without JavaScript: it keeps the cookie the site sets and sends it back.
pub struct Visitor {
    base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

impl Visitor {
    /// A new visitor of the site at `base` (`http://127.0.0.1:PORT`), with no cookie yet.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            cookie: None,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form's fields, as a browser would.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_raw(path, "application/x-www-form-urlencoded", body)
            .await
    }

    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: String) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(request).await
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie.clone());
        }
        let response = request.send().await.expect("the site answers");
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_string);
        }
        let body = response.text().await.expect("a body");
        Page {
            status,
            headers,
            body,
        }
    }
}
