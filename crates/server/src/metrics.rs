//! Prometheus metrics: requests by route and status, a latency histogram, verification outcomes
//! by provider, authentication failures by reason. Labels never hold names, ids or secrets: routes
//! are the matched templates (`/v1/credentials/{id}`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

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
    /// A request's latency histogram and its counter, by the counter's labels.
    request_series: Series<RequestLabels, (Histogram, Counter)>,
    /// A proxied request's upstream latency histogram and its counter, by the counter's labels.
    proxy_series: Series<ProxyLabels, (Histogram, Counter)>,
}

/// Series already made, by their labels, in a map hashed with foldhash. Each family finds its
/// series in a map hashed with SipHash (std's default), and a proxied request's four lookups were
/// most of what the metrics cost it. The labels are Latchkey's own — route templates, standard
/// methods, statuses, catalog ids, answer classes — not a caller's, so a fast hash cannot be
/// flooded; and there are no more of them than of the families' series.
struct Series<L, M> {
    made: RwLock<HashMap<L, M, foldhash::fast::RandomState>>,
}

impl<L: Clone + Hash + Eq, M: Clone> Series<L, M> {
    fn new() -> Self {
        Series {
            made: RwLock::default(),
        }
    }

    /// Calls `with` on the series for `labels`, made by `make` the first time.
    fn with(&self, labels: &L, make: impl FnOnce(&L) -> M, with: impl FnOnce(&M)) {
        if let Some(series) = self
            .made
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(labels)
        {
            return with(series);
        }
        let series = make(labels);
        with(&series);
        self.made
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(labels.clone())
            .or_insert(series);
    }
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
            request_series: Series::new(),
            proxy_series: Series::new(),
        }
    }

    /// One request: its method (the standard ones by name, any other as `other`), the route
    /// template it matched, its status and how long it took.
    pub fn request(&self, method: &str, route: Cow<'static, str>, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: method_label(method),
            route,
            status,
        };
        let make = |labels: &RequestLabels| {
            let route = RouteLabels {
                route: labels.route.clone(),
            };
            (
                self.latency.get_or_create(&route).clone(),
                self.requests.get_or_create(labels).clone(),
            )
        };
        self.request_series
            .with(&labels, make, |(latency, requests)| {
                latency.observe(seconds);
                requests.inc();
            });
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
    pub fn proxy(&self, mut trace: latchkey_core::proxy::ProxyTrace, class: Cow<'static, str>) {
        let labels = ProxyLabels {
            provider: trace.provider.take().unwrap_or_else(|| "none".to_owned()),
            class,
        };
        let make = |labels: &ProxyLabels| {
            let provider = ProviderLabels {
                provider: labels.provider.clone(),
            };
            (
                self.proxy_latency.get_or_create(&provider).clone(),
                self.proxy_requests.get_or_create(labels).clone(),
            )
        };
        let upstream = trace.upstream();
        if upstream.is_empty() {
            // Nothing was sent: no latency series for it (rare, so not kept in `proxy_series`).
            self.proxy_requests.get_or_create(&labels).inc();
        } else {
            self.proxy_series
                .with(&labels, make, |(latency, requests)| {
                    for took in upstream {
                        latency.observe(took.as_secs_f64());
                    }
                    requests.inc();
                });
        }
        if trace.retries == 0 && trace.throttled_for.is_zero() {
            return;
        }
        let labels = ProviderLabels {
            provider: labels.provider,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::proxy::ProxyTrace;
    use std::time::Duration;

    fn trace(provider: Option<&str>, upstream: &[u64]) -> ProxyTrace {
        let mut trace = ProxyTrace::default();
        trace.provider = provider.map(str::to_owned);
        for ms in upstream {
            trace.answered_in(Duration::from_millis(*ms));
        }
        trace
    }

    #[test]
    fn series_kept_by_their_labels_count_in_the_families() {
        let metrics = Metrics::new();
        for _ in 0..2 {
            metrics.request("GET", "/v1/x".into(), 200, 0.001);
            metrics.proxy(trace(Some("chorus"), &[3]), Metrics::status_class(200));
        }
        metrics.request("POST", "/v1/x".into(), 201, 0.001);
        metrics.proxy(trace(Some("chorus"), &[3, 4]), Metrics::status_class(503));
        metrics.proxy(trace(None, &[]), "error_not_found".into());
        let out = metrics.render();
        for line in [
            r#"latchkey_http_requests_total{method="GET",route="/v1/x",status="200"} 2"#,
            r#"latchkey_http_requests_total{method="POST",route="/v1/x",status="201"} 1"#,
            r#"latchkey_http_request_duration_seconds_count{route="/v1/x"} 3"#,
            r#"latchkey_proxy_requests_total{provider="chorus",class="2xx"} 2"#,
            r#"latchkey_proxy_requests_total{provider="chorus",class="5xx"} 1"#,
            r#"latchkey_proxy_requests_total{provider="none",class="error_not_found"} 1"#,
            r#"latchkey_proxy_upstream_duration_seconds_count{provider="chorus"} 4"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert!(
            !out.contains(r#"duration_seconds_count{provider="none"}"#),
            "{out}"
        );
    }
}
