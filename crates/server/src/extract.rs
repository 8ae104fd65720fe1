//! Parsing at the boundary: who is asking (API credential auth), the JSON body (with the same
//! problem envelope for every way it can be wrong), `If-Match`, and the request's id and client.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use base64::Engine as _;
use latchkey_core::{Actor, AuthFailure, Principal};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The request's id (set by the request-id layer) and the client's address.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: Option<String>,
    pub client: Option<IpAddr>,
}

impl RequestInfo {
    pub fn from_parts(parts: &Parts) -> RequestInfo {
        RequestInfo {
            request_id: parts
                .headers
                .get(crate::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            client: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        }
    }
}

/// An authenticated caller: the principal and the actor to record in the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: std::sync::Arc<Principal>,
    pub actor: Actor,
}

impl Caller {
    pub fn workspace(&self) -> &str {
        &self.principal.workspace
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        Caller::authenticate(state, &parts.headers, RequestInfo::from_parts(parts)).await
    }
}

impl Caller {
    /// Who presents the API credential in `headers`; a failure is counted, audited and slowed
    /// down per client address.
    pub(crate) async fn authenticate(
        state: &AppState,
        headers: &HeaderMap,
        info: RequestInfo,
    ) -> Result<Caller, ApiError> {
        let outcome = match presented(headers) {
            Ok(presented) => state
                .lk
                .authenticate(presented.workspace(), presented.token())
                .await
                .map_err(|f| (f, presented.workspace().map(str::to_owned))),
            Err(failure) => Err((failure, None)),
        };
        match outcome {
            Ok(principal) => {
                let actor = principal.actor().with_request(info.request_id, info.client);
                Ok(Caller { principal, actor })
            }
            Err((AuthFailure::Unavailable, _)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The database is unavailable; try again shortly.",
            )),
            Err((failure, workspace)) => {
                tracing::info!(reason = failure.as_str(), "authentication failed");
                state.metrics.auth_failure(failure.as_str());
                // Failures that name no workspace are the instance admin's to see: the default one.
                state
                    .lk
                    .record_auth_failure(
                        Some(
                            workspace
                                .as_deref()
                                .unwrap_or(latchkey_core::DEFAULT_WORKSPACE),
                        ),
                        failure,
                        info.request_id.clone(),
                        info.client.map(|c| c.to_string()),
                    )
                    .await;
                if let Some(client) = info.client
                    && let Some(wait) = state.throttle.failed(client)
                {
                    let seconds = wait.as_secs().max(1);
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_failed_authentications",
                        format!("Too many failed authentications from this address; try again in {seconds} s."),
                    )
                    .header(header::RETRY_AFTER, HeaderValue::from(seconds)));
                }
                Err(ApiError::unauthorized())
            }
        }
    }
}

/// The workspace (for Basic) and token a request presents: a Bearer token as it stands in the
/// header (not copied), a Basic one decoded into memory zeroized when dropped. Every way of being
/// malformed is the same failure.
enum Presented<'a> {
    Bearer(&'a str),
    Basic {
        workspace: String,
        token: Zeroizing<String>,
    },
}

impl Presented<'_> {
    fn workspace(&self) -> Option<&str> {
        match self {
            Presented::Bearer(_) => None,
            Presented::Basic { workspace, .. } => Some(workspace),
        }
    }

    fn token(&self) -> &str {
        match self {
            Presented::Bearer(token) => token,
            Presented::Basic { token, .. } => token,
        }
    }
}

fn presented(headers: &HeaderMap) -> Result<Presented<'_>, AuthFailure> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthFailure::Malformed)?
        .to_str()
        .map_err(|_| AuthFailure::Malformed)?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(AuthFailure::Malformed);
        }
        return Ok(Presented::Bearer(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| AuthFailure::Malformed)?,
        );
        let decoded = std::str::from_utf8(&decoded).map_err(|_| AuthFailure::Malformed)?;
        let (workspace, token) = decoded.split_once(':').ok_or(AuthFailure::Malformed)?;
        if workspace.is_empty() || token.is_empty() {
            return Err(AuthFailure::Malformed);
        }
        return Ok(Presented::Basic {
            workspace: workspace.to_owned(),
            token: Zeroizing::new(token.to_owned()),
        });
    }
    Err(AuthFailure::Malformed)
}

