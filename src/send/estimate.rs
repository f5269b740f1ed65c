//! When a campaign will finish, from what is happening now: the pace of the senders running
//! (their configured rate, or what they achieved since they began when that is slower or there
//! is no limit), retries waiting out a server's temporary refusals, and the daily cap. A last
//! minute's average alone misleads: a run that began 13 s ago at 2/s has sent 26 "in the last
//! minute", which reads as 0.4/s.

use chrono::{DateTime, Utc};

/// A sender running now, as it registered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Messages a second; `None` for no limit.
    pub rate_per_second: Option<f64>,
    pub started_at: DateTime<Utc>,
}

/// The daily cap across campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub per_day: i64,
    pub used_today: i64,
    /// When the next day (and its allowance) begins.
    pub next_day: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub now: DateTime<Utc>,
    /// Queued or in flight.
    pub remaining: i64,
    /// Of those, how many could go now (due, or claimed).
    pub due: i64,
    /// When the first of the rest (retries after temporary failures) becomes due.
    pub next_retry: Option<DateTime<Utc>>,
    /// The campaign's senders running now.
    pub senders: Vec<Pace>,
    /// Sent in the last minute: only what `observed_seconds` covers counts.
    pub sent_recently: i64,
    pub cap: Option<Cap>,
}

