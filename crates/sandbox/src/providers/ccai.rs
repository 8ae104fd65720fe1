//! Google CCAI Platform (formerly UJET), host
//! `https://{subdomain}.{region}.ccaiplatform.com`; the Manager API under
//! `/manager/api/v1`.
//!
//! Auth is HTTP Basic with the **subdomain** as username and the API token as
//! password. Every failure (missing, another scheme, wrong username, wrong
//! token) → 401 `{"error":"Unauthorized","message":…,"status":401}`. Lists are
//! bare JSON arrays paged by `page` / `per`, with `total`, `per-page` and
//! `link: <…>; rel="next"` headers.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::util::{Authorization, authorization, ct_eq, json, parse_basic, reason};

/// Default and maximum `per` of list endpoints.
pub(crate) const MAX_PER_PAGE: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/manager/api/v1/settings/organization", get(organization))
        .route("/manager/api/v1/agents", get(agents))
}

/// Check HTTP Basic `subdomain:api_token`; any failure → 401.
/// `None` when the request is authenticated, else the rejection to answer.
pub(crate) fn rejection(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Authorization::Value(value) = authorization(headers) else {
        return Some(unauthorized(
            "Authentication required: use HTTP Basic with the subdomain as the username and an API token as the password.",
        ));
    };
    let Some((username, token)) = parse_basic(value) else {
        return Some(unauthorized(
            "Authentication required: use HTTP Basic with the subdomain as the username and an API token as the password.",
        ));
    };
    let demo = app.demo();
    if ct_eq(&username, demo.ccai_subdomain.as_bytes())
        & ct_eq(&token, demo.ccai_api_token.as_bytes())
    {
        None
    } else {
        Some(unauthorized("Invalid API credentials."))
    }
}

fn unauthorized(message: &str) -> Response {
    error_with(StatusCode::UNAUTHORIZED, message)
}

fn error_with(status: StatusCode, message: &str) -> Response {
    json(
        status,
        &json!({"error": reason(status), "message": message, "status": status.as_u16()}),
    )
}

/// `GET /manager/api/v1/settings/organization`.
async fn organization(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let demo = app.demo();
    json(
        StatusCode::OK,
        &json!({
            "id": 1,
            "name": "Acme Contact Center",
            "subdomain": demo.ccai_subdomain,
            "region": demo.ccai_region,
            "time_zone": "America/Los_Angeles",
            "language": "en",
            "created_at": "2021-04-02T17:00:00.000Z",
            "updated_at": "2026-01-15T08:30:00.000Z"
        }),
    )
}

fn agent_list() -> Vec<Value> {
    [
        (101, "Grace", "Hopper", "grace.hopper@example.com"),
        (102, "Katherine", "Johnson", "katherine.johnson@example.com"),
        (103, "Alan", "Turing", "alan.turing@example.com"),
    ]
    .into_iter()
    .map(|(id, first, last, email)| {
        json!({
            "id": id,
            "first_name": first,
            "last_name": last,
            "name": format!("{first} {last}"),
            "email": email,
            "status": "active",
            "created_at": "2021-04-02T17:05:00.000Z",
            "updated_at": "2026-01-15T08:30:00.000Z"
        })
    })
    .collect()
}

/// Parse a positive integer query parameter, with a default when absent.
fn positive(query: &HashMap<String, String>, key: &str, default: usize) -> Option<usize> {
    match query.get(key) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|&n| n > 0),
    }
}

/// `GET /manager/api/v1/agents?page=&per=`: a bare JSON array, paging in headers.
async fn agents(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let (Some(page), Some(per)) = (
        positive(&query, "page", 1),
        positive(&query, "per", MAX_PER_PAGE),
    ) else {
        return error_with(
            StatusCode::BAD_REQUEST,
            "page and per must be positive integers.",
        );
    };
    let per = per.min(MAX_PER_PAGE);
    let all = agent_list();
    let total = all.len();
    let start = (page - 1).saturating_mul(per).min(total);
    let end = start.saturating_add(per).min(total);
    let items: Vec<Value> = all[start..end].to_vec();

    let mut response = json(StatusCode::OK, &Value::Array(items));
    let out = response.headers_mut();
    out.insert("total", HeaderValue::from(total));
    out.insert("per-page", HeaderValue::from(per));
    if end < total {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let link = format!(
            "<http://{host}/manager/api/v1/agents?page={}&per={per}>; rel=\"next\"",
            page + 1
        );
        if let Ok(link) = HeaderValue::from_str(&link) {
            out.insert(header::LINK, link);
        }
    }
    response
}

/// CCAI Platform's error answer for `status`.
pub(crate) fn error(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        401 => "Invalid API credentials.",
        403 => "The API credential is not allowed to access this resource.",
        404 => "The requested resource was not found.",
        405 => "The HTTP method is not allowed for this resource.",
        429 => "Rate limit of 10 requests per second exceeded. Try again later.",
        500..=599 => "The service is temporarily unavailable. Try again later.",
        _ => "The request could not be completed.",
    };
    error_with(status, message)
}

/// 429 with `Retry-After: 1` (the shape is not documented; the limit is per second).
pub(crate) fn throttled() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
