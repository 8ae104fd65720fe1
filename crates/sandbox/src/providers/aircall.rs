//! Aircall, base `https://api.aircall.io/v1`.
//!
//! Auth is HTTP Basic, `api_id:api_token`. No `Authorization` header → 401
//! `{"message":"Unauthorized"}`; any other failure (wrong ID or token, another
//! scheme, malformed Basic) → **403** `{"message":"Forbidden"}`. Other errors use
//! the generic `{"error":…,"troubleshoot":…}` body. The rate limit is per
//! company; a 429 carries `X-AircallApi-Limit`, `-Remaining` and `-Reset`.
//!
//! Lists page with `page` (default 1) and `per_page` (default 20, max 50;
//! more → 400) and answer `{"<items>":[…],"meta":{count,total,current_page,
//! per_page,next_page_link,previous_page_link}}`. At most 10,000 records of a
//! query are reachable however it is paged: `total` still counts every match,
//! `next_page_link` is null on the page that reaches the 10,000th record, and
//! a page starting at or beyond it → 400. Split with `from`/`to` (UNIX
//! seconds on `started_at`, both inclusive).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::data::{self, Rng, iso};
use crate::limits::Throttle;
use crate::state::AppState;
use crate::util::{
    Authorization, authorization, ct_eq, json, link, number, origin, parse_basic, reason,
};

/// Records reachable per query, however paged.
pub(crate) const MAX_RECORDS: usize = 10_000;
const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 50;

const TROUBLESHOOT: &str = "See https://developer.aircall.io/api-references/";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/calls", get(calls))
        .route("/v1/calls/{id}", get(call))
        .route("/v1/users", get(users))
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
        _ => json!({
            "error": reason(status),
            "troubleshoot": format!("Try again later. {TROUBLESHOOT}"),
        }),
    };
    json(status, &body)
}

fn bad_request(troubleshoot: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({"error": "Bad request", "troubleshoot": format!("{troubleshoot} {TROUBLESHOOT}")}),
    )
}

/// 429 with Aircall's rate-limit headers: the limit, 0 remaining, and the
/// UNIX time at which a request is allowed again.
pub(crate) fn throttled(throttle: &Throttle) -> Response {
    let body = json!({
        "error": "Too many requests",
        "troubleshoot": format!(
            "The company's limit of {} requests per minute is reached; wait until the time in X-AircallApi-Reset. {TROUBLESHOOT}",
            throttle.limit
        ),
    });
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &body);
    let headers = response.headers_mut();
    headers.insert("x-aircallapi-limit", HeaderValue::from(throttle.limit));
    headers.insert("x-aircallapi-remaining", HeaderValue::from(0u32));
    headers.insert("x-aircallapi-reset", HeaderValue::from(throttle.reset_unix));
    response
}

// ------------------------------------------------------------------ data

const TAGS: &[(u64, &str)] = &[
    (31_001, "Lead"),
    (31_002, "Follow-up"),
    (31_003, "Support"),
    (31_004, "Billing"),
    (31_005, "Churn risk"),
    (31_006, "VIP"),
];

const MISSED_REASONS: &[&str] = &[
    "out_of_opening_hours",
    "short_abandoned",
    "abandoned_in_ivr",
    "abandoned_in_classic",
    "no_available_agent",
    "agents_did_not_answer",
];

const TIME_ZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Paris",
];

#[derive(Debug)]
struct User {
    id: u64,
    name: String,
    email: String,
    available: bool,
    created_at: i64,
    time_zone: &'static str,
}

#[derive(Debug)]
struct Number {
    id: u64,
    name: &'static str,
    digits: &'static str,
    country: &'static str,
    time_zone: &'static str,
    created_at: i64,
}

#[derive(Debug)]
struct Contact {
    id: u64,
    first_name: &'static str,
    last_name: &'static str,
    company: &'static str,
}

