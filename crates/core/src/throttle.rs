//! Waiting for a provider's rate limit instead of letting the provider answer 429.
//!
//! A throttle hands out send times per provider account so that no window of the limit's length
//! ever holds more requests than the limit allows. [`LocalThrottle`] lives in the process (one
//! instance, e.g. on SQLite); [`SharedThrottle`] keeps the grants in the database, so that every
//! instance on one PostgreSQL database together stays within the provider's limit. A weekly quota
//! (Clari Copilot's 100,000 requests a week) is counted in the store on both backends
//! ([`count_in_weekly_quota`]), when a slot is granted.

use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limit: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub per: Duration,
}

#[async_trait]
pub trait Throttle: Send + Sync {
    /// Reserve a send time for `key` under `limit`: `Ok(wait)` to wait that long and then send, or
    /// `Err(retry_after)` when the slot is further away than `max_wait` (nothing is reserved).
    async fn reserve(
        &self,
        key: &str,
        limit: Limit,
        max_wait: Duration,
    ) -> Result<Duration, Duration>;
}

/// The in-process throttle: a log of granted send times per key.
#[derive(Default)]
pub struct LocalThrottle {
    granted: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Requests may arrive at the provider a little apart from when they were sent: keep a margin.
fn margin(per: Duration) -> Duration {
    per / 50 + Duration::from_millis(20)
}

/// The span within which at most `limit.requests` sends are granted.
fn window(limit: Limit) -> Duration {
    limit.per + margin(limit.per)
}

/// The throttle of every instance on one database: grants are kept there
/// ([`latchkey_store::Repository::reserve_slot`]). Should the database not answer, this process
/// goes on throttling on its own rather than sending without a limit.
pub struct SharedThrottle {
    repo: std::sync::Arc<dyn latchkey_store::Repository>,
    fallback: LocalThrottle,
}

impl SharedThrottle {
    pub fn new(repo: std::sync::Arc<dyn latchkey_store::Repository>) -> SharedThrottle {
        SharedThrottle {
            repo,
            fallback: LocalThrottle::default(),
        }
    }
}

#[async_trait]
impl Throttle for SharedThrottle {
    async fn reserve(
        &self,
        key: &str,
        limit: Limit,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        match self
            .repo
            .reserve_slot(key, limit.requests.max(1), window(limit), max_wait)
            .await
        {
            Ok(latchkey_store::Slot::Wait(wait)) => Ok(wait),
            Ok(latchkey_store::Slot::Refused(after)) => Err(after),
            Err(e) => {
                tracing::warn!(
                    "the shared rate-limit throttle is unavailable ({e}); throttling in this process alone"
                );
                self.fallback.reserve(key, limit, max_wait).await
            }
        }
    }
}

#[async_trait]
impl Throttle for LocalThrottle {
    async fn reserve(
        &self,
        key: &str,
        limit: Limit,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        let now = Instant::now();
        let window = window(limit);
        let mut all = self.granted.lock().unwrap_or_else(|p| p.into_inner());
        let log = all.entry(key.to_owned()).or_default();
        while log.len() > limit.requests as usize && log.front().is_some_and(|t| *t + window <= now)
        {
            log.pop_front();
        }
        let n = limit.requests.max(1) as usize;
        let at = if log.len() >= n {
            let nth_last = log[log.len() - n];
            (nth_last + window).max(now)
        } else {
            now
        };
        let at = log.back().map_or(at, |last| at.max(*last));
        let wait = at - now;
        if wait > max_wait {
            return Err(wait);
        }
        log.push_back(at);
        Ok(wait)
    }
}

/// Seconds in a week.
const WEEK_SECS: i64 = 7 * 86_400;
/// 1970-01-04 00:00 UTC, the first Sunday of the UNIX era (1970-01-01 was a Thursday).
const FIRST_SUNDAY: i64 = 3 * 86_400;

/// The start (UNIX seconds) of the calendar week holding `unix`: weeks start on Sunday at
/// 00:00 GMT (UTC), as Clari Copilot counts its weekly quota.
pub fn week_start(unix: i64) -> i64 {
    (unix - FIRST_SUNDAY).div_euclid(WEEK_SECS) * WEEK_SECS + FIRST_SUNDAY
}

/// Whole seconds from `unix` until the next week starts (at least 1).
pub fn seconds_to_next_week(unix: i64) -> u64 {
    u64::try_from(week_start(unix) + WEEK_SECS - unix).unwrap_or(1)
}

/// Count one request of provider account `key` in its weekly quota of `quota` requests, in the
/// store (so that every instance on the database and every restart share one count).
/// `Err(renews_in)` when this week's quota is used up: nothing is counted and nothing may be
/// sent. Should the store not answer, the request goes on (logged): the provider still enforces
/// its quota, and its 429 is passed on.
pub(crate) async fn count_in_weekly_quota(
    repo: &dyn latchkey_store::Repository,
    key: &str,
    quota: u64,
) -> Result<(), Duration> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let renews_in = Duration::from_secs(seconds_to_next_week(now));
    if quota == 0 {
        return Err(renews_in);
    }
    match repo.count_in_quota(key, week_start(now), quota).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(renews_in),
        Err(e) => {
            tracing::warn!(
                "the weekly request quota could not be counted ({e}); sending without it"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_sunday_at_midnight_gmt() {
        // 2024-06-09 was a Sunday: 1717891200 is 00:00:00 UTC that day.
        let sunday = 1_717_891_200;
        assert_eq!(week_start(sunday), sunday);
        assert_eq!(week_start(sunday + 1), sunday);
        // Saturday 23:59:59 belongs to the week before.
        assert_eq!(week_start(sunday - 1), sunday - WEEK_SECS);
        assert_eq!(seconds_to_next_week(sunday - 1), 1);
        // Wednesday noon: three and a half days left.
        let wednesday_noon = sunday + 3 * 86_400 + 12 * 3_600;
        assert_eq!(week_start(wednesday_noon), sunday);
        assert_eq!(
            seconds_to_next_week(wednesday_noon),
            3 * 86_400 + 12 * 3_600
        );
        // At the start of a week a whole week is left; the epoch (a Thursday) is in the week of
        // Sunday 1969-12-28.
        assert_eq!(seconds_to_next_week(sunday), WEEK_SECS as u64);
        assert_eq!(week_start(0), -4 * 86_400);
        assert_eq!(week_start(FIRST_SUNDAY), FIRST_SUNDAY);
        // Every second of a week maps to its start, and it is a Sunday (UNIX day 3 mod 7).
        for offset in (0..WEEK_SECS).step_by(3_599) {
            let start = week_start(sunday + offset);
            assert_eq!(start, sunday);
            assert_eq!((start / 86_400).rem_euclid(7), 3);
        }
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_a_window() {
        let throttle = LocalThrottle::default();
        let limit = Limit {
            requests: 5,
            per: Duration::from_secs(1),
        };
        let mut waits = Vec::new();
        for _ in 0..12 {
            waits.push(
                throttle
                    .reserve("a", limit, Duration::from_secs(10))
                    .await
                    .unwrap(),
            );
        }
        assert!(waits[..5].iter().all(|w| w.is_zero()));
        assert!(waits[5] >= Duration::from_secs(1));
        assert!(waits[10] >= Duration::from_secs(2));
        // Other keys are not affected.
        assert!(
            throttle
                .reserve("b", limit, Duration::ZERO)
                .await
                .unwrap()
                .is_zero()
        );
        // Past the budget: refused with how long to wait, and nothing reserved.
        let err = throttle
            .reserve("a", limit, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(err >= Duration::from_secs(2));
    }
}
