//! Aircall, base `https://api.aircall.io/v1`.
//!
//! Auth is HTTP Basic, `api_id:api_token`. No `Authorization` header → 401
//! `{"message":"Unauthorized"}`; any other failure (wrong ID or token, another
//! scheme, malformed Basic) → **403** `{"message":"Forbidden"}`. Other errors use
//! the generic `{"error":…,"troubleshoot":…}` body. The rate limit is per
//! company; a 429 carries `X-AircallApi-Limit`, `-Remaining` and `-Reset`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;
use crate::util::{Authorization, authorization, ct_eq, json, parse_basic, reason, unix_now};

/// Requests per minute per company (the current reference; older material says 60).
pub(crate) const RATE_LIMIT_PER_MINUTE: u32 = 120;

const TROUBLESHOOT: &str = "See https://developer.aircall.io/api-references/";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/ping", get(ping))
}

/// `GET /v1/ping` → `{"ping":"pong"}`.
async fn ping(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    json(StatusCode::OK, &json!({"ping": "pong"}))
}

/// Check HTTP Basic `api_id:api_token`: missing → 401, anything wrong → 403.
/// `None` when the request is authenticated, else the rejection to answer.
pub(crate) fn rejection(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let value = match authorization(headers) {
        Authorization::Missing => return Some(error(StatusCode::UNAUTHORIZED)),
        Authorization::Malformed => return Some(error(StatusCode::FORBIDDEN)),
        Authorization::Value(v) => v,
    };
    let Some((id, token)) = parse_basic(value) else {
        return Some(error(StatusCode::FORBIDDEN));
    };
    let demo = app.demo();
    // `&`, not `&&`: compare both, whatever the first says.
    if ct_eq(&id, demo.aircall_api_id.as_bytes()) & ct_eq(&token, demo.aircall_api_token.as_bytes())
    {
        None
    } else {
        Some(error(StatusCode::FORBIDDEN))
    }
}

/// Aircall's error answer for `status`.
pub(crate) fn error(status: StatusCode) -> Response {
    let body = match status.as_u16() {
        401 => json!({"message": "Unauthorized"}),
        403 => json!({"message": "Forbidden"}),
        404 => json!({
            "error": "Not found",
            "troubleshoot": format!("Check the URL of the request. {TROUBLESHOOT}"),
        }),
        405 => json!({
            "error": "Method not allowed",
            "troubleshoot": format!("Check the HTTP method of the request. {TROUBLESHOOT}"),
        }),
        429 => json!({
            "error": "Too many requests",
            "troubleshoot": format!(
                "The company's limit of {RATE_LIMIT_PER_MINUTE} requests per minute is reached; wait until the time in X-AircallApi-Reset. {TROUBLESHOOT}"
            ),
        }),
        _ => json!({
            "error": reason(status),
            "troubleshoot": format!("Try again later. {TROUBLESHOOT}"),
        }),
    };
    json(status, &body)
}

/// 429 with Aircall's rate-limit headers; the window resets within a minute.
pub(crate) fn throttled() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers_mut();
    headers.insert(
        "x-aircallapi-limit",
        HeaderValue::from(RATE_LIMIT_PER_MINUTE),
    );
    headers.insert("x-aircallapi-remaining", HeaderValue::from(0u32));
    headers.insert("x-aircallapi-reset", HeaderValue::from(unix_now() + 60));
    response
}
