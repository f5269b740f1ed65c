//! Per-client rate limits: `governor`'s keyed limiter (GCRA, which behaves as a token bucket
//! per client address), in memory.
//!
//! A client is the connection's peer address; an IPv6 client is its /64, since one household
//! or phone is given a whole /64. Behind a reverse proxy every connection comes from the proxy,
//! so with `serve.trust_forwarded_for` the client is the last address in `X-Forwarded-For`
//! (the one the proxy itself appended): only set it when a proxy you run is in front, since
//! anyone can send that header.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use super::{AppState, WebError};

/// Clients kept before those back to a full allowance are dropped.
const PRUNE_AT: usize = 10_000;

/// `limit` requests per `period` per client, refilled steadily; a limit of 0 means none.
pub struct RateLimiter(Option<DefaultKeyedRateLimiter<IpAddr>>);

impl RateLimiter {
    pub fn new(limit: u32, period: Duration) -> Self {
        // A period too short to divide (zero) is no limit either.
        let quota = NonZeroU32::new(limit).and_then(|burst| {
            Quota::with_period(period / limit).map(|quota| quota.allow_burst(burst))
        });
        Self(quota.map(DefaultKeyedRateLimiter::keyed))
    }

    /// Counts a request from `client`; too many gives how long to wait.
    pub fn check(&self, client: Client) -> Result<(), WebError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() >= PRUNE_AT {
            limiter.retain_recent();
        }
        limiter
            .check_key(&client.0)
            .map_err(|not_until| WebError::TooMany {
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            })
    }
}

/// Who is asking, as far as rate limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(peer: IpAddr, forwarded_for: Option<&str>, trust_forwarded_for: bool) -> Self {
        let ip = forwarded_for
            .filter(|_| trust_forwarded_for)
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok())
            .unwrap_or(peer);
        Self(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        })
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| {
                WebError::Internal(anyhow::anyhow!("no peer address: serve with connect info"))
            })?;
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        Ok(Self::of(
            peer,
            forwarded,
            state.config.serve.trust_forwarded_for,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(s: &str) -> Client {
        Client::of(s.parse().expect("an address"), None, false)
    }

    #[test]
    fn a_client_over_its_limit_is_told_when_to_come_back() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let ann = client("192.0.2.1");
        for _ in 0..3 {
            assert!(limiter.check(ann).is_ok());
        }
        match limiter.check(ann) {
            Err(WebError::TooMany { retry_after }) => {
                assert!(
                    retry_after > Duration::from_secs(10) && retry_after <= Duration::from_secs(20)
                );
            }
            other => panic!("expected too many, got {other:?}"),
        }
        assert!(
            limiter.check(client("192.0.2.2")).is_ok(),
            "others are not held back"
        );
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            assert!(limiter.check(client("192.0.2.1")).is_ok());
        }
    }

    #[test]
    fn one_ipv6_network_is_one_client() {
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::9"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        assert_eq!(client("::ffff:192.0.2.1"), client("192.0.2.1"));
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_only_its_last_address() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("address");
        let header = Some("203.0.113.9, 198.51.100.7");
        assert_eq!(Client::of(proxy, header, false), client("127.0.0.1"));
        assert_eq!(Client::of(proxy, header, true), client("198.51.100.7"));
        assert_eq!(
            Client::of(proxy, Some("nonsense"), true),
            client("127.0.0.1")
        );
    }
}
