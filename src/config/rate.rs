//! A rate of messages, `20/s`: a setting (`send.rate`) and a `send --rate` argument. It lives
//! with the configuration, the bottom layer, so that `config` needs nothing from `send`.

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
}
