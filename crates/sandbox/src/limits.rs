//! Rate limiting per provider account (the sandbox has one account per
//! provider: the demo credentials), and the record of counted requests that
//! lets tests measure the rate a client actually sent.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::data::week_start;
use crate::scenario::{RateLimits, RateStats};

/// How many arrival times per provider [`Limiter`] keeps for
/// [`Limiter::max_observed_rate`] (the oldest are forgotten first).
const ATTEMPT_LOG_CAPACITY: usize = 1_000_000;

/// Why a request is throttled: what its 429 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Throttle {
    /// The limit that was reached.
    pub(crate) limit: u64,
    /// UNIX time (s) at which a request is allowed again.
    pub(crate) reset_unix: u64,
    /// Whole seconds until then (at least 1).
    pub(crate) retry_after: u64,
    /// The weekly (Clari) limit, not the per-second/minute one.
    pub(crate) weekly: bool,
}

#[derive(Debug, Default)]
struct Account {
    /// Admitted requests within the current short window, oldest first.
    window: VecDeque<Instant>,
    /// (start of the GMT week in UNIX s, admitted requests in it).
    week: (i64, u64),
    /// Arrival times of every counted request, for `max_observed_rate`.
    attempts: VecDeque<Instant>,
    stats: RateStats,
}

