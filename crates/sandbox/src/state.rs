//! State shared by the four simulated providers and the [`crate::Sandbox`] handle:
//! demo credentials, fault injection and the request log. Later data endpoints
//! (calls, paging, rate-limit windows) add their per-provider state here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::providers::Provider;
use crate::{DemoCredentials, RecordedRequest};

/// How many requests each provider's log keeps (the most recent ones).
pub(crate) const REQUEST_LOG_CAPACITY: usize = 1_000;

/// Everything the running servers share with the [`crate::Sandbox`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) demo: DemoCredentials,
    /// Added latency in nanoseconds (saturating).
    latency_nanos: AtomicU64,
    /// Forced status; 0 = none.
    forced_status: AtomicU32,
    /// One bounded log per provider, indexed by [`Provider::index`].
    logs: [Mutex<VecDeque<RecordedRequest>>; 4],
}

impl Shared {
    pub(crate) fn new(demo: DemoCredentials, latency: Duration) -> Self {
        let shared = Self {
            demo,
            latency_nanos: AtomicU64::new(0),
            forced_status: AtomicU32::new(0),
            logs: Default::default(),
        };
        shared.set_latency(latency);
        shared
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

    fn log(&self, provider: Provider) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        // A poisoned log is still a valid log: keep using it.
        self.logs[provider.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, provider: Provider, request: RecordedRequest) {
        let mut log = self.log(provider);
        while log.len() >= REQUEST_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(request);
    }

    pub(crate) fn requests(&self, provider: Provider) -> Vec<RecordedRequest> {
        self.log(provider).iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&self) {
        for provider in Provider::ALL {
            self.log(provider).clear();
        }
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

/// Runs in front of every request of every provider, matched or not: record it,
/// wait the injected latency, then answer the forced status or pass it on.
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
    };
    app.shared.record(app.provider, recorded);

    let latency = app.shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = app.shared.forced_status() {
        return app.provider.forced_response(status);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: usize) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path_and_query: format!("/{n}"),
            headers: vec![],
        }
    }

    #[test]
    fn log_keeps_the_last_thousand_per_provider() {
        let shared = Shared::new(DemoCredentials::default(), Duration::ZERO);
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
        let shared = Shared::new(DemoCredentials::default(), Duration::from_millis(3));
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
