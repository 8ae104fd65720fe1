//! The auth-injecting proxy: a pipeline sends a request for a stored credential; Latchkey renders
//! the target from the catalog, injects the provider's auth, keeps to the provider's rate limit,
//! retries what is safe to retry, and streams the answer back. The caller never sees the secret.

use crate::Latchkey;
use crate::error::{CoreError, Result};
use crate::model::{Actor, Timestamp};
use crate::outbound::{OutboundError, ProxyRequestBody, ProxyResponse};
use crate::throttle::{Limit, LocalThrottle, Throttle};
use bytes::Bytes;
use http_body_util::BodyExt;
use latchkey_catalog::{Provider, Verdict};
use reqwest::header::{HeaderMap, HeaderName};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a caller lets Latchkey wait for a rate-limit slot and retries by default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);
/// Retries of one proxied request at most.
const MAX_RETRIES: u32 = 4;
/// How often `last_used_at` is written for one credential at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// The header prefix that belongs to Latchkey and is never forwarded.
pub const OWN_HEADER_PREFIX: &str = "x-latchkey-";

/// A proxied request's body: buffered (idempotent methods, so it can be sent again) or streamed.
pub enum ProxyBody {
    Buffered(Bytes),
    Streamed(ProxyRequestBody),
}

impl ProxyBody {
    /// A body to stream through, sent once.
    pub fn streamed<B>(body: B) -> ProxyBody
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::outbound::BoxError>,
    {
        ProxyBody::Streamed(body.map_err(Into::into).boxed_unsync())
    }
}

/// A buffered body, as one chunk (again for each attempt).
fn one_chunk(bytes: Bytes) -> ProxyRequestBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub struct ProxyRequest {
    pub method: reqwest::Method,
    /// The path under the provider's base URL, with its query.
    pub path_and_query: String,
    /// The caller's headers as they came: only those [`ForwardableRequestHeaders`] allows are
    /// sent on.
    pub headers: HeaderMap,
    pub body: ProxyBody,
    /// How long Latchkey may wait for a rate-limit slot and retries (`X-Latchkey-Max-Wait`).
    pub max_wait: Duration,
}

/// The provider's answer, ready to stream back.
pub struct ProxyAnswer {
    pub response: ProxyResponse,
}

/// What a proxied request took, filled in whatever its outcome (for metrics; no names, ids or
/// secrets).
#[derive(Debug, Clone, Default)]
pub struct ProxyTrace {
    /// The credential's provider (its catalog id), once the credential was found.
    pub provider: Option<String>,
    /// Requests sent again (after a 429, a 5xx or a connection error).
    pub retries: u32,
    /// Time spent waiting for rate-limit slots.
    pub throttled_for: Duration,
    /// For each request sent to the provider that got an answer: the time from sending it until
    /// the answer's status and headers arrived (throttle waits and backoff not included). Kept in
    /// place (a request is sent at most `1 + MAX_RETRIES` times), so that tracing allocates nothing.
    upstream: [Duration; 1 + MAX_RETRIES as usize],
    answered: usize,
}

impl ProxyTrace {
    /// The time each answered request took until its status and headers arrived, in order.
    pub fn upstream(&self) -> &[Duration] {
        &self.upstream[..self.answered]
    }

    /// One more answered request, `took` from sending it until its head arrived.
    pub fn answered_in(&mut self, took: Duration) {
        if let Some(slot) = self.upstream.get_mut(self.answered) {
            *slot = took;
            self.answered += 1;
        }
    }
}

/// Why no send slot was given.
pub(crate) enum Refusal {
    /// The rate limit's next slot is further away than the budget.
    Busy(Duration),
    /// The weekly quota is used up until the next week starts.
    QuotaUsedUp { quota: u64, renews_in: Duration },
}

/// The longest a credential's rendered auth is kept for the proxy.
const PREPARED_FOR: Duration = Duration::from_secs(2);

/// A credential's rendered auth and the provider account it draws on.
struct Prepared {
    auth: latchkey_catalog::PreparedAuth,
    /// The same, as the proxy sends it.
    base: crate::outbound::ProxyBase,
    account: String,
}

