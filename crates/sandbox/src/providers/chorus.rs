//! Chorus.ai (Chorus by ZoomInfo), host `https://chorus.ai`.
//!
//! Auth is `Authorization: <token>` — the raw token, no scheme; a `Bearer`
//! prefix is rejected with 401. `/api/v1/*` answers JSON:API
//! (`application/vnd.api+json`), errors in the `{"errors":[…]}` envelope.
//! Chorus documents no rate limit: its 429 carries no rate-limit headers at all
//! (not even `Retry-After`), so a client must back off on its own.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;
use crate::util::{Authorization, authorization, ct_eq, json_response, reason};

pub(crate) const JSON_API: &str = "application/vnd.api+json";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/users/me", get(users_me))
}

/// `GET /api/v1/users/me`: the identity of the token's user.
async fn users_me(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let demo = app.demo();
    let Authorization::Value(token) = authorization(&headers) else {
        return error(StatusCode::UNAUTHORIZED);
    };
    if ct_eq(token, demo.chorus_token.as_bytes()) {
        let body = json!({
            "data": {
                "type": "user",
                "id": "1200345",
                "attributes": {
                    "email": "ada.lovelace@example.com",
                    "name": "Ada Lovelace",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "role": "admin",
                    "title": "Head of Revenue Operations",
                    "status": "active",
                    "timezone": "Europe/London",
                    "created_at": "2023-03-14T09:26:53Z"
                }
            }
        });
        json_response(StatusCode::OK, JSON_API, &body)
    } else if ct_eq(token, demo.chorus_no_api_token.as_bytes()) {
        error(StatusCode::FORBIDDEN)
    } else {
        error(StatusCode::UNAUTHORIZED)
    }
}

/// A JSON:API error envelope with one error.
fn envelope(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "errors": [{
            "status": status.as_u16().to_string(),
            "code": code,
            "title": reason(status),
            "detail": detail,
        }]
    });
    json_response(status, JSON_API, &body)
}

/// Chorus's error answer for `status`. `ZI0001` (bad token) is the code seen
/// from the ZoomInfo edge; the other codes are the sandbox's own.
pub(crate) fn error(status: StatusCode) -> Response {
    let (code, detail) = match status.as_u16() {
        401 => (
            "ZI0001",
            "The API token is missing, invalid or expired. Send it as the raw Authorization header value.",
        ),
        403 => (
            "ZI0003",
            "The user's role is not allowed API access. Ask a Chorus administrator to enable API access for the role.",
        ),
        404 => ("ZI0004", "The requested resource was not found."),
        405 => (
            "ZI0005",
            "The HTTP method is not allowed for this resource.",
        ),
        429 => (
            "ZI0029",
            "Too many requests. Slow down and try again later.",
        ),
        500..=599 => (
            "ZI0050",
            "The service is temporarily unavailable. Try again later.",
        ),
        _ => ("ZI0000", "The request could not be completed."),
    };
    envelope(status, code, detail)
}

/// 429 without any rate-limit header (providers.md: none documented).
pub(crate) fn throttled() -> Response {
    error(StatusCode::TOO_MANY_REQUESTS)
}
