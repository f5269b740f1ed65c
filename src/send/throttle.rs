//! How fast mail goes out: the rate and its parsing, and the slowdown after a server's rate
//! complaint (per process). The campaign's pace shared by every sender is [`super::pace`]; the
//! daily cap is counted in the ledger so it holds across processes and restarts.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Messages per unit of time: `20/s`, `600/min`, `5000/h`; `0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Unlimited,
    Every { count: NonZeroU32, per: Duration },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a rate like \"20/s\", \"600/min\" or \"5000/h\" (0 turns the limit off)")]
pub struct RateError(pub String);

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RateError(s.to_string());
        let t = s.trim();
        if t == "0" {
            return Ok(Self::Unlimited);
        }
        let (n, unit) = t.split_once('/').ok_or_else(err)?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        match NonZeroU32::new(count) {
            Some(count) => Ok(Self::Every { count, per }),
            None => Ok(Self::Unlimited),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("0 (unlimited)"),
            Self::Every { count, per } => {
                let unit = match per.as_secs() {
                    1 => "s",
                    60 => "min",
                    _ => "h",
                };
                write!(f, "{count}/{unit}")
            }
        }
    }
}

impl Rate {
    pub fn per_second(&self) -> Option<f64> {
        match self {
            Self::Unlimited => None,
            Self::Every { count, per } => Some(count.get() as f64 / per.as_secs_f64()),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(0) => Ok(Rate::Unlimited),
            Raw::Number(n) => Err(serde::de::Error::custom(RateError(n.to_string()))),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

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

    #[test]
    fn rates_read_as_people_write_them() {
        let every = |count, secs| Rate::Every {
            count: NonZeroU32::new(count).expect("non-zero"),
            per: Duration::from_secs(secs),
        };
        assert_eq!("20/s".parse(), Ok(every(20, 1)));
        assert_eq!("600/min".parse(), Ok(every(600, 60)));
        assert_eq!("5000/h".parse(), Ok(every(5000, 3600)));
        assert_eq!("0".parse(), Ok(Rate::Unlimited));
        assert!("20".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
        assert!("20/day".parse::<Rate>().is_err());
        assert_eq!(every(600, 60).per_second(), Some(10.0));
    }

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
