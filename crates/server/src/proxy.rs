//! `/v1/proxy/{credential}/{path}`: the HTTP side of the auth-injecting proxy. It parses the raw
//! path (so that encoded tricks reach the catalog's checks as sent), picks the body mode, and
//! streams the provider's answer back; the rules are in core (`latchkey_core::proxy`).
//!
//! Proxied requests are served straight from the connection ([`serve_direct`]) rather than through
//! the router and its layers, whose cost per request was larger than all of the proxy's own work;
//! they get the same envelope. The router keeps the proxy's routes for what [`direct_route`] does
//! not take, so those answer as before.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, RequestInfo};
use crate::{AppState, REQUEST_ID};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use latchkey_core::proxy::{
    DEFAULT_MAX_WAIT, ProxyBody, ProxyRequest, ProxyTrace, forwardable_response_headers,
    is_idempotent,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The proxy's routes as the router matches them (`api::proxy_root` and `api::proxy_path`), and
/// as the request span and the metrics name them.
pub(crate) const ROOT_ROUTE: &str = "/v1/proxy/{credential}";
pub(crate) const PATH_ROUTE: &str = "/v1/proxy/{credential}/{*path}";

/// The proxy route a request is for, when it is one [`serve_direct`] serves: a method the proxy's
/// routes take, and a path the router matches to one of them. Anything else goes to the router.
pub(crate) fn direct_route(method: &Method, path: &str) -> Option<&'static str> {
    if !matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
    ) {
        return None;
    }
    let rest = path.strip_prefix("/v1/proxy/")?;
    match rest.split_once('/') {
        None if !rest.is_empty() => Some(ROOT_ROUTE),
        Some((credential, tail)) if !credential.is_empty() && !tail.is_empty() => Some(PATH_ROUTE),
        _ => None,
    }
}

/// Serve one proxied request (its `route` from [`direct_route`]) with what the router's layers
/// give every other request: the request id (the caller's, or a new one) on the request and the
/// answer, `Authorization` and `Cookie` marked sensitive, the `request` span with its events,
/// the request metrics, and `X-Content-Type-Options: nosniff`.
pub(crate) async fn serve_direct(
    state: AppState,
    route: &'static str,
    peer: SocketAddr,
    request: hyper::Request<Incoming>,
) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let request_id = match parts.headers.get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = crate::new_request_id();
            parts.headers.insert(REQUEST_ID, id.clone());
            id
        }
    };
    for name in [header::AUTHORIZATION, header::COOKIE] {
        if let header::Entry::Occupied(mut entry) = parts.headers.entry(name) {
            entry.iter_mut().for_each(|value| value.set_sensitive(true));
        }
    }
    let method = parts.method.clone();
    let span = tracing::info_span!(
        "request",
        request_id = request_id.to_str().unwrap_or("-"),
        method = %method,
        route = route,
    );
    let mut response = async {
        tracing::debug!("started processing request");
        let info = RequestInfo {
            request_id: request_id.to_str().ok().map(str::to_owned),
            client: Some(peer.ip()),
        };
        let answer = match Caller::authenticate(&state, &parts.headers, info).await {
            Ok(caller) => {
                let request = Request::from_parts(parts, Body::new(body));
                proxy(State(state.clone()), caller, request).await
            }
            Err(e) => Err(e),
        };
        answer.unwrap_or_else(IntoResponse::into_response)
    }
    .instrument(span.clone())
    .await;
    let headers = response.headers_mut();
    headers.entry(REQUEST_ID).or_insert(request_id);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = response.status();
    let took = started.elapsed();
    state.metrics.request(
        method.as_str(),
        route.into(),
        status.as_u16(),
        took.as_secs_f64(),
    );
    span.in_scope(|| {
        let latency = format_args!("{} ms", took.as_millis());
        tracing::debug!(%latency, status = status.as_u16(), "finished processing request");
        if status.is_server_error() {
            let classification = format_args!("Status code: {status}");
            tracing::error!(%classification, %latency, "response failed");
        }
    });
    response
}