#[derive(Debug)]
struct Call {
    id: u64,
    inbound: bool,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: i64,
    missed_reason: Option<&'static str>,
    user: Option<usize>,
    number: usize,
    raw_digits: String,
    recording: bool,
    voicemail: bool,
    archived: bool,
    tags: Vec<usize>,
    contact: Option<Contact>,
}

/// The company's users, numbers and calls (calls ascending by `started_at`
/// and by id).
#[derive(Debug)]
pub(crate) struct Data {
    users: Vec<User>,
    numbers: Vec<Number>,
    calls: Vec<Call>,
}

const NUMBERS: &[(&str, &str, &str, &str)] = &[
    ("Sales US", "+1 415-555-0100", "US", "America/Los_Angeles"),
    ("Support US", "+1 646-555-0142", "US", "America/New_York"),
    ("Sales UK", "+44 20 7946 0321", "GB", "Europe/London"),
    ("Support FR", "+33 1 70 36 05 12", "FR", "Europe/Paris"),
];

impl Data {
    pub(crate) fn generate(seed: u64, calls: usize) -> Self {
        let mut rng = Rng::new(seed, 0xa1c0_0001);
        let users: Vec<User> = (0..12u64)
            .map(|i| {
                let (first, last) = data::person(&mut rng);
                User {
                    id: 1_042_100 + i * 7,
                    name: format!("{first} {last}"),
                    email: data::email(first, last, "acme.example"),
                    available: rng.percent(70),
                    created_at: data::DATA_END - data::DATA_SPAN - rng.range(86_400, 900 * 86_400),
                    time_zone: rng.pick(TIME_ZONES),
                }
            })
            .collect();
        let numbers: Vec<Number> = NUMBERS
            .iter()
            .enumerate()
            .map(|(i, &(name, digits, country, time_zone))| Number {
                id: 512_300 + i as u64 * 11,
                name,
                digits,
                country,
                time_zone,
                created_at: data::DATA_END - data::DATA_SPAN - 1_000 * 86_400 + i as i64 * 86_400,
            })
            .collect();

        let times = data::sorted_times(&mut rng, calls);
        let mut id = 1_800_000_000u64;
        let calls = times
            .into_iter()
            .map(|started_at| {
                id += rng.range(1, 9) as u64;
                let inbound = rng.percent(60);
                let answered = rng.percent(if inbound { 78 } else { 70 });
                let mut call = Call {
                    id,
                    inbound,
                    started_at,
                    answered_at: None,
                    ended_at: started_at,
                    missed_reason: None,
                    user: None,
                    number: rng.index(NUMBERS.len()),
                    raw_digits: format!(
                        "+1 {}-555-{:04}",
                        rng.range(201, 989),
                        rng.range(100, 9_999)
                    ),
                    recording: false,
                    voicemail: false,
                    archived: rng.percent(4),
                    tags: Vec::new(),
                    contact: None,
                };
                if answered {
                    let answered_at = started_at + rng.range(2, 25);
                    let talk = if rng.percent(20) {
                        rng.range(600, 3_600)
                    } else {
                        rng.range(15, 600)
                    };
                    call.answered_at = Some(answered_at);
                    call.ended_at = answered_at + talk;
                    call.user = Some(rng.index(users.len()));
                    call.recording = rng.percent(85);
                } else if inbound {
                    call.missed_reason = Some(rng.pick(MISSED_REASONS));
                    call.voicemail = rng.percent(35);
                    call.ended_at = started_at
                        + rng.range(5, 45)
                        + if call.voicemail { rng.range(10, 90) } else { 0 };
                } else {
                    call.user = Some(rng.index(users.len()));
                    call.ended_at = started_at + rng.range(10, 40);
                }
                if rng.percent(40) {
                    let first = rng.index(TAGS.len());
                    call.tags.push(first);
                    if rng.percent(30) {
                        call.tags
                            .push((first + 1 + rng.index(TAGS.len() - 1)) % TAGS.len());
                    }
                }
                if rng.percent(55) {
                    let (first_name, last_name) = data::person(&mut rng);
                    call.contact = Some(Contact {
                        id: 77_000_000 + rng.below(9_000_000),
                        first_name,
                        last_name,
                        company: rng.pick(data::COMPANIES),
                    });
                }
                call
            })
            .collect();
        Data {
            users,
            numbers,
            calls,
        }
    }

