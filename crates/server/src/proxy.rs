//! `/v1/proxy/{credential}/{path}`: the HTTP side of the auth-injecting proxy. It parses the raw
//! path (so that encoded tricks reach the catalog's checks as sent), picks the body mode, and
//! streams the provider's answer back; the rules are in core (`latchkey_core::proxy`).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use latchkey_core::proxy::{
    DEFAULT_MAX_WAIT, ProxyBody, ProxyRequest, ProxyTrace, forwardable_request_headers,
    forwardable_response_headers, is_idempotent,
};
use std::time::Duration;

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
    let credential = percent_encoding::percent_decode_str(credential)
        .decode_utf8_lossy()
        .into_owned();
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("/{tail}?{query}"),
        None => format!("/{tail}"),
    };
    let max_wait = match parts.headers.get("x-latchkey-max-wait") {
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
    let method = parts.method.as_str().to_owned();
    let body = if is_idempotent(&method) {
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
        method,
        path_and_query,
        headers: forwardable_request_headers(parts.headers),
        body,
        max_wait,
    };
    let mut trace = ProxyTrace::default();
    let result = state
        .lk
        .proxy(
            &caller.actor,
            caller.workspace(),
            &credential,
            request,
            &mut trace,
        )
        .await;
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            state.metrics.proxy(&trace, &e_class(&e));
            return Err(e.into());
        }
    };
    let (parts, body) = answer.response.into_parts();
    state
        .metrics
        .proxy(&trace, &format!("{}xx", parts.status.as_u16() / 100));
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

fn e_class(e: &latchkey_core::CoreError) -> String {
    format!("error_{}", e.code())
}