struct PreparedEntry {
    /// The stored row it was rendered from: used only while the read cache hands out this row.
    row: Arc<latchkey_store::CredentialRow>,
    prepared: Arc<Prepared>,
    at: Instant,
}

/// What the proxy keeps between requests.
pub(crate) struct ProxyState {
    pub throttle: Arc<dyn Throttle>,
    /// By credential id (Latchkey's own, never a caller's text, so a fast hash will do).
    last_used: Mutex<HashMap<String, Instant, foldhash::fast::RandomState>>,
    /// Rendered auth by credential id.
    prepared: Mutex<HashMap<String, PreparedEntry, foldhash::fast::RandomState>>,
}

impl ProxyState {
    /// Throttled by `throttle` (shared by every instance on the database, or this process's own).
    pub(crate) fn new(throttle: Arc<dyn Throttle>) -> ProxyState {
        ProxyState {
            throttle,
            last_used: Mutex::default(),
            prepared: Mutex::default(),
        }
    }

    fn lock_prepared(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, PreparedEntry, foldhash::fast::RandomState>>
    {
        self.prepared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ProxyState {
    fn default() -> Self {
        ProxyState::new(Arc::new(LocalThrottle::default()))
    }
}

/// Whether a method may be sent twice with the same effect.
pub fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (a header name, so lower case) is a hop-by-hop header.
fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// The header names a message's `Connection` headers list, to be dropped with it. Allocates only
/// for names beyond the hop-by-hop ones (usually none: it says `keep-alive` or `close`).
fn listed_in_connection(headers: &HeaderMap) -> Vec<String> {
    let mut listed = Vec::new();
    for value in headers.get_all(reqwest::header::CONNECTION) {
        let value = value.as_bytes();
        if value.eq_ignore_ascii_case(b"keep-alive") || value.eq_ignore_ascii_case(b"close") {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for name in value.split(',').map(str::trim) {
            if !name.is_empty()
                && !name.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            {
                listed.push(name.to_ascii_lowercase());
            }
        }
    }
    listed
}

/// Which of the caller's headers may reach the provider: not hop-by-hop nor listed in the
/// caller's `Connection` header, not `Host`, not the caller's own `Authorization` or `Cookie`,
/// not Latchkey's `X-Latchkey-*`. Made once per request from the caller's headers.
pub struct ForwardableRequestHeaders {
    listed: Vec<String>,
}

impl ForwardableRequestHeaders {
    pub fn of(headers: &HeaderMap) -> ForwardableRequestHeaders {
        ForwardableRequestHeaders {
            listed: listed_in_connection(headers),
        }
    }

    /// Whether the header `name` may reach the provider.
    pub fn allows(&self, name: &HeaderName) -> bool {
        let name = name.as_str();
        !(is_hop_by_hop(name)
            || name == "host"
            || name == "authorization"
            || name == "cookie"
            || name.starts_with(OWN_HEADER_PREFIX)
            || self.listed.iter().any(|l| l == name))
    }
}

/// The provider's headers that may reach the caller: all but hop-by-hop ones and those its
/// `Connection` header lists.
pub fn forwardable_response_headers(mut headers: HeaderMap) -> HeaderMap {
    let listed = listed_in_connection(&headers);
    let drop = |name: &HeaderName| {
        is_hop_by_hop(name.as_str()) || listed.iter().any(|l| l == name.as_str())
    };
    // One name at a time, so that nothing is collected: an answer has a header or two to drop.
    while let Some(name) = headers.keys().find(|name| drop(name)).cloned() {
        headers.remove(name);
    }
    headers
}

impl Latchkey {
    /// Proxy one request through a stored credential of the caller's workspace. `trace` is
    /// filled in as the request goes, also when it fails.
    pub async fn proxy(
        &self,
        actor: &Actor,
        workspace: &str,
        reference: &str,
        request: ProxyRequest,
        trace: &mut ProxyTrace,
    ) -> Result<ProxyAnswer> {
        // One clock reading for the request's start: its deadline, its rendered auth's age, and
        // its credential's last use.
        let started = Instant::now();
        let (ws, row) = self.recent_row(workspace, reference).await?;
        trace.provider = Some(row.provider.clone());
        if !row.enabled {
            return Err(CoreError::CredentialDisabled {
                name: row.name.clone(),
            });
        }
        let provider = self.provider(&row.provider)?;
        let prepared = self.prepared(&row, provider, started)?;
        let path_and_query = prepared
            .auth
            .path_and_query(&request.path_and_query)
            .map_err(|e| CoreError::InvalidProxyPath(e.to_string()))?;
        let target = prepared
            .base
            .target(&request.method, path_and_query)
            .map_err(|e| CoreError::UpstreamUnreachable {
                provider: provider.name.clone(),
                reason: e.to_string(),
            })?;
        let account = &prepared.account;

        let deadline = started + request.max_wait;
        let replayable = is_idempotent(request.method.as_str())
            && matches!(request.body, ProxyBody::Buffered(_));
        let mut body = Some(request.body);
        let headers = request.headers;
        let forwardable = ForwardableRequestHeaders::of(&headers);
        // A buffered body is sent whole, and hyper gives it its length.
        let buffered = matches!(body, Some(ProxyBody::Buffered(_)));
        let forward = |name: &HeaderName| {
            forwardable.allows(name) && !(buffered && *name == reqwest::header::CONTENT_LENGTH)
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reserve_send(provider, account, left).await {
                Ok(wait) => {
                    trace.throttled_for += wait;
                    pause(wait).await;
                }
                Err(refusal) => return Err(refused(provider, refusal)),
            }
            let this_body = match &body {
                Some(ProxyBody::Buffered(bytes)) => one_chunk(bytes.clone()),
                Some(ProxyBody::Streamed(_)) => match body.take() {
                    Some(ProxyBody::Streamed(stream)) => stream,
                    _ => one_chunk(Bytes::new()),
                },
                None => one_chunk(Bytes::new()),
            };
            let sent_at = Instant::now();
            let sent = self
                .outbound
                .send_proxied(&target, &headers, &forward, this_body)
                .await;
            let response = match sent {
                Ok(response) => {
                    trace.answered_in(sent_at.elapsed());
                    response
                }
                Err(OutboundError::Timeout(seconds)) => {
                    return Err(CoreError::UpstreamTimeout {
                        provider: provider.name.clone(),
                        seconds,
                    });
                }
                Err(e) => {
                    let pause = backoff(trace.retries);
                    if replayable
                        && trace.retries < MAX_RETRIES
                        && Instant::now() + pause < deadline
                        && !matches!(e, OutboundError::Refused(_))
                    {
                        trace.retries += 1;
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    return Err(CoreError::UpstreamUnreachable {
                        provider: provider.name.clone(),
                        reason: e.to_string(),
                    });
                }
            };
            let status = response.status().as_u16();
            if provider.verify.classify(status) == Verdict::Rejected {
                // Boxed, as rare: see `outbound::pool::send`.
                Box::pin(self.rejected_by_traffic(actor, &ws, &row.id, provider, status)).await;
                self.touch(&ws.id, &row.id, started).await;
                return Ok(ProxyAnswer { response });
            }
            if status == 429 {
                let wait = provider_wait(provider, response.headers())
                    .unwrap_or_else(|| backoff(trace.retries));
                if replayable && trace.retries < MAX_RETRIES && Instant::now() + wait < deadline {
                    trace.retries += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(rate_limited(provider, wait));
            }
            if (500..600).contains(&status) && replayable && trace.retries < MAX_RETRIES {
                let pause = backoff(trace.retries);
                if Instant::now() + pause < deadline {
                    trace.retries += 1;
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
            self.touch(&ws.id, &row.id, started).await;
            return Ok(ProxyAnswer { response });
        }
    }

    /// The credential's base URL and auth rendered for the proxy, opened from the stored row at
    /// most once per read of the row (the read cache refreshes its rows every second), so that a
    /// burst of requests opens the credential once, not once per request. Kept at most
    /// [`PREPARED_FOR`] (from `now`), and zeroized when dropped.
    fn prepared(
        &self,
        row: &Arc<latchkey_store::CredentialRow>,
        provider: &Provider,
        now: Instant,
    ) -> Result<Arc<Prepared>> {
        let fresh = |entry: &PreparedEntry| now.duration_since(entry.at) < PREPARED_FOR;
        if let Some(entry) = self.proxy_state.lock_prepared().get(&row.id)
            && Arc::ptr_eq(&entry.row, row)
            && fresh(entry)
        {
            return Ok(entry.prepared.clone());
        }
        let settings: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&row.settings).unwrap_or_default();
        let secrets = self.open(row)?;
        let values = crate::credentials::values_of(&settings, &secrets);
        let auth = provider
            .prepare(&values)
            .map_err(|e| CoreError::InvalidProxyPath(e.to_string()))?;
        let prepared = Arc::new(Prepared {
            account: format!("{}/{}", provider.id, auth.account_key().unwrap_or_default()),
            base: crate::outbound::ProxyBase::new(&auth),
            auth,
        });
        let mut cache = self.proxy_state.lock_prepared();
        cache.retain(|_, entry| fresh(entry));
        cache.insert(
            row.id.clone(),
            PreparedEntry {
                row: row.clone(),
                prepared: prepared.clone(),
                at: now,
            },
        );
        Ok(prepared)
    }

    /// The provider's request limit in force (the operator's, where it is configurable).
    pub(crate) fn limit_of(&self, provider: &Provider) -> Option<Limit> {
        let r = provider.rate_limit.as_ref()?;
        Some(Limit {
            requests: self
                .rate_limit_override(&provider.id)
                .unwrap_or(r.requests?),
            per: r.per?,
        })
    }

    /// A send time for one request to a provider account: a slot in its rate limit within
    /// `budget` (`Ok(wait)`: send after waiting that long), then the request counted in its
    /// weekly quota, if it has one. A request refused by the budget uses no quota.
    pub(crate) async fn reserve_send(
        &self,
        provider: &Provider,
        account: &str,
        budget: Duration,
    ) -> std::result::Result<Duration, Refusal> {
        let wait = match self.limit_of(provider) {
            Some(limit) => self
                .proxy_state
                .throttle
                .reserve(account, limit, budget)
                .await
                .map_err(Refusal::Busy)?,
            None => Duration::ZERO,
        };
        if let Some(quota) = provider.rate_limit.as_ref().and_then(|r| r.weekly) {
            crate::throttle::count_in_weekly_quota(self.repo.as_ref(), account, quota)
                .await
                .map_err(|renews_in| Refusal::QuotaUsedUp { quota, renews_in })?;
        }
        Ok(wait)
    }

    /// Wait for a send slot of the provider account (verification uses this too, so that it
    /// never pushes a busy account over its limit, and counts in its weekly quota);
    /// `Err(retry_after)` past the budget or when the week's quota is used up.
    pub(crate) async fn wait_for_slot(
        &self,
        provider: &Provider,
        account: String,
        budget: Duration,
    ) -> std::result::Result<Duration, Duration> {
        let wait = self
            .reserve_send(provider, &account, budget)
            .await
            .map_err(|refusal| match refusal {
                Refusal::Busy(after)
                | Refusal::QuotaUsedUp {
                    renews_in: after, ..
                } => after,
            })?;
        pause(wait).await;
        Ok(wait)
    }

    /// Record use at `now`, writing `last_used_at` at most once a minute per credential.
    async fn touch(&self, workspace_id: &str, id: &str, now: Instant) {
        {
            let mut seen = self
                .proxy_state
                .last_used
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if seen
                .get(id)
                .is_some_and(|t| now.duration_since(*t) < TOUCH_EVERY)
            {
                return;
            }
            seen.insert(id.to_owned(), now);
        }
        if let Err(e) = self
            .repo
            .touch_credential(workspace_id, id, Timestamp::now().millis())
            .await
        {
            tracing::warn!(error = %e, "could not record a credential's last use");
        }
    }

    /// The provider refused the credential on real traffic: mark it `invalid` with the reason.
    async fn rejected_by_traffic(
        &self,
        actor: &Actor,
        ws: &latchkey_store::WorkspaceRow,
        id: &str,
        provider: &Provider,
        status: u16,
    ) {
        let Ok(Some(row)) = self.repo.get_credential(&ws.id, id).await else {
            return;
        };
        if row.status == "invalid" {
            return;
        }
        let secrets = match self.open(&row) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not open a credential to mark it invalid");
                return;
            }
        };
        let hint = provider
            .verify
            .hint(status)
            .unwrap_or("The provider did not accept the credential.");
        let mut updated = row.clone();
        updated.status = "invalid".to_owned();
        updated.status_reason = Some(format!(
            "{} rejected the credential on a proxied request (HTTP {status}) at {}. {hint}",
            provider.name,
            Timestamp::now()
        ));
        let result = self
            .save(
                ws,
                updated,
                &secrets,
                actor,
                "marked invalid by the provider's answer",
            )
            .await;
        let target = crate::audit::Target {
            kind: "credential",
            id: Some(row.id.clone()),
            name: Some(row.name.clone()),
        };
        self.record(
            actor,
            Some(&ws.id),
            "credential.rejected_by_provider",
            Some(target),
            result.as_ref().err(),
        )
        .await;
    }
}

/// Whose budget a request draws on: the provider and its account (e.g. the Aircall API ID).
pub(crate) fn account_of(
    provider: &Provider,
    values: &dyn latchkey_catalog::FieldValues,
) -> String {
    format!(
        "{}/{}",
        provider.id,
        provider.account_key(values).unwrap_or_default()
    )
}

/// Wait that long; no wait at all (not even a timer) for zero, the usual case.
async fn pause(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn rate_limited(provider: &Provider, retry_after: Duration) -> CoreError {
    CoreError::RateLimited {
        provider: provider.name.clone(),
        retry_after: ceil_secs(retry_after),
    }
}

fn refused(provider: &Provider, refusal: Refusal) -> CoreError {
    match refusal {
        Refusal::Busy(after) => rate_limited(provider, after),
        Refusal::QuotaUsedUp { quota, renews_in } => CoreError::QuotaExhausted {
            provider: provider.name.clone(),
            quota,
            retry_after: ceil_secs(renews_in).max(1),
        },
    }
}

/// How long the provider asked us to wait: `Retry-After` (seconds), or its reset header (UNIX time).
fn provider_wait(provider: &Provider, headers: &HeaderMap) -> Option<Duration> {
    if let Some(seconds) = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    let reset_header = provider.rate_limit.as_ref()?.reset_header.as_deref()?;
    let reset: u64 = headers
        .get(reset_header)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// Exponential backoff with jitter: about 100 ms, 200 ms, 400 ms, … plus up to half again.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100 * 2u64.pow(attempt.min(6)));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn only_safe_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer caller"),
            ("cookie", "session=1"),
            ("host", "latchkey.local"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("x-latchkey-max-wait", "5"),
            ("accept", "application/json"),
            ("x-request-source", "etl"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        let forwardable = ForwardableRequestHeaders::of(&h);
        let names: Vec<&str> = h
            .keys()
            .filter(|name| forwardable.allows(name))
            .map(|k| k.as_str())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"accept") && names.contains(&"x-request-source"));
    }

    #[test]
    fn names_a_connection_header_lists_are_dropped_whatever_their_case() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static("Keep-Alive ,X-Hop"));
        h.append("connection", HeaderValue::from_static(" , x-other"));
        for name in ["keep-alive", "x-hop", "x-other", "x-kept", "content-type"] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        let out = forwardable_response_headers(h);
        let mut names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-kept"]);
    }

    #[test]
    fn backoff_grows() {
        assert!(
            backoff(0) >= Duration::from_millis(100) && backoff(0) < Duration::from_millis(151)
        );
        assert!(backoff(3) >= Duration::from_millis(800));
    }
}
