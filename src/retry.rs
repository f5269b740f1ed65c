//! The one retry policy: every loop in the program that waits and tries again takes its waits
//! from here. Each wait is exponential backoff (backon's `ExponentialBuilder`: a first wait, a
//! factor, a cap, and how many tries), and each caller's policy is named below, so that the
//! waits of the whole program can be read in one place.
//!
//! | what is retried | first wait | factor | cap | tries |
//! | --- | ---: | ---: | ---: | --- |
//! | a database step during an outage ([`database_outage`]) | 250 ms | 2 | 15 s | until it is back |
//! | taking a sender's lock again ([`sender_lock`]) | 100 ms | 2 | 5 s | until it is taken |
//! | a sign-up's confirmation mail the server put off ([`confirmation_mail`]) | 5 s | 12 | 60 s | 2 |
//! | a reader's message the server put off ([`delivery`]) | `send.retry_after` | 2 | 6 h | `send.max_attempts` |
//!
//! A delivery's retries are spread over hours and survive the process (its attempts are counted
//! in the ledger), so [`delivery`] gives the wait of attempt *n* directly, with ±25% jitter so
//! that readers put off together do not come back together; the probes of a server that is down
//! use it too, capped lower.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Waits between tries of a database step while the database is unavailable: for as long as
/// it takes.
pub fn database_outage() -> impl Iterator<Item = Duration> {
    doubling(Duration::from_millis(250), Duration::from_secs(15))
}

/// Waits between tries to take a sender's advisory lock again after its connection went.
pub fn sender_lock() -> impl Iterator<Item = Duration> {
    doubling(Duration::from_millis(100), Duration::from_secs(5))
}

/// From `first`, doubling, at most `cap`, without end.
fn doubling(first: Duration, cap: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(first)
        .with_factor(2.0)
        .with_max_delay(cap)
        .without_max_times()
        .build()
}

/// Waits before the second and third tries of a confirmation mail the server put off: 5 s,
/// then a minute, then the visitor is told.
pub fn confirmation_mail() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(5))
        .with_factor(12.0)
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(2)
        .build()
}

/// The longest a delivery waits between two attempts.
const DELIVERY_CAP: Duration = Duration::from_secs(6 * 3600);

/// The wait before attempt `attempt` + 1 of a delivery (`attempt` ≥ 1 tries made): `base` ×
/// 2^(attempt−1), at most six hours, with ±25% jitter so retries do not arrive at the server
/// together.
pub fn delivery(base: Duration, attempt: i32) -> Duration {
    let tries_made = usize::try_from(attempt.clamp(1, 16)).unwrap_or(1);
    let plain = doubling(base, DELIVERY_CAP)
        .nth(tries_made - 1)
        .unwrap_or(DELIVERY_CAP);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = 0.75 + (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5;
    plain.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `n` waits, in milliseconds (backon multiplies in `f32`: a wait may be a few
    /// nanoseconds off the round figure).
    fn millis(waits: impl Iterator<Item = Duration>, n: usize) -> Vec<u128> {
        waits
            .take(n)
            .map(|d| (d.as_micros() + 500) / 1000)
            .collect()
    }

    #[test]
    fn each_policy_waits_as_its_table_row_says() {
        assert_eq!(
            millis(database_outage(), 8),
            [250, 500, 1000, 2000, 4000, 8000, 15000, 15000]
        );
        assert_eq!(
            millis(sender_lock(), 8),
            [100, 200, 400, 800, 1600, 3200, 5000, 5000]
        );
        assert_eq!(millis(confirmation_mail(), 5), [5000, 60000]);
    }

    #[test]
    fn deliveries_back_off_exponentially_with_bounded_jitter() {
        let base = Duration::from_secs(60);
        for (attempt, plain) in [(1, 60.0), (2, 120.0), (3, 240.0), (10, 30720.0), (40, 1e9)] {
            let plain: f64 = f64::min(plain, 21600.0);
            let d = delivery(base, attempt).as_secs_f64();
            assert!(
                d >= plain * 0.75 && d <= plain * 1.25,
                "attempt {attempt}: {d} s"
            );
        }
    }
}
