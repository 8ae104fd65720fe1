//! Waiting for a provider's rate limit instead of letting the provider answer 429.
//!
//! A throttle hands out send times per provider account so that no window of the limit's length
//! ever holds more requests than the limit allows. [`LocalThrottle`] lives in the process (one
//! instance, e.g. on SQLite); [`SharedThrottle`] keeps the grants in the database, so that every
//! instance on one PostgreSQL database together stays within the provider's limit.

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

#[cfg(test)]
mod tests {
    use super::*;

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
