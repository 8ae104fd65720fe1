#![doc = include_str!("../README.md")]

mod data;
mod demo;
mod faults;
mod limits;
mod providers;
mod scenario;
mod state;
mod util;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::demo::DemoCredentials;
use crate::faults::{Cut, CuttableListener};
use crate::providers::Provider;
pub use crate::scenario::{Faults, RateLimits, RateStats, Scenario, Volumes};
use crate::state::Shared;

/// The simulated providers, in catalog order (and port order: `base_port + index`).
pub const PROVIDER_IDS: [&str; 4] = ["chorus", "aircall", "ccai-platform", "clari-copilot"];

/// How long [`Sandbox::shutdown`] waits for in-flight requests before aborting a server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where and how the sandbox listens.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: IpAddr,
    /// `0`: each provider on a random free port. `N`: chorus on `N`, aircall
    /// `N+1`, ccai-platform `N+2`, clari-copilot `N+3`.
    pub base_port: u16,
    /// The credentials the simulated providers accept.
    pub demo: DemoCredentials,
    /// Added before every answer (default zero).
    pub latency: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: 0,
            demo: DemoCredentials::default(),
            latency: Duration::ZERO,
        }
    }
}

/// One request a simulated provider received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// e.g. `GET`.
    pub method: String,
    /// e.g. `/manager/api/v1/agents?per=1`.
    pub path_and_query: String,
    /// Every header, in arrival order, as (lowercase name, value); a value that
    /// is not UTF-8 is converted lossily.
    pub headers: Vec<(String, String)>,
    /// When the request arrived (its head was read).
    pub at: Instant,
    /// The status answered; `None` while the answer is pending and for a
    /// dropped connection (no answer at all).
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// The four simulated providers, running. Dropping it also stops them (without
/// waiting); [`Sandbox::shutdown`] stops them and waits.
pub struct Sandbox {
    shared: Arc<Shared>,
    servers: Vec<Server>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for provider in Provider::ALL {
            map.entry(&provider.id(), &self.servers[provider.index()].addr);
        }
        map.finish()
    }
}

/// The port of the provider at `index` for `base_port` (0 stays 0: a random port).
fn port_for(base_port: u16, index: usize) -> io::Result<u16> {
    if base_port == 0 {
        return Ok(0);
    }
    u16::try_from(index)
        .ok()
        .and_then(|i| base_port.checked_add(i))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "sandbox base port {base_port} is too high: the four providers need ports {base_port} to {base_port}+3"
                ),
            )
        })
}

