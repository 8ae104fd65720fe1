//! State shared by the four simulated providers and the [`crate::Sandbox`] handle:
//! demo credentials, the generated data, rate limits, fault injection and the
//! request log.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::faults::{Cut, Fault, FaultState};
use crate::limits::{Limiter, Throttle};
use crate::providers::{Provider, aircall, ccai, chorus, clari};
use crate::scenario::{Faults, RateLimits, RateStats, Scenario, Volumes};
use crate::{DemoCredentials, RecordedRequest};

/// How many requests each provider's log keeps (the most recent ones).
pub(crate) const REQUEST_LOG_CAPACITY: usize = 1_000;

/// Lock, and keep using a poisoned mutex (its data is still consistent here:
/// every critical section leaves it valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One provider's request log: (sequence number, request), oldest first.
#[derive(Debug, Default)]
struct Log {
    next: u64,
    entries: VecDeque<(u64, RecordedRequest)>,
}

/// Each provider's generated records, built on first use.
#[derive(Debug, Default)]
struct Datasets {
    chorus: OnceLock<chorus::Data>,
    aircall: OnceLock<aircall::Data>,
    ccai: OnceLock<ccai::Data>,
    clari: OnceLock<clari::Data>,
}

/// Everything the running servers share with the [`crate::Sandbox`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) demo: DemoCredentials,
    pub(crate) seed: u64,
    pub(crate) volumes: Volumes,
    data: Datasets,
    /// Added latency in nanoseconds (saturating).
    latency_nanos: AtomicU64,
    /// Forced status; 0 = none.
    forced_status: AtomicU32,
    limiter: Mutex<Limiter>,
    /// Indexed by [`Provider::index`].
    faults: [Mutex<FaultState>; 4],
    /// One bounded log per provider, indexed by [`Provider::index`].
    logs: [Mutex<Log>; 4],
}

impl Shared {
    pub(crate) fn new(demo: DemoCredentials, latency: Duration, scenario: Scenario) -> Self {
        let shared = Self {
            demo,
            seed: scenario.seed,
            volumes: scenario.volumes,
            data: Datasets::default(),
            latency_nanos: AtomicU64::new(0),
            forced_status: AtomicU32::new(0),
            limiter: Mutex::new(Limiter::new(scenario.rate_limits)),
            faults: std::array::from_fn(|_| Mutex::new(FaultState::new(scenario.faults))),
            logs: Default::default(),
        };
        shared.set_latency(latency);
        shared
    }

    pub(crate) fn chorus_data(&self) -> &chorus::Data {
        self.data
            .chorus
            .get_or_init(|| chorus::Data::generate(self.seed, self.volumes.chorus_engagements))
    }

    pub(crate) fn aircall_data(&self) -> &aircall::Data {
        self.data
            .aircall
            .get_or_init(|| aircall::Data::generate(self.seed, self.volumes.aircall_calls))
    }

    pub(crate) fn ccai_data(&self) -> &ccai::Data {
        self.data.ccai.get_or_init(|| {
            ccai::Data::generate(self.seed, self.volumes.ccai_agents, self.volumes.ccai_calls)
        })
    }

    pub(crate) fn clari_data(&self) -> &clari::Data {
        self.data
            .clari
            .get_or_init(|| clari::Data::generate(self.seed, self.volumes.clari_calls))
    }

    pub(crate) fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn set_forced_status(&self, status: Option<u16>) {
        self.forced_status
            .store(status.map_or(0, u32::from), Ordering::Relaxed);
    }

    pub(crate) fn forced_status(&self) -> Option<u16> {
        match self.forced_status.load(Ordering::Relaxed) {
            0 => None,
            s => u16::try_from(s).ok(),
        }
    }

    /// The throttle a forced 429 reports.
    pub(crate) fn forced_throttle(&self, provider: Provider) -> Throttle {
        lock(&self.limiter).forced(provider.index())
    }

    pub(crate) fn rate_limits(&self) -> RateLimits {
        lock(&self.limiter).limits()
    }

    pub(crate) fn set_rate_limits(&self, limits: RateLimits) {
        lock(&self.limiter).set_limits(limits);
    }

    pub(crate) fn rate_stats(&self, provider: Provider) -> RateStats {
        lock(&self.limiter).stats(provider.index())
    }

    pub(crate) fn max_observed_rate(&self, provider: Provider, window: Duration) -> usize {
        lock(&self.limiter).max_observed_rate(provider.index(), window)
    }

    pub(crate) fn faults(&self, provider: Provider) -> Faults {
        lock(&self.faults[provider.index()]).faults()
    }

    pub(crate) fn set_faults(&self, provider: Provider, faults: Faults) {
        lock(&self.faults[provider.index()]).set(faults);
    }