/// The header a caller gives the longest wait it accepts in (a name, not a string, so that a
/// lookup does not parse it).
const MAX_WAIT: HeaderName = HeaderName::from_static("x-latchkey-max-wait");
/// The longest wait a caller may ask for.
const MAX_MAX_WAIT: Duration = Duration::from_secs(300);
/// The largest body buffered for an idempotent method (so that it can be retried); a larger one
/// streams through and that request is sent once.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// Send a request to the credential's provider with its auth injected (the routes and their
/// OpenAPI description are `api::proxy_path` and `api::proxy_root`). The answer is the
/// provider's, streamed back with its status and headers.
pub async fn proxy(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/v1/proxy/")
        .or_else(|| path.strip_prefix("/proxy/"))
        .ok_or_else(|| ApiError::not_found("route"))?;
    let (credential, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let credential = if credential.contains('%') {
        percent_encoding::percent_decode_str(credential).decode_utf8_lossy()
    } else {
        std::borrow::Cow::Borrowed(credential)
    };
    let query = parts.uri.query();
    let mut path_and_query = String::with_capacity(2 + tail.len() + query.map_or(0, |q| q.len()));
    path_and_query.push('/');
    path_and_query.push_str(tail);
    if let Some(query) = query {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let max_wait = match parts.headers.get(MAX_WAIT) {
        None => DEFAULT_MAX_WAIT,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_MAX_WAIT.as_secs_f64())))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_max_wait",
                    "X-Latchkey-Max-Wait takes seconds, e.g. 30.",
                )
                .field("X-Latchkey-Max-Wait")
            })?,
    };
    let body = if is_idempotent(parts.method.as_str()) {
        let declared = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        replayable_body(body, declared).await?
    } else {
        ProxyBody::streamed(body)
    };
    let request = ProxyRequest {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
        max_wait,
    };
    let mut trace = ProxyTrace::default();
    // Boxed: the proxy's future is large, and this one is moved by the layers above it.
    let result = Box::pin(state.lk.proxy(
        &caller.actor,
        caller.workspace(),
        &credential,
        request,
        &mut trace,
    ))
    .await;
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            state.metrics.proxy(trace, e_class(&e));
            return Err(e.into());
        }
    };
    let (parts, body) = answer.response.into_parts();
    state
        .metrics
        .proxy(trace, crate::Metrics::status_class(parts.status.as_u16()));
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    *response.headers_mut() = forwardable_response_headers(parts.headers);
    Ok(response)
}

/// An idempotent method's body: buffered when it is at most [`MAX_BUFFERED`] (so that the request
/// can be retried); a larger one streams, what was read first and then the rest, and is sent once.
async fn replayable_body(body: Body, declared: Option<u64>) -> ApiResult<ProxyBody> {
    if declared.is_some_and(|n| n > MAX_BUFFERED as u64) {
        return Ok(ProxyBody::streamed(body));
    }
    if hyper::body::Body::is_end_stream(&body) {
        // No body (a GET, most often): nothing to read.
        return Ok(ProxyBody::Buffered(axum::body::Bytes::new()));
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "The request body could not be read to its end.",
            )
        })?;
        size += chunk.len();
        read.push(chunk);
        if size > MAX_BUFFERED {
            let prefix = futures_util::stream::iter(read.into_iter().map(Ok::<_, axum::Error>));
            let frames = prefix.chain(stream).map(|chunk| chunk.map(Frame::data));
            return Ok(ProxyBody::streamed(StreamBody::new(frames)));
        }
    }
    Ok(ProxyBody::Buffered(match read.len() {
        0 => axum::body::Bytes::new(),
        1 => read.remove(0),
        _ => read.concat().into(),
    }))
}

fn e_class(e: &latchkey_core::CoreError) -> std::borrow::Cow<'static, str> {
    format!("error_{}", e.code()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_routes_are_the_routers_proxy_routes() {
        let paths: Vec<String> = crate::routes().iter().map(|r| r.router_path()).collect();
        assert!(paths.iter().any(|p| p == ROOT_ROUTE), "{paths:?}");
        assert!(paths.iter().any(|p| p == PATH_ROUTE), "{paths:?}");
    }

    #[test]
    fn direct_route_takes_only_what_the_router_would_match_to_the_proxy() {
        let get = Method::GET;
        assert_eq!(direct_route(&get, "/v1/proxy/chorus"), Some(ROOT_ROUTE));
        assert_eq!(
            direct_route(&get, "/v1/proxy/chorus/v3/engagements"),
            Some(PATH_ROUTE)
        );
        assert_eq!(
            direct_route(&Method::PATCH, "/v1/proxy/a%2Fb//x"),
            Some(PATH_ROUTE)
        );
        for path in [
            "/v1/proxy/",
            "/v1/proxy//x",
            "/v1/proxy/chorus/",
            "/v1/proxy",
            "/v1/x",
        ] {
            assert_eq!(direct_route(&get, path), None, "{path}");
        }
        for method in [Method::TRACE, Method::CONNECT] {
            assert_eq!(direct_route(&method, "/v1/proxy/chorus/x"), None);
        }
    }
}
