//! What the simulated accounts hold and how the providers behave under load:
//! the data seed and volumes, the rate limits and the injected faults.

use std::time::Duration;

/// Everything about the simulated accounts beyond where they listen:
/// passed to [`crate::Sandbox::start_with`]; [`crate::Sandbox::start`] uses
/// [`Scenario::default`]. (Kept apart from [`crate::SandboxConfig`] so that
/// struct literals of the latter elsewhere keep compiling.)
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Seed of the generated data: the same seed and volumes give the same
    /// records, byte for byte, on every start.
    pub seed: u64,
    /// How many records each data endpoint holds.
    pub volumes: Volumes,
    /// Per-account rate limits (see [`RateLimits`]).
    pub rate_limits: RateLimits,
    /// Faults injected into every provider from the first request on
    /// (change them at run time with [`crate::Sandbox::set_faults`]).
    pub faults: Faults,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: 0x1a7c_4b3e_5eed_0001,
            volumes: Volumes::default(),
            rate_limits: RateLimits::default(),
            faults: Faults::default(),
        }
    }
}

/// Number of records per data endpoint (default 500 each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volumes {
    /// Chorus `GET /v3/engagements`.
    pub chorus_engagements: usize,
    /// Aircall `GET /v1/calls`.
    pub aircall_calls: usize,
    /// CCAI Platform `GET /manager/api/v1/calls`.
    pub ccai_calls: usize,
    /// CCAI Platform `GET /manager/api/v1/agents` (the first three are always
    /// Grace Hopper, Katherine Johnson and Alan Turing).
    pub ccai_agents: usize,
    /// Clari Copilot `GET /calls`.
    pub clari_calls: usize,
}

impl Default for Volumes {
    fn default() -> Self {
        Self {
            chorus_engagements: 500,
            aircall_calls: 500,
            ccai_calls: 500,
            ccai_agents: 500,
            clari_calls: 500,
        }
    }
}

/// Rate limits per provider account (`None`: no limit). Only authenticated
/// requests count (a rejected credential cannot be attributed to an account);
/// answers to throttled requests do not use up the quota. Windows slide: at
/// most `N` admitted requests in *any* span of the window's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Aircall, per company (the API ID); default 120 (older material: 60).
    pub aircall_per_minute: Option<u32>,
    /// CCAI Platform, per customer (subdomain); default 10.
    pub ccai_per_second: Option<u32>,
    /// Clari Copilot, per key pair; default 10.
    pub clari_per_second: Option<u32>,
    /// Clari Copilot, per key pair per GMT week starting Sunday 00:00; default 100,000.
    pub clari_per_week: Option<u64>,
    /// Chorus documents no limit; default `None`. When set, a 429 without
    /// any rate-limit header.
    pub chorus_per_minute: Option<u32>,
}

impl RateLimits {
    /// No limit anywhere.
    pub const fn off() -> Self {
        Self {
            aircall_per_minute: None,
            ccai_per_second: None,
            clari_per_second: None,
            clari_per_week: None,
            chorus_per_minute: None,
        }
    }

    /// The short-window limit of provider `index` (catalog order) and its window.
    pub(crate) fn window(&self, index: usize) -> (Option<u32>, Duration) {
        match index {
            0 => (self.chorus_per_minute, Duration::from_secs(60)),
            1 => (self.aircall_per_minute, Duration::from_secs(60)),
            2 => (self.ccai_per_second, Duration::from_secs(1)),
            _ => (self.clari_per_second, Duration::from_secs(1)),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            aircall_per_minute: Some(120),
            ccai_per_second: Some(10),
            clari_per_second: Some(10),
            clari_per_week: Some(100_000),
            chorus_per_minute: None,
        }
    }
}

/// Injected faults, in a deterministic sequence: with a rate `r`, request `n`
/// (counted from the last change) is hit when `floor((n+1)·r) > floor(n·r)`,
/// so exactly `floor(N·r)` of the first `N` requests are hit, evenly spread
/// (r = 0.5: the 2nd, 4th, 6th …; the first request is hit only when r = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Share (0.0..=1.0) of requests answered `error_status` with the
    /// provider's error body, among the requests not dropped.
    pub error_rate: f64,
    /// The status of injected errors (default 503).
    pub error_status: u16,
    /// Share (0.0..=1.0) of requests whose connection is closed without any
    /// answer byte, after the request was read (and after any latency).
    pub drop_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_status: 503,
            drop_rate: 0.0,
        }
    }
}

/// Counters of one provider's rate limiting, since the start or the last
/// [`crate::Sandbox::clear_requests`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateStats {
    /// Authenticated requests that reached the rate limiter (admitted or not).
    pub counted: u64,
    /// Of those, answered 429 by the limiter (forced 429s are not counted).
    pub throttled: u64,
}
