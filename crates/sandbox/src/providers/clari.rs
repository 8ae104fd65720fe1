//! Clari Copilot (formerly Wingman), base `https://rest-api.copilot.clari.com`.
//!
//! Auth is two headers, `X-Api-Key` and `X-Api-Password`, both required. Either
//! missing (or empty) → 401 "Credentials not provided!"; both present but
//! wrong → 401 "Invalid credentials". Errors are `{"errorMessage":…}`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;
use crate::util::{ct_eq, json};

const DOCS: &str = "see documentation: https://api-doc.copilot.clari.com";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/users", get(users))
}

fn message(status: StatusCode, text: &str) -> Response {
    json(status, &json!({"errorMessage": format!("{text}, {DOCS}")}))
}

/// Check `X-Api-Key` and `X-Api-Password`.
/// `None` when the request is authenticated, else the rejection to answer.
pub(crate) fn rejection(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let present = |name: &str| {
        headers
            .get(name)
            .map(HeaderValue::as_bytes)
            .filter(|v| !v.is_empty())
    };
    let (Some(key), Some(password)) = (present("x-api-key"), present("x-api-password")) else {
        return Some(message(
            StatusCode::UNAUTHORIZED,
            "Credentials not provided!",
        ));
    };
    let demo = app.demo();
    if ct_eq(key, demo.clari_api_key.as_bytes())
        & ct_eq(password, demo.clari_api_password.as_bytes())
    {
        None
    } else {
        Some(message(StatusCode::UNAUTHORIZED, "Invalid credentials"))
    }
}

/// `GET /users`: every user of the workspace, unpaginated.
async fn users(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    const MANAGER: &str = "64b7f0c2e4a1d30012ab3401";
    json(
        StatusCode::OK,
        &json!({
            "users": [
                {"id": MANAGER, "email": "mary.jackson@example.com", "name": "Mary Jackson",
                 "role": "MANAGER", "is_recording": true, "manager_id": null},
                {"id": "64b7f0c2e4a1d30012ab3402", "email": "dorothy.vaughan@example.com",
                 "name": "Dorothy Vaughan", "role": "REP", "is_recording": true, "manager_id": MANAGER},
                {"id": "64b7f0c2e4a1d30012ab3403", "email": "john.glenn@example.com",
                 "name": "John Glenn", "role": "REP", "is_recording": false, "manager_id": MANAGER},
                {"id": "64b7f0c2e4a1d30012ab3404", "email": "annie.easley@example.com",
                 "name": "Annie Easley", "role": "OBSERVER", "is_recording": false, "manager_id": null}
            ]
        }),
    )
}

/// Clari Copilot's error answer for `status`.
pub(crate) fn error(status: StatusCode) -> Response {
    let text = match status.as_u16() {
        401 => "Invalid credentials",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        429 => "Too many requests",
        500..=599 => "Service unavailable, try again later",
        _ => "Request failed",
    };
    message(status, text)
}

/// 429 with `Retry-After: 1` (the shape is not documented; the limit is per second).
pub(crate) fn throttled() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
