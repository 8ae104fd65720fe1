//! Prometheus metrics: requests by route and status, a latency histogram, verification outcomes
//! by provider, authentication failures by reason. Labels never hold names, ids or secrets: routes
//! are the matched templates (`/v1/credentials/{id}`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Cow<'static, str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    provider: String,
    /// `2xx` … `5xx` from the provider, or `error_<code>` when Latchkey answered itself.
    class: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

pub struct Metrics {
    registry: Registry,
    proxy_requests: Family<ProxyLabels, Counter>,
    proxy_latency: Family<ProviderLabels, Histogram>,
    proxy_retries: Family<ProviderLabels, Counter>,
    proxy_throttle_wait: Family<ProviderLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    verifications: Family<VerificationLabels, Counter>,
    auth_failures: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        let verifications = Family::<VerificationLabels, Counter>::default();
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "verifications",
            "Credential verifications by provider and outcome",
            verifications.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed API credential authentications by reason",
            auth_failures.clone(),
        );
        let proxy_requests = Family::<ProxyLabels, Counter>::default();
        let proxy_latency = Family::<ProviderLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        let proxy_retries = Family::<ProviderLabels, Counter>::default();
        let proxy_throttle_wait =
            Family::<ProviderLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "proxy_requests",
            "Proxied requests by provider (none: the credential was not found) and answer class",
            proxy_requests.clone(),
        );
        registry.register(
            "proxy_upstream_duration_seconds",
            "Time from sending a proxied request to the provider until its answer's status and headers arrive, one observation per request sent (retries too; throttle waits and backoff not included)",
            proxy_latency.clone(),
        );
        registry.register(
            "proxy_retries",
            "Proxied requests sent again (429, 5xx, connection errors), whatever the outcome",
            proxy_retries.clone(),
        );
        registry.register(
            "proxy_throttle_wait_seconds",
            "Time proxied requests waited for a rate-limit slot, whatever the outcome",
            proxy_throttle_wait.clone(),
        );
        Metrics {
            registry,
            proxy_requests,
            proxy_latency,
            proxy_retries,
            proxy_throttle_wait,
            requests,
            latency,
            verifications,
            auth_failures,
        }
    }

    /// One request: its method (the standard ones by name, any other as `other`), the route
    /// template it matched, its status and how long it took.
    pub fn request(&self, method: &str, route: Cow<'static, str>, status: u16, seconds: f64) {
        let labels = RouteLabels { route };
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                route: labels.route,
                status,
            })
            .inc();
    }

    pub fn verification(&self, provider: &str, outcome: &str) {
        self.verifications
            .get_or_create(&VerificationLabels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One proxied request: its outcome's `class` (`2xx` … `5xx` from the provider, or
    /// `error_<code>` when Latchkey answered itself) and what `trace` says it took.
    pub fn proxy(&self, trace: latchkey_core::proxy::ProxyTrace, class: Cow<'static, str>) {
        let labels = ProviderLabels {
            provider: trace.provider.unwrap_or_else(|| "none".to_owned()),
        };
        if !trace.upstream.is_empty() {
            let histogram = self.proxy_latency.get_or_create(&labels);
            for took in &trace.upstream {
                histogram.observe(took.as_secs_f64());
            }
        }
        if trace.retries > 0 {
            self.proxy_retries
                .get_or_create(&labels)
                .inc_by(u64::from(trace.retries));
        }
        if !trace.throttled_for.is_zero() {
            self.proxy_throttle_wait
                .get_or_create(&labels)
                .inc_by(trace.throttled_for.as_secs_f64());
        }
        self.proxy_requests
            .get_or_create(&ProxyLabels {
                provider: labels.provider,
                class,
            })
            .inc();
    }

    /// The class of an answer with `status`, as [`Metrics::proxy`] counts it.
    pub fn status_class(status: u16) -> Cow<'static, str> {
        match status / 100 {
            1 => Cow::Borrowed("1xx"),
            2 => Cow::Borrowed("2xx"),
            3 => Cow::Borrowed("3xx"),
            4 => Cow::Borrowed("4xx"),
            5 => Cow::Borrowed("5xx"),
            _ => Cow::Owned(format!("{}xx", status / 100)),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// A method as the request metrics name it: the standard methods by name, any other as `other`
/// (so that a caller's made-up methods cannot add series without end).
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}