#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    accounts: [Account; 4],
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn unix_now_f() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            accounts: Default::default(),
        }
    }

    pub(crate) fn limits(&self) -> RateLimits {
        self.limits
    }

    /// New limits; the current windows are forgotten (the stats are kept).
    pub(crate) fn set_limits(&mut self, limits: RateLimits) {
        self.limits = limits;
        for account in &mut self.accounts {
            account.window.clear();
            account.week = (0, 0);
        }
    }

    /// Count one authenticated request of provider `index` arriving `now`:
    /// `None` admits it, `Some` throttles it.
    pub(crate) fn check(&mut self, index: usize, now: Instant) -> Option<Throttle> {
        self.check_at(index, now, unix_now_f())
    }

    fn check_at(&mut self, index: usize, now: Instant, unix: Duration) -> Option<Throttle> {
        let (limit, window) = self.limits.window(index);
        let weekly = if index == 3 {
            self.limits.clari_per_week
        } else {
            None
        };
        let account = &mut self.accounts[index];
        if account.attempts.len() >= ATTEMPT_LOG_CAPACITY {
            account.attempts.pop_front();
        }
        account.attempts.push_back(now);
        account.stats.counted += 1;

        let unix_secs = unix.as_secs() as i64;
        let this_week = week_start(unix_secs);
        if account.week.0 != this_week {
            account.week = (this_week, 0);
        }
        if let Some(per_week) = weekly
            && account.week.1 >= per_week
        {
            let next = this_week + 7 * 86_400;
            account.stats.throttled += 1;
            return Some(Throttle {
                limit: per_week,
                reset_unix: next as u64,
                retry_after: (next - unix_secs).max(1) as u64,
                weekly: true,
            });
        }

        if let Some(limit) = limit {
            while account
                .window
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= window)
            {
                account.window.pop_front();
            }
            if account.window.len() >= limit as usize {
                // Allowed again when the oldest admitted request leaves the window.
                let wait = account.window.front().map_or(window, |&oldest| {
                    (oldest + window).saturating_duration_since(now)
                });
                account.stats.throttled += 1;
                return Some(Throttle {
                    limit: u64::from(limit),
                    reset_unix: ceil_secs(unix + wait),
                    retry_after: ceil_secs(wait).max(1),
                    weekly: false,
                });
            }
            account.window.push_back(now);
        }
        account.week.1 += 1;
        None
    }

    /// The 429 of a forced status: as if the short window were full right now.
    pub(crate) fn forced(&self, index: usize) -> Throttle {
        let (limit, window) = self.limits.window(index);
        let default = match index {
            1 => 120,
            2 | 3 => 10,
            _ => 0,
        };
        let now = unix_now_f();
        Throttle {
            limit: limit.map_or(default, u64::from),
            reset_unix: ceil_secs(now + window),
            retry_after: if index == 1 { window.as_secs() } else { 1 },
            weekly: false,
        }
    }

    pub(crate) fn stats(&self, index: usize) -> RateStats {
        self.accounts[index].stats
    }

    /// The largest number of counted requests that arrived within any span
    /// of `window` (sliding), over the kept arrival times.
    pub(crate) fn max_observed_rate(&self, index: usize, window: Duration) -> usize {
        let times = &self.accounts[index].attempts;
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi].saturating_duration_since(times[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// Forget the stats and arrival times (not the windows).
    pub(crate) fn clear_stats(&mut self) {
        for account in &mut self.accounts {
            account.attempts.clear();
            account.stats = RateStats::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AIRCALL: usize = 1;
    const CLARI: usize = 3;

    #[test]
    fn sliding_window_admits_at_most_the_limit_in_any_window() {
        let mut limiter = Limiter::new(RateLimits {
            aircall_per_minute: Some(3),
            ..RateLimits::off()
        });
        let t0 = Instant::now();
        let unix = Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + Duration::from_millis(s);
        for ms in [0, 10_000, 20_000] {
            assert_eq!(limiter.check_at(AIRCALL, at(ms), unix), None);
        }
        let throttle = limiter
            .check_at(AIRCALL, at(30_000), unix + Duration::from_secs(30))
            .expect("fourth within a minute");
        assert_eq!(throttle.limit, 3);
        // The first request leaves the window at 60 s: 30 s from "now".
        assert_eq!(throttle.retry_after, 30);
        assert_eq!(throttle.reset_unix, 1_000_000 + 60);
        assert!(!throttle.weekly);
        // At 60 s one slot is free, not three.
        assert_eq!(limiter.check_at(AIRCALL, at(60_000), unix), None);
        assert!(limiter.check_at(AIRCALL, at(60_001), unix).is_some());
        assert_eq!(
            limiter.stats(AIRCALL),
            RateStats {
                counted: 6,
                throttled: 2
            }
        );
        assert_eq!(
            limiter.max_observed_rate(AIRCALL, Duration::from_secs(60)),
            5
        );
        assert_eq!(
            limiter.max_observed_rate(AIRCALL, Duration::from_secs(1)),
            2
        );
        limiter.clear_stats();
        assert_eq!(limiter.stats(AIRCALL), RateStats::default());
    }

    #[test]
    fn weekly_limit_resets_on_sunday_midnight_gmt() {
        let mut limiter = Limiter::new(RateLimits {
            clari_per_week: Some(2),
            ..RateLimits::off()
        });
        let t0 = Instant::now();
        // Saturday 2026-02-28 23:59:00 GMT.
        let saturday = Duration::from_secs(1_772_323_200 - 60);
        assert_eq!(limiter.check_at(CLARI, t0, saturday), None);
        assert_eq!(limiter.check_at(CLARI, t0, saturday), None);
        let throttle = limiter.check_at(CLARI, t0, saturday).unwrap();
        assert!(throttle.weekly);
        assert_eq!(throttle.limit, 2);
        assert_eq!(throttle.retry_after, 60);
        assert_eq!(throttle.reset_unix, 1_772_323_200);
        // Sunday 00:00:00 GMT: a new week.
        let sunday = Duration::from_secs(1_772_323_200);
        assert_eq!(limiter.check_at(CLARI, t0, sunday), None);
    }

    #[test]
    fn no_limit_admits_everything_but_still_counts() {
        let mut limiter = Limiter::new(RateLimits::off());
        let t0 = Instant::now();
        for _ in 0..1_000 {
            assert_eq!(limiter.check(0, t0), None);
        }
        assert_eq!(limiter.stats(0).counted, 1_000);
        assert_eq!(limiter.max_observed_rate(0, Duration::from_secs(1)), 1_000);
    }
}
