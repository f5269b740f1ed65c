//! How fast mail goes out: the slowdown after a server's rate complaint (per process). The
//! campaign's pace shared by every sender is [`super::pace`]; the daily cap is counted in the
//! ledger so it holds across processes and restarts. The [`Rate`] itself is a setting, so it
//! lives in [`crate::config`].

use std::time::Duration;

/// The rate lives with the configuration (the bottom layer); it is named here too, where it is
/// used.
pub use crate::config::{Rate, RateError};

/// A lower pace for a while after the server complained of our rate (a 4.4.2 "submission
/// rate exceeded", Gmail's 4.7.28): each complaint doubles the gap between messages, across
/// every connection, and starts the while again.
pub struct Slowdown {
    state: std::sync::Mutex<Option<Slowed>>,
    hold: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Slowed {
    gap: Duration,
    until: tokio::time::Instant,
    next: tokio::time::Instant,
}

/// The longest gap a slowdown imposes between two messages.
const SLOWEST: Duration = Duration::from_secs(60);

impl Slowdown {
    /// Complaints lower the pace for `hold` after the last one.
    pub fn new(hold: Duration) -> Self {
        Self {
            state: std::sync::Mutex::new(None),
            hold,
        }
    }

    /// Halves the pace (from `rate` the first time) and returns the new gap between messages.
    pub fn complain(&self, rate: Rate) -> Duration {
        let now = tokio::time::Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return SLOWEST;
        };
        let current = match *state {
            Some(s) if s.until > now => s.gap,
            _ => rate.per_second().map_or(Duration::from_millis(500), |r| {
                Duration::from_secs_f64(1.0 / r)
            }),
        };
        let gap = (current * 2).clamp(Duration::from_millis(100), SLOWEST);
        *state = Some(Slowed {
            gap,
            until: now + self.hold,
            next: now + gap,
        });
        gap
    }

    /// Whether the pace is lowered now.
    pub fn is_lowered(&self) -> bool {
        let now = tokio::time::Instant::now();
        self.state
            .lock()
            .map_or(true, |s| s.is_some_and(|s| s.until > now))
    }

    /// Waits for this message's turn while the pace is lowered; returns at once otherwise.
    pub async fn ready(&self) {
        let slot = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let now = tokio::time::Instant::now();
            match *state {
                Some(s) if s.until > now => {
                    let slot = s.next.max(now);
                    *state = Some(Slowed {
                        next: slot + s.gap,
                        ..s
                    });
                    slot
                }
                _ => {
                    *state = None;
                    return;
                }
            }
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rate_complaint_halves_the_pace_for_a_while_then_lets_go() {
        let slow = Slowdown::new(Duration::from_millis(300));
        let rate: Rate = "20/s".parse().expect("rate");
        assert_eq!(slow.complain(rate), Duration::from_millis(100));
        assert_eq!(slow.complain(rate), Duration::from_millis(200));
        let start = std::time::Instant::now();
        for _ in 0..2 {
            slow.ready().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(350),
            "{:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = std::time::Instant::now();
        slow.ready().await;
        assert!(
            after.elapsed() < Duration::from_millis(50),
            "the pace is back"
        );
    }
}
