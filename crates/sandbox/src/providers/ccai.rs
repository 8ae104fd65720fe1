//! Google CCAI Platform (formerly UJET), host
//! `https://{subdomain}.{region}.ccaiplatform.com`; the Manager API under
//! `/manager/api/v1`.
//!
//! Auth is HTTP Basic with the **subdomain** as username and the API token as
//! password. Every failure (missing, another scheme, wrong username, wrong
//! token) → 401 `{"error":"Unauthorized","message":…,"status":401}`. Lists are
//! bare JSON arrays paged by `page` / `per`, with `total`, `per-page` and
//! `link: <…>; rel="next"` headers.
//!
//! Lists (`/manager/api/v1/calls`, `/manager/api/v1/agents`): `page`
//! (1-based, default 1) and `per` (default 100; more is clamped to 100, as
//! the sandbox always did; 0 or not a number → 400); `sort_column` (`id`,
//! `created_at`, `updated_at`; default `id`), `sort_direction` (`ASC`/`DESC`,
//! any case; default `ASC`), `updated_at[from]` / `updated_at[to]` (ISO-8601,
//! inclusive; invalid → 400). A page past the end is an empty array without
//! a `link`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::data::{self, Rng, iso};
use crate::limits::Throttle;
use crate::state::AppState;
use crate::util::{Authorization, authorization, ct_eq, json, link, parse_basic, reason};

/// Default and maximum `per` of list endpoints.
pub(crate) const MAX_PER_PAGE: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/manager/api/v1/settings/organization", get(organization))
        .route("/manager/api/v1/agents", get(agents))
        .route("/manager/api/v1/calls", get(calls))
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

/// CCAI Platform's error answer for `status`.
pub(crate) fn error(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        401 => "Invalid API credentials.",
        403 => "The API credential is not allowed to access this resource.",
        404 => "The requested resource was not found.",
        405 => "The HTTP method is not allowed for this resource.",
        429 => "Rate limit exceeded. Try again later.",
        500..=599 => "The service is temporarily unavailable. Try again later.",
        _ => "The request could not be completed.",
    };
    error_with(status, message)
}

/// 429 with `Retry-After` (whole seconds; 1 for the per-second limit). The
/// shape is not documented.
pub(crate) fn throttled(throttle: &Throttle) -> Response {
    let mut response = error_with(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Rate limit of {} requests per second exceeded. Try again later.",
            throttle.limit
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(throttle.retry_after));
    response
}

// ------------------------------------------------------------------ data

const FIXED_AGENTS: &[(u64, &str, &str, &str)] = &[
    (101, "Grace", "Hopper", "grace.hopper@example.com"),
    (102, "Katherine", "Johnson", "katherine.johnson@example.com"),
    (103, "Alan", "Turing", "alan.turing@example.com"),
];

const MENUS: &[(u64, &str)] = &[
    (11, "Sales"),
    (12, "Billing"),
    (13, "Technical support"),
    (14, "Returns"),
];

#[derive(Debug)]
struct Agent {
    id: u64,
    first_name: String,
    last_name: String,
    email: String,
    active: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug)]
struct Call {
    id: u64,
    outbound: bool,
    status: &'static str,
    created_at: i64,
    connected_at: Option<i64>,
    ends_at: i64,
    updated_at: i64,
    wait: i64,
    hold: i64,
    agent: Option<usize>,
    end_user_id: u64,
    phone: String,
    recording: bool,
    menu: usize,
    rating: Option<i64>,
}

/// The customer's agents and calls (both ascending by id).
#[derive(Debug)]
pub(crate) struct Data {
    agents: Vec<Agent>,
    calls: Vec<Call>,
}