impl Sandbox {
    /// Bind all four providers, spawn their servers on the current tokio
    /// runtime and return once they are listening. If any port cannot be bound,
    /// nothing is left running. Uses [`Scenario::default`]: 500 records per
    /// data endpoint, the real rate limits, no faults.
    pub async fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        Self::start_with(config, Scenario::default()).await
    }

    /// [`Sandbox::start`] with a given data seed, volumes, rate limits and faults.
    pub async fn start_with(config: SandboxConfig, scenario: Scenario) -> io::Result<Sandbox> {
        let mut listeners = Vec::with_capacity(Provider::ALL.len());
        for provider in Provider::ALL {
            let addr = SocketAddr::new(config.host, port_for(config.base_port, provider.index())?);
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("sandbox {}: cannot listen on {addr}: {e}", provider.id()),
                )
            })?;
            listeners.push((provider, listener));
        }

        let shared = Arc::new(Shared::new(config.demo, config.latency, scenario));
        let (stop, stopped) = watch::channel(false);
        let mut servers = Vec::with_capacity(listeners.len());
        for (provider, listener) in listeners {
            let addr = listener.local_addr()?;
            let app = provider
                .app(Arc::clone(&shared))
                .into_make_service_with_connect_info::<Cut>();
            let listener = CuttableListener(listener);
            let mut stopped = stopped.clone();
            let task = tokio::spawn(async move {
                // Ends on `send(true)` or when the `Sandbox` (the sender) is dropped.
                let signal = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await;
            });
            servers.push(Server { addr, task });
        }
        Ok(Sandbox {
            shared,
            servers,
            stop,
        })
    }

    /// The address `provider` listens on.
    pub fn addr(&self, provider: &str) -> Option<SocketAddr> {
        Provider::from_id(provider).map(|p| self.servers[p.index()].addr)
    }

    /// `http://HOST:PORT` of `provider` (for ccai-platform too: Latchkey's base
    /// URL override points at it instead of `https://{subdomain}.{region}.…`).
    pub fn base_url(&self, provider: &str) -> Option<String> {
        self.addr(provider).map(|addr| format!("http://{addr}"))
    }

    /// The credentials the simulated providers accept.
    pub fn demo(&self) -> &DemoCredentials {
        &self.shared.demo
    }

    /// Latency added before every answer from now on.
    pub fn set_latency(&self, d: Duration) {
        self.shared.set_latency(d);
    }

    /// `Some(status)`: every request of every provider answers `status` with
    /// that provider's error body (429: with its rate-limit headers). `None`:
    /// normal behaviour.
    pub fn set_forced_status(&self, status: Option<u16>) {
        self.shared.set_forced_status(status);
    }

    /// The last (up to 1,000) requests `provider` received, oldest first,
    /// rejected ones included. Unknown provider: empty.
    pub fn requests(&self, provider: &str) -> Vec<RecordedRequest> {
        Provider::from_id(provider)
            .map(|p| self.shared.requests(p))
            .unwrap_or_default()
    }

    /// Forget every provider's recorded requests, and the rate counters
    /// ([`Sandbox::rate_stats`], [`Sandbox::max_observed_rate`]; not the
    /// limits' current windows).
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// The record volumes the data endpoints serve.
    pub fn volumes(&self) -> Volumes {
        self.shared.volumes
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.shared.rate_limits()
    }

    /// Replace the rate limits from now on (e.g. [`RateLimits::off`]); the
    /// current windows start empty.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.shared.set_rate_limits(limits);
    }

    /// How many authenticated requests of `provider` reached the rate
    /// limiter, and how many it answered 429. Unknown provider: `None`.
    pub fn rate_stats(&self, provider: &str) -> Option<RateStats> {
        Provider::from_id(provider).map(|p| self.shared.rate_stats(p))
    }

    /// The most authenticated requests of `provider` that arrived within any
    /// span of `window` (sliding), throttled ones included: a client kept
    /// within a limit of N per `window` gives at most N. Counts the requests
    /// since the start or the last [`Sandbox::clear_requests`] (up to the
    /// last 1,000,000). Unknown provider: 0.
    pub fn max_observed_rate(&self, provider: &str, window: Duration) -> usize {
        Provider::from_id(provider).map_or(0, |p| self.shared.max_observed_rate(p, window))
    }

    /// The faults injected into `provider` (`None` if unknown).
    pub fn faults(&self, provider: &str) -> Option<Faults> {
        Provider::from_id(provider).map(|p| self.shared.faults(p))
    }

    /// Inject `faults` into `provider`, or into every provider with `None`;
    /// the deterministic sequences start again (see [`Faults`]).
    ///
    /// # Panics
    /// If `provider` is not one of [`PROVIDER_IDS`] (a typo would otherwise
    /// silently test nothing).
    pub fn set_faults(&self, provider: Option<&str>, faults: Faults) {
        for p in Self::targets(provider) {
            self.shared.set_faults(p, faults);
        }
    }

    /// Answer this share (0.0..=1.0) of `provider`'s requests (all providers
    /// with `None`) with its 5xx error (the configured `error_status`, 503 by
    /// default), in a deterministic sequence. Other fault settings are kept.
    ///
    /// # Panics
    /// If `provider` is not one of [`PROVIDER_IDS`].
    pub fn set_error_rate(&self, provider: Option<&str>, rate: f64) {
        for p in Self::targets(provider) {
            let faults = Faults {
                error_rate: rate,
                ..self.shared.faults(p)
            };
            self.shared.set_faults(p, faults);
        }
    }

    /// Close the connection of this share (0.0..=1.0) of `provider`'s
    /// requests (all providers with `None`) without any answer, in a
    /// deterministic sequence. Other fault settings are kept.
    ///
    /// # Panics
    /// If `provider` is not one of [`PROVIDER_IDS`].
    pub fn set_drop_rate(&self, provider: Option<&str>, rate: f64) {
        for p in Self::targets(provider) {
            let faults = Faults {
                drop_rate: rate,
                ..self.shared.faults(p)
            };
            self.shared.set_faults(p, faults);
        }
    }

    fn targets(provider: Option<&str>) -> Vec<Provider> {
        match provider {
            None => Provider::ALL.to_vec(),
            Some(id) => vec![
                Provider::from_id(id).unwrap_or_else(|| panic!("unknown sandbox provider {id:?}")),
            ],
        }
    }

    /// Stop all four servers: no new connections, in-flight requests finish
    /// (for at most 5 seconds, then they are aborted).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            let abort = server.task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_port_allocation() {
        assert_eq!(port_for(0, 3).unwrap(), 0);
        let ports: Vec<u16> = (0..4).map(|i| port_for(8100, i).unwrap()).collect();
        assert_eq!(ports, [8100, 8101, 8102, 8103]);
        assert_eq!(port_for(u16::MAX - 3, 3).unwrap(), u16::MAX);
        let err = port_for(u16::MAX - 2, 3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn default_config_is_loopback_random_ports() {
        let config = SandboxConfig::default();
        assert_eq!(config.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.base_port, 0);
        assert_eq!(config.latency, Duration::ZERO);
    }
}