    fn user_json(&self, index: usize, origin: &str) -> Value {
        let u = &self.users[index];
        json!({
            "id": u.id,
            "direct_link": format!("{origin}/v1/users/{}", u.id),
            "name": u.name,
            "email": u.email,
            "available": u.available,
            "availability_status": if u.available { "available" } else { "do_not_disturb" },
            "created_at": iso(u.created_at),
            "time_zone": u.time_zone,
            "language": "en-US",
        })
    }

    fn number_json(&self, index: usize, origin: &str) -> Value {
        let n = &self.numbers[index];
        json!({
            "id": n.id,
            "direct_link": format!("{origin}/v1/numbers/{}", n.id),
            "name": n.name,
            "digits": n.digits,
            "country": n.country,
            "time_zone": n.time_zone,
            "open": true,
            "availability_status": "open",
            "is_ivr": false,
            "live_recording_activated": true,
            "created_at": iso(n.created_at),
        })
    }

    fn call_json(&self, c: &Call, origin: &str) -> Value {
        let media = |kind: &str| {
            format!(
                "https://aircall-media.sandbox.invalid/calls/{}/{kind}.mp3",
                c.id
            )
        };
        json!({
            "id": c.id,
            "direct_link": format!("{origin}/v1/calls/{}", c.id),
            "direction": if c.inbound { "inbound" } else { "outbound" },
            "status": "done",
            "missed_call_reason": c.missed_reason,
            "started_at": c.started_at,
            "answered_at": c.answered_at,
            "ended_at": c.ended_at,
            "duration": c.ended_at - c.started_at,
            "voicemail": c.voicemail.then(|| media("voicemail")),
            "recording": c.recording.then(|| media("recording")),
            "asset": null,
            "raw_digits": c.raw_digits,
            "user": c.user.map(|u| self.user_json(u, origin)),
            "contact": c.contact.as_ref().map(|k| json!({
                "id": k.id,
                "direct_link": format!("{origin}/v1/contacts/{}", k.id),
                "first_name": k.first_name,
                "last_name": k.last_name,
                "company_name": k.company,
                "phone_numbers": [{"label": "Work", "value": c.raw_digits}],
                "emails": [{"label": "Work", "value": data::email(k.first_name, k.last_name, &data::domain(k.company))}],
            })),
            "archived": c.archived,
            "assigned_to": null,
            "transferred_by": null,
            "transferred_to": null,
            "number": self.number_json(c.number, origin),
            "comments": [],
            "tags": c.tags.iter().map(|&t| json!({"id": TAGS[t].0, "name": TAGS[t].1})).collect::<Vec<_>>(),
            "teams": [],
        })
    }
}

// ------------------------------------------------------------------ lists

/// `page` and `per_page` of a list request, validated (`Err`: the 400's
/// troubleshooting text).
fn paging(query: &HashMap<String, String>) -> Result<(usize, usize), &'static str> {
    let page = number(query, "page", 1usize)
        .ok()
        .filter(|&p| p > 0)
        .ok_or("page must be a positive integer.")?;
    let per_page = number(query, "per_page", DEFAULT_PER_PAGE)
        .ok()
        .filter(|&p| (1..=MAX_PER_PAGE).contains(&p))
        .ok_or("per_page must be an integer from 1 to 50.")?;
    Ok((page, per_page))
}