impl Data {
    pub(crate) fn generate(seed: u64, agents: usize, calls: usize) -> Self {
        let mut rng = Rng::new(seed, 0xcca1_0001);
        let start = data::DATA_END - data::DATA_SPAN;
        let agents: Vec<Agent> = (0..agents)
            .map(|i| match FIXED_AGENTS.get(i) {
                Some(&(id, first, last, email)) => Agent {
                    id,
                    first_name: first.to_owned(),
                    last_name: last.to_owned(),
                    email: email.to_owned(),
                    active: true,
                    created_at: 1_617_383_100, // 2021-04-02T17:05:00Z
                    updated_at: 1_768_465_800, // 2026-01-15T08:30:00Z
                },
                None => {
                    let (first, last) = data::person(&mut rng);
                    let id = 101 + i as u64;
                    let created_at = start - rng.range(0, 700 * 86_400);
                    Agent {
                        id,
                        first_name: first.to_owned(),
                        last_name: last.to_owned(),
                        email: data::email(first, &format!("{last}{id}"), "example.com"),
                        active: rng.percent(92),
                        created_at,
                        updated_at: rng.range(created_at, data::DATA_END),
                    }
                }
            })
            .collect();
        let times = data::sorted_times(&mut rng, calls);
        let calls = times
            .into_iter()
            .enumerate()
            .map(|(i, created_at)| {
                let outbound = rng.percent(25);
                let wait = if outbound { 0 } else { rng.range(0, 240) };
                let roll = rng.below(100);
                let (status, connected) = match roll {
                    0..=79 => ("finished", true),
                    80..=91 => ("abandoned", false),
                    _ => ("failed", false),
                };
                let connected_at =
                    (connected && !agents.is_empty()).then(|| created_at + wait + rng.range(1, 8));
                let ends_at = match connected_at {
                    Some(t) => t + rng.range(30, 1_800),
                    None => created_at + wait + rng.range(1, 20),
                };
                // Most calls are last touched at their end; some get later
                // edits (dispositions, QA), so updated_at order ≠ id order.
                let updated_at = if rng.percent(25) {
                    ends_at + rng.range(3_600, 10 * 86_400)
                } else {
                    ends_at + rng.range(0, 120)
                };
                Call {
                    id: 1_000_001 + i as u64,
                    outbound,
                    status,
                    created_at,
                    connected_at,
                    ends_at,
                    updated_at,
                    wait,
                    hold: if connected_at.is_some() && rng.percent(30) {
                        rng.range(5, 300)
                    } else {
                        0
                    },
                    agent: connected_at.map(|_| rng.index(agents.len())),
                    end_user_id: 5_000_000 + rng.below(900_000),
                    phone: format!("+1{}555{:04}", rng.range(201, 989), rng.range(100, 9_999)),
                    recording: connected_at.is_some() && rng.percent(90),
                    menu: rng.index(MENUS.len()),
                    rating: (connected_at.is_some() && rng.percent(30)).then(|| rng.range(1, 5)),
                }
            })
            .collect();
        Data { agents, calls }
    }

    fn agent_json(a: &Agent) -> Value {
        json!({
            "id": a.id,
            "first_name": a.first_name,
            "last_name": a.last_name,
            "name": format!("{} {}", a.first_name, a.last_name),
            "email": a.email,
            "status": if a.active { "active" } else { "deactivated" },
            "created_at": iso(a.created_at),
            "updated_at": iso(a.updated_at),
        })
    }

    fn call_json(&self, c: &Call) -> Value {
        let (menu_id, menu_name) = MENUS[c.menu];
        json!({
            "id": c.id,
            "call_type": if c.outbound { "outbound" } else { "inbound" },
            "status": c.status,
            "created_at": iso(c.created_at),
            "connected_at": c.connected_at.map(iso),
            "ends_at": iso(c.ends_at),
            "updated_at": iso(c.updated_at),
            "call_duration": c.connected_at.map_or(0, |t| c.ends_at - t),
            "wait_duration": c.wait,
            "hold_duration": c.hold,
            "recording_url": c.recording.then(|| format!("https://ccai-media.sandbox.invalid/calls/{}/recording.mp3", c.id)),
            "lang": "en",
            "menu_path": {"id": menu_id, "name": menu_name},
            "agent_info": c.agent.map(|i| {
                let a = &self.agents[i];
                json!({"id": a.id, "name": format!("{} {}", a.first_name, a.last_name), "email": a.email})
            }),
            "end_user": {"id": c.end_user_id, "identifier": format!("eu-{}", c.end_user_id), "phone_number": c.phone},
            "rating": c.rating,
        })
    }
}

// ------------------------------------------------------------------ lists

/// Parse a positive integer query parameter, with a default when absent.
fn positive(query: &HashMap<String, String>, key: &str, default: usize) -> Option<usize> {
    match query.get(key) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|&n| n > 0),
    }
}