    /// Log a request; returns its sequence number (for [`Shared::set_status`]).
    pub(crate) fn record(&self, provider: Provider, request: RecordedRequest) -> u64 {
        let mut log = lock(&self.logs[provider.index()]);
        while log.entries.len() >= REQUEST_LOG_CAPACITY {
            log.entries.pop_front();
        }
        let seq = log.next;
        log.next += 1;
        log.entries.push_back((seq, request));
        seq
    }

    /// Note the status answered to logged request `seq` (if still logged).
    fn set_status(&self, provider: Provider, seq: u64, status: u16) {
        let mut log = lock(&self.logs[provider.index()]);
        if let Some((_, request)) = log.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            request.status = Some(status);
        }
    }

    pub(crate) fn requests(&self, provider: Provider) -> Vec<RecordedRequest> {
        lock(&self.logs[provider.index()])
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        for provider in Provider::ALL {
            lock(&self.logs[provider.index()]).entries.clear();
        }
        lock(&self.limiter).clear_stats();
    }
}

/// The axum state of one provider's server.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) provider: Provider,
}

impl AppState {
    pub(crate) fn demo(&self) -> &DemoCredentials {
        &self.shared.demo
    }
}

/// Runs in front of every request of every provider, matched or not: record
/// it, wait the injected latency, then, in this order: answer the forced
/// status; count an authenticated request against the account's rate limit
/// and answer 429 when it is exhausted; drop the connection or answer an
/// injected error as the fault sequence says; else pass it on.
pub(crate) async fn intercept(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let recorded = RecordedRequest {
        method: req.method().as_str().to_owned(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        at: Instant::now(),
        status: None,
    };
    let arrived = recorded.at;
    let seq = app.shared.record(app.provider, recorded);

    let latency = app.shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = answer(&app, arrived, req, next).await;
    if let Some(response) = &response {
        app.shared
            .set_status(app.provider, seq, response.status().as_u16());
    }
    // A dropped request's answer is never written: any response will do.
    response.unwrap_or_else(|| ().into_response())
}

/// The answer to a request, or `None` when its connection was cut.
async fn answer(app: &AppState, arrived: Instant, req: Request, next: Next) -> Option<Response> {
    let shared = &app.shared;
    let provider = app.provider;
    if let Some(status) = shared.forced_status() {
        return Some(provider.forced_response(status, shared));
    }
    if provider.authenticated(app, req.headers()) {
        let throttle = lock(&shared.limiter).check(provider.index(), arrived);
        if let Some(throttle) = throttle {
            return Some(provider.throttled(&throttle));
        }
    }
    let fault = lock(&shared.faults[provider.index()]).next();
    match fault {
        Fault::None => Some(next.run(req).await),
        Fault::Error(status) => Some(provider.error_for(status)),
        Fault::Drop => match req.extensions().get::<ConnectInfo<Cut>>() {
            Some(ConnectInfo(cut)) => {
                cut.cut();
                None
            }
            // Not served through the sandbox's listener (cannot happen via
            // `Sandbox::start`): the closest answer is a gateway error.
            None => Some(provider.error_for(502)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: usize) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path_and_query: format!("/{n}"),
            headers: vec![],
            at: Instant::now(),
            status: None,
        }
    }

    #[test]
    fn log_keeps_the_last_thousand_per_provider() {
        let shared = Shared::new(
            DemoCredentials::default(),
            Duration::ZERO,
            Scenario::default(),
        );
        for n in 0..REQUEST_LOG_CAPACITY + 5 {
            shared.record(Provider::Aircall, req(n));
        }
        shared.record(Provider::Chorus, req(7));
        let log = shared.requests(Provider::Aircall);
        assert_eq!(log.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(log[0].path_and_query, "/5");
        assert_eq!(
            log.last().unwrap().path_and_query,
            format!("/{}", REQUEST_LOG_CAPACITY + 4)
        );
        assert_eq!(shared.requests(Provider::Chorus).len(), 1);
        shared.clear_requests();
        assert!(shared.requests(Provider::Aircall).is_empty());
        assert!(shared.requests(Provider::Chorus).is_empty());
    }

    #[test]
    fn faults_round_trip() {
        let shared = Shared::new(
            DemoCredentials::default(),
            Duration::from_millis(3),
            Scenario::default(),
        );
        assert_eq!(shared.latency(), Duration::from_millis(3));
        shared.set_latency(Duration::MAX);
        assert_eq!(shared.latency(), Duration::from_nanos(u64::MAX));
        assert_eq!(shared.forced_status(), None);
        shared.set_forced_status(Some(503));
        assert_eq!(shared.forced_status(), Some(503));
        shared.set_forced_status(None);
        assert_eq!(shared.forced_status(), None);
    }
}