/// Where the pace comes from, for the reader of `status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// The rate the running senders were given.
    Configured,
    /// What they achieved over `seconds`, slower than configured or with no limit set.
    Observed { seconds: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Estimate {
    /// Nothing left.
    Done,
    /// No sender is running: nothing will go until `send` is run again.
    NoSender,
    /// Sending with no limit and too new to have a pace yet.
    TooEarly,
    /// Senders run but nothing went in the last minute while some could: an outage, probably.
    Stalled { due: i64 },
    Finish {
        at: DateTime<Utc>,
        per_second: f64,
        basis: Basis,
        /// Nothing can go before this: the retries are waiting.
        waiting_until: Option<DateTime<Utc>>,
        /// The daily cap holds the rest until the next day.
        capped_until: Option<DateTime<Utc>>,
    },
}

/// Seconds of the last minute the running senders have been running: the window their pace is
/// observed over.
pub fn observed_seconds(senders: &[Pace], now: DateTime<Utc>) -> f64 {
    senders
        .iter()
        .map(|s| (now - s.started_at).num_milliseconds() as f64 / 1000.0)
        .fold(0.0, f64::max)
        .clamp(0.0, 60.0)
}

pub fn estimate(i: &Inputs) -> Estimate {
    if i.remaining <= 0 {
        return Estimate::Done;
    }
    if i.senders.is_empty() {
        return Estimate::NoSender;
    }
    let window = observed_seconds(&i.senders, i.now);
    // The senders share one pace, the lowest of their rates (a sender without a limit lifts
    // nobody's): see `store::pace`.
    let configured: Option<f64> = i
        .senders
        .iter()
        .filter_map(|s| s.rate_per_second)
        .reduce(f64::min);
    // A few seconds are too few to judge by (connecting, the first burst).
    let observed = (window >= 5.0).then(|| i.sent_recently as f64 / window);
    let waiting_until = match i.next_retry {
        Some(t) if i.due == 0 && t > i.now => Some(t),
        _ => None,
    };
    if window >= 60.0 && i.sent_recently == 0 && i.due > 0 {
        return Estimate::Stalled { due: i.due };
    }
    let (per_second, basis) = match (configured, observed) {
        (Some(c), Some(o)) if o > 0.0 && o < c * 0.9 => (o, Basis::Observed { seconds: window }),
        (Some(c), _) => (c, Basis::Configured),
        (None, Some(o)) if o > 0.0 => (o, Basis::Observed { seconds: window }),
        (None, _) => return Estimate::TooEarly,
    };
    let start = waiting_until.unwrap_or(i.now);
    let secs = |n: i64| chrono::Duration::milliseconds((n as f64 / per_second * 1000.0) as i64);
    let (at, capped_until) = match i.cap {
        Some(cap) if i.remaining > (cap.per_day - cap.used_today).max(0) && cap.per_day > 0 => {
            let today = (cap.per_day - cap.used_today).max(0);
            let rest = i.remaining - today;
            // Whole days after tomorrow's start, then the part of the last day.
            let full_days = (rest - 1) / cap.per_day;
            let last = rest - full_days * cap.per_day;
            (
                cap.next_day + chrono::Duration::days(full_days) + secs(last),
                Some(cap.next_day),
            )
        }
        _ => (start + secs(i.remaining), None),
    };
    Estimate::Finish {
        at,
        per_second,
        basis,
        waiting_until,
        capped_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 3, h, m, s)
            .single()
            .expect("time")
    }

    fn sending(rate: Option<f64>, since: DateTime<Utc>) -> Pace {
        Pace {
            rate_per_second: rate,
            started_at: since,
        }
    }

    fn inputs(remaining: i64, senders: Vec<Pace>, sent_recently: i64) -> Inputs {
        Inputs {
            now: at(10, 0, 0),
            remaining,
            due: remaining,
            next_retry: None,
            senders,
            sent_recently,
            cap: None,
        }
    }

    fn finish_at(e: &Estimate) -> DateTime<Utc> {
        match e {
            Estimate::Finish { at, .. } => *at,
            other => panic!("no finish: {other:?}"),
        }
    }

    #[test]
    fn a_run_that_began_seconds_ago_is_judged_by_its_configured_rate_not_the_minute() {
        // Began 13 s ago at 2/s: 26 sent, 26 left. The minute's average (26/60) said 1 min.
        let e = estimate(&inputs(26, vec![sending(Some(2.0), at(9, 59, 47))], 26));
        assert_eq!(finish_at(&e), at(10, 0, 13));
    }

    #[test]
    fn a_sender_slower_than_its_limit_is_judged_by_what_it_achieves() {
        let e = estimate(&inputs(60, vec![sending(Some(10.0), at(9, 50, 0))], 60));
        assert_eq!(finish_at(&e), at(10, 1, 0));
        assert!(matches!(
            e,
            Estimate::Finish {
                basis: Basis::Observed { .. },
                ..
            }
        ));
    }

    #[test]
    fn several_senders_share_the_lowest_of_their_rates() {
        let e = estimate(&inputs(
            100,
            vec![
                sending(Some(2.0), at(9, 59, 58)),
                sending(Some(3.0), at(9, 59, 59)),
            ],
            0,
        ));
        // 100 at 2/s, however many senders share it.
        assert_eq!(finish_at(&e), at(10, 0, 50));
    }

    #[test]
    fn with_no_sender_running_there_is_no_finish() {
        assert_eq!(estimate(&inputs(10, vec![], 0)), Estimate::NoSender);
        assert_eq!(estimate(&inputs(0, vec![], 0)), Estimate::Done);
    }

    #[test]
    fn an_unlimited_sender_needs_a_few_seconds_before_it_has_a_pace() {
        let just_began = estimate(&inputs(10, vec![sending(None, at(9, 59, 59))], 3));
        assert_eq!(just_began, Estimate::TooEarly);
        let e = estimate(&inputs(100, vec![sending(None, at(9, 59, 50))], 50));
        assert_eq!(finish_at(&e), at(10, 0, 20));
    }

    #[test]
    fn retries_waiting_on_the_server_start_the_clock_later() {
        let mut i = inputs(10, vec![sending(Some(1.0), at(9, 59, 0))], 0);
        i.due = 0;
        i.next_retry = Some(at(10, 5, 0));
        let e = estimate(&i);
        assert_eq!(finish_at(&e), at(10, 5, 10));
        assert!(matches!(
            e,
            Estimate::Finish {
                waiting_until: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn a_minute_without_a_message_while_some_are_due_is_a_stall_not_an_estimate() {
        let e = estimate(&inputs(10, vec![sending(Some(1.0), at(9, 58, 0))], 0));
        assert_eq!(e, Estimate::Stalled { due: 10 });
    }

    #[test]
    fn the_daily_cap_carries_the_rest_into_the_following_days() {
        let mut i = inputs(250, vec![sending(Some(10.0), at(9, 59, 58))], 0);
        i.cap = Some(Cap {
            per_day: 100,
            used_today: 50,
            next_day: at(0, 0, 0) + chrono::Duration::days(1),
        });
        // 50 today, 100 tomorrow, 100 the day after: the last 100 take 10 s.
        let e = estimate(&i);
        assert_eq!(
            finish_at(&e),
            at(0, 0, 10) + chrono::Duration::days(2),
            "{e:?}"
        );
        let mut within = i.clone();
        within.remaining = 40;
        assert_eq!(finish_at(&estimate(&within)), at(10, 0, 4));
    }
}