/// One page of a list: a bare JSON array with `total`, `per-page` and, when
/// there is a next page, `link: <…>; rel="next"`. `key` gives an item's
/// (id, created_at, updated_at).
fn list<T>(
    headers: &HeaderMap,
    uri: &Uri,
    query: &HashMap<String, String>,
    items: &[T],
    key: impl Fn(&T) -> (u64, i64, i64),
    render: impl Fn(&T) -> Value,
) -> Response {
    let (Some(page), Some(per)) = (
        positive(query, "page", 1),
        positive(query, "per", MAX_PER_PAGE),
    ) else {
        return error_with(
            StatusCode::BAD_REQUEST,
            "page and per must be positive integers.",
        );
    };
    let per = per.min(MAX_PER_PAGE);
    let column = match query.get("sort_column").map(String::as_str) {
        None | Some("id") => 0,
        Some("created_at") => 1,
        Some("updated_at") => 2,
        Some(_) => {
            return error_with(
                StatusCode::BAD_REQUEST,
                "sort_column must be id, created_at or updated_at.",
            );
        }
    };
    let descending = match query.get("sort_direction") {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("asc") => false,
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(_) => {
            return error_with(
                StatusCode::BAD_REQUEST,
                "sort_direction must be ASC or DESC.",
            );
        }
    };
    let bound = |name: &str, default: i64| match query.get(name) {
        None => Ok(default),
        Some(v) => data::parse_iso_ms(v).ok_or(()),
    };
    let (Ok(from), Ok(to)) = (
        bound("updated_at[from]", i64::MIN),
        bound("updated_at[to]", i64::MAX),
    ) else {
        return error_with(
            StatusCode::BAD_REQUEST,
            "updated_at[from] and updated_at[to] must be ISO-8601 date-times.",
        );
    };
    let mut matches: Vec<(i64, u64, &T)> = items
        .iter()
        .filter_map(|item| {
            let (id, created, updated) = key(item);
            let updated_ms = updated.saturating_mul(1_000);
            (from <= updated_ms && updated_ms <= to).then(|| {
                let sort = match column {
                    0 => id as i64,
                    1 => created,
                    _ => updated,
                };
                (sort, id, item)
            })
        })
        .collect();
    matches.sort_unstable_by_key(|&(sort, id, _)| (sort, id));
    if descending {
        matches.reverse();
    }
    let total = matches.len();
    let start = (page - 1).saturating_mul(per).min(total);
    let end = start.saturating_add(per).min(total);
    let body: Vec<Value> = matches[start..end]
        .iter()
        .map(|&(_, _, item)| render(item))
        .collect();

    let mut response = json(StatusCode::OK, &Value::Array(body));
    let out = response.headers_mut();
    out.insert("total", HeaderValue::from(total));
    out.insert("per-page", HeaderValue::from(per));
    if end < total {
        let next = link(
            headers,
            uri.path(),
            uri.query(),
            &[("page", (page + 1).to_string()), ("per", per.to_string())],
        );
        if let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            out.insert(header::LINK, value);
        }
    }
    response
}

/// `GET /manager/api/v1/agents`.
async fn agents(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let data = app.shared.ccai_data();
    list(
        &headers,
        &uri,
        &query,
        &data.agents,
        |a| (a.id, a.created_at, a.updated_at),
        Data::agent_json,
    )
}

/// `GET /manager/api/v1/calls`.
async fn calls(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let data = app.shared.ccai_data();
    list(
        &headers,
        &uri,
        &query,
        &data.calls,
        |c| (c.id, c.created_at, c.updated_at),
        |c| data.call_json(c),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_agents_are_the_fixed_ones_and_calls_are_consistent() {
        let data = Data::generate(5, 2, 300);
        assert_eq!(data.agents.len(), 2);
        assert_eq!(data.agents[1].email, "katherine.johnson@example.com");
        let data = Data::generate(5, 50, 300);
        assert_eq!(data.agents[0].id, 101);
        assert_eq!(data.agents[49].id, 150);
        for c in &data.calls {
            assert!(c.updated_at >= c.ends_at && c.ends_at >= c.created_at);
            assert_eq!(c.agent.is_some(), c.connected_at.is_some());
        }
        // No agents: nobody connects a call.
        let lonely = Data::generate(5, 0, 50);
        assert!(lonely.calls.iter().all(|c| c.agent.is_none()));
    }
}