/// Slows down repeated failed authentication from one address: past `limit` failures in a window,
/// failures answer 429 with `Retry-After`. A correct token is never refused.
pub struct AuthThrottle {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    pub fn new(limit: u32, window: Duration) -> AuthThrottle {
        AuthThrottle {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count a failure; `Some(wait)` when this client is over the limit.
    pub fn failed(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = seen.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        (entry.1 > self.limit).then(|| self.window.saturating_sub(now.duration_since(entry.0)))
    }
}

/// A JSON body. Malformed JSON → 400 naming the line and column; unknown or mistyped fields →
/// 400 naming them; another content type → 415; a body over the limit → 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            let detail = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text());
            let field = detail
                .split('`')
                .nth(1)
                .filter(|_| detail.contains("unknown field") || detail.contains("missing field"))
                .map(str::to_owned);
            let mut error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("The JSON body does not fit: {detail}."),
            );
            error.field = field;
            error
        }
        JsonRejection::JsonSyntaxError(e) => {
            let detail = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text());
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("The body is not valid JSON: {detail}."),
            )
        }
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::BytesRejection(e) => bytes_problem(e),
        other => ApiError::new(other.status(), "invalid_body", other.body_text()),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send the body as JSON with Content-Type: application/json.",
    )
}

fn bytes_problem(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The body is larger than {} KiB.", crate::MAX_BODY / 1024),
        )
    } else {
        ApiError::new(e.status(), "invalid_body", e.body_text())
    }
}

/// A JSON body that may be left out: no body (or only whitespace) is `T::default()`; a body that
/// is sent is held to the rules of [`JsonBody`] (content type, size, syntax, unknown fields).
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_problem)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !json {
            return Err(unsupported_media_type());
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(OptionalJsonBody(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

/// `If-Match`: the revision the client last read (`"3"`), or none (`*` or absent).
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<IfMatch, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let revision = text
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<i64>()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "stale_revision",
                    "If-Match does not name a current revision; read the object again and send its ETag.",
                )
            })?;
        Ok(IfMatch(Some(revision)))
    }
}

/// The ETag of a revision.
pub fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        h
    }

    #[test]
    fn authorization_parsing() {
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let parts = |value: &[u8]| {
            let h = headers(value);
            let p = presented(&h).unwrap();
            (p.workspace().map(str::to_owned), p.token().to_owned())
        };
        assert_eq!(
            parts(basic("default:tok:with:colons").as_bytes()),
            (Some("default".to_owned()), "tok:with:colons".to_owned())
        );
        assert_eq!(parts(b"bearer abc"), (None, "abc".to_owned()));
        assert_eq!(parts(b"BEARER abc"), (None, "abc".to_owned()));
        for bad in [
            b"Basic".as_slice(),
            b"Bearer ",
            b"Basic !!!",
            b"Token abc",
            b"abc",
            basic("nocolon").as_bytes(),
            basic(":tok").as_bytes(),
            basic("ws:").as_bytes(),
            b"Basic \xff\xfe",
        ] {
            assert!(presented(&headers(bad)).is_err(), "{bad:?}");
        }
        assert!(presented(&HeaderMap::new()).is_err());
    }

    proptest::proptest! {
        /// SECURITY-TESTS 22: any bytes in Authorization are an answer, never a panic.
        #[test]
        fn authorization_parser_takes_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, value);
                let _ = presented(&h);
            }
        }

        #[test]
        fn basic_with_any_text_never_panics(user in ".{0,40}", pass in ".{0,80}") {
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
            if let Ok(value) = HeaderValue::from_str(&value) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, value);
                let _ = presented(&h);
            }
        }
    }

    #[test]
    fn throttle_counts_failures_per_address() {
        let t = AuthThrottle::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(t.failed(a).is_none());
        assert!(t.failed(a).is_none());
        assert!(t.failed(a).is_none());
        assert!(t.failed(a).is_some());
        assert!(t.failed(b).is_none());
    }
}