/// One page of `total` matches (at most [`MAX_RECORDS`] reachable): the
/// index range within the matches and the `meta` object (`Err`: the 400's
/// troubleshooting text).
fn page_of(
    headers: &HeaderMap,
    uri: &Uri,
    total: usize,
    page: usize,
    per_page: usize,
) -> Result<(std::ops::Range<usize>, Value), &'static str> {
    let reachable = total.min(MAX_RECORDS);
    let start = (page - 1).saturating_mul(per_page);
    if start >= MAX_RECORDS {
        return Err(
            "At most 10,000 records can be retrieved per query, however paged: narrow the query with from and to.",
        );
    }
    let end = start.saturating_add(per_page).min(reachable);
    let start = start.min(end);
    let page_link = |p: usize| {
        link(
            headers,
            uri.path(),
            uri.query(),
            &[("page", p.to_string()), ("per_page", per_page.to_string())],
        )
    };
    let meta = json!({
        "count": end - start,
        "total": total,
        "current_page": page,
        "per_page": per_page,
        "next_page_link": (end < reachable).then(|| page_link(page + 1)),
        "previous_page_link": (page > 1).then(|| page_link(page - 1)),
    });
    Ok((start..end, meta))
}

/// `GET /v1/calls?page&per_page&from&to&order`.
async fn calls(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let (page, per_page) = match paging(&query) {
        Ok(p) => p,
        Err(troubleshoot) => return bad_request(troubleshoot),
    };
    let (Ok(from), Ok(to)) = (
        number(&query, "from", i64::MIN),
        number(&query, "to", i64::MAX),
    ) else {
        return bad_request("from and to must be UNIX timestamps (seconds).");
    };
    let descending = match query.get("order").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return bad_request("order must be asc or desc."),
    };
    let data = app.shared.aircall_data();
    let lo = data.calls.partition_point(|c| c.started_at < from);
    let hi = data.calls.partition_point(|c| c.started_at <= to).max(lo);
    let matches = &data.calls[lo..hi];
    let (range, meta) = match page_of(&headers, &uri, matches.len(), page, per_page) {
        Ok(p) => p,
        Err(troubleshoot) => return bad_request(troubleshoot),
    };
    let origin = origin(&headers);
    let calls: Vec<Value> = range
        .map(|k| {
            let c = if descending {
                &matches[matches.len() - 1 - k]
            } else {
                &matches[k]
            };
            data.call_json(c, &origin)
        })
        .collect();
    json(StatusCode::OK, &json!({"calls": calls, "meta": meta}))
}

/// `GET /v1/calls/{id}` → `{"call":{…}}`.
async fn call(State(app): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let data = app.shared.aircall_data();
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| data.calls.binary_search_by_key(&id, |c| c.id).ok());
    match found {
        Some(index) => json(
            StatusCode::OK,
            &json!({"call": data.call_json(&data.calls[index], &origin(&headers))}),
        ),
        None => error(StatusCode::NOT_FOUND),
    }
}

/// `GET /v1/users?page&per_page`.
async fn users(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let (page, per_page) = match paging(&query) {
        Ok(p) => p,
        Err(troubleshoot) => return bad_request(troubleshoot),
    };
    let data = app.shared.aircall_data();
    let (range, meta) = match page_of(&headers, &uri, data.users.len(), page, per_page) {
        Ok(p) => p,
        Err(troubleshoot) => return bad_request(troubleshoot),
    };
    let origin = origin(&headers);
    let users: Vec<Value> = range.map(|i| data.user_json(i, &origin)).collect();
    json(StatusCode::OK, &json!({"users": users, "meta": meta}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_calls_are_ordered_unique_and_deterministic() {
        let a = Data::generate(1, 2_000);
        let b = Data::generate(1, 2_000);
        let c = Data::generate(2, 2_000);
        assert_eq!(a.calls.len(), 2_000);
        assert!(
            a.calls
                .windows(2)
                .all(|w| w[0].id < w[1].id && w[0].started_at <= w[1].started_at)
        );
        let ids = |d: &Data| {
            d.calls
                .iter()
                .map(|c| (c.id, c.started_at))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&c));
        for call in &a.calls {
            assert!(call.ended_at >= call.started_at);
            if call.recording {
                assert!(call.answered_at.is_some());
            }
            if let Some(t) = call.answered_at {
                assert!(t >= call.started_at && t <= call.ended_at);
            }
            assert!(call.started_at < data::DATA_END);
        }
        assert!(Data::generate(1, 0).calls.is_empty());
    }
}
