//! Chorus.ai (Chorus by ZoomInfo), host `https://chorus.ai`.
//!
//! Auth is `Authorization: <token>` — the raw token, no scheme; a `Bearer`
//! prefix is rejected with 401. `/api/v1/*` answers JSON:API
//! (`application/vnd.api+json`), errors in the `{"errors":[…]}` envelope.
//! Chorus documents no rate limit: its 429 carries no rate-limit headers at all
//! (not even `Retry-After`), so a client must back off on its own.
//!
//! `GET /v3/engagements?min_date&max_date&continuation_key` answers flat JSON
//! `{"continuation_key":…,"engagements":[…]}`, newest first, 93 to 100 per
//! page ("about 100": a short page does not mean the end). Every non-empty
//! page carries a key; the walk ends with an empty `engagements` array (whose
//! `continuation_key` is null). A key not issued by this sandbox, or one
//! sent with other dates than it was issued for → 400.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::data::{self, Rng, hex, mix};
use crate::state::AppState;
use crate::util::{Authorization, authorization, ct_eq, json, json_response, reason};

pub(crate) const JSON_API: &str = "application/vnd.api+json";
/// The most engagements per page.
pub(crate) const PAGE_SIZE: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/me", get(users_me))
        .route("/v3/engagements", get(engagements))
}

/// Whether the request carries the token of a user allowed API access.
pub(crate) fn authenticated(app: &AppState, headers: &HeaderMap) -> bool {
    rejection(app, headers).is_none()
}

/// `None` for the API user's raw token; 403 for the user without the API
/// role; 401 for anything else.
fn rejection(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let demo = app.demo();
    let Authorization::Value(token) = authorization(headers) else {
        return Some(error(StatusCode::UNAUTHORIZED));
    };
    if ct_eq(token, demo.chorus_token.as_bytes()) {
        None
    } else if ct_eq(token, demo.chorus_no_api_token.as_bytes()) {
        Some(error(StatusCode::FORBIDDEN))
    } else {
        Some(error(StatusCode::UNAUTHORIZED))
    }
}

/// `GET /api/v1/users/me`: the identity of the token's user.
async fn users_me(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        rejection
    } else {
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

fn bad_request(detail: &str) -> Response {
    envelope(StatusCode::BAD_REQUEST, "ZI0002", detail)
}

// ------------------------------------------------------------------ data

#[derive(Debug)]
struct Rep {
    id: u64,
    name: String,
    email: String,
}

#[derive(Debug)]
struct Engagement {
    id: String,
    subject: String,
    date_time: i64,
    duration: i64,
    dialer: bool,
    rep: usize,
    company: &'static str,
    prospects: Vec<(&'static str, &'static str)>,
    processing: bool,
}

/// The account's reps and engagements (ascending by `date_time`).
#[derive(Debug)]
pub(crate) struct Data {
    /// Keys continuation keys so that only issued ones verify.
    key_secret: u64,
    reps: Vec<Rep>,
    engagements: Vec<Engagement>,
}

impl Data {
    pub(crate) fn generate(seed: u64, engagements: usize) -> Self {
        let mut rng = Rng::new(seed, 0xc402_0001);
        let reps: Vec<Rep> = (0..10u64)
            .map(|i| {
                let (first, last) = data::person(&mut rng);
                Rep {
                    id: 1_200_345 + i * 13,
                    name: format!("{first} {last}"),
                    email: data::email(first, last, "acme.example"),
                }
            })
            .collect();
        let id_key = rng.next_u64();
        let times = data::sorted_times(&mut rng, engagements);
        let engagements = times
            .into_iter()
            .enumerate()
            .map(|(i, date_time)| {
                let dialer = rng.percent(30);
                let company = rng.pick(data::COMPANIES);
                let prospects = (0..rng.range(1, if dialer { 1 } else { 4 }))
                    .map(|_| data::person(&mut rng))
                    .collect();
                let topic = rng.pick(data::MEETING_TOPICS);
                Engagement {
                    // 128 bits: a random half and a bijection of the index (unique).
                    id: format!(
                        "{}{}",
                        hex(rng.next_u64(), 16),
                        hex(mix(id_key ^ i as u64), 16)
                    ),
                    subject: if dialer {
                        format!("Call with {company}")
                    } else {
                        format!("{company} | {topic}")
                    },
                    date_time,
                    duration: if dialer {
                        rng.range(30, 900)
                    } else {
                        rng.range(900, 3_600)
                    },
                    dialer,
                    rep: rng.index(reps.len()),
                    company,
                    prospects,
                    processing: rng.percent(3),
                }
            })
            .collect();
        Data {
            key_secret: mix(seed ^ 0xc402_5ec7),
            reps,
            engagements,
        }
    }

    fn engagement_json(&self, e: &Engagement) -> Value {
        let rep = &self.reps[e.rep];
        let domain = data::domain(e.company);
        let mut participants = vec![json!({
            "name": rep.name,
            "email": rep.email,
            "type": "rep",
            "company_name": "Acme",
        })];
        participants.extend(e.prospects.iter().map(|(first, last)| {
            json!({
                "name": format!("{first} {last}"),
                "email": data::email(first, last, &domain),
                "type": "prospect",
                "company_name": e.company,
            })
        }));
        json!({
            "engagement_id": e.id,
            "subject": e.subject,
            "date_time": e.date_time,
            "duration": e.duration,
            "engagement_type": if e.dialer { "dialer" } else { "meeting" },
            "user_id": rep.id,
            "user_email": rep.email,
            "user_name": rep.name,
            "participants": participants,
            "account_name": e.company,
            "language": "en",
            "url": format!("https://chorus.ai/meeting/{}", e.id),
            "processing_state": if e.processing { "PROCESSING" } else { "PROCESSED" },
        })
    }

    /// The MAC of a continuation key's fields.
    fn mac(&self, offset: u64, min: i64, max: i64) -> u64 {
        mix(self.key_secret ^ mix(offset ^ mix(min as u64 ^ mix(max as u64))))
    }

    fn key(&self, offset: u64, min: i64, max: i64) -> String {
        format!(
            "{}{}{}{}",
            hex(offset, 16),
            hex(min as u64, 16),
            hex(max as u64, 16),
            hex(self.mac(offset, min, max), 16)
        )
    }

    /// (offset, min_ms, max_ms) of a key this sandbox issued.
    fn parse_key(&self, key: &str) -> Option<(u64, i64, i64)> {
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let field = |i: usize| u64::from_str_radix(&key[i * 16..(i + 1) * 16], 16).ok();
        let (offset, min, max, mac) = (field(0)?, field(1)? as i64, field(2)? as i64, field(3)?);
        (mac == self.mac(offset, min, max)).then_some((offset, min, max))
    }
}

/// The size of the page starting at `offset`: 93 to 100, fixed per offset.
fn page_size(offset: u64) -> usize {
    PAGE_SIZE - (mix(offset ^ 0x5a5a) % 8) as usize
}

/// `GET /v3/engagements?min_date&max_date&continuation_key`.
async fn engagements(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let date = |key: &str, default: i64| match query.get(key) {
        None => Ok(default),
        Some(v) => data::parse_iso_ms(v).ok_or(()),
    };
    let (Ok(min), Ok(max)) = (date("min_date", i64::MIN), date("max_date", i64::MAX)) else {
        return bad_request("min_date and max_date must be ISO-8601 dates or date-times.");
    };
    let data = app.shared.chorus_data();
    let (offset, min, max) = match query.get("continuation_key") {
        None => (0, min, max),
        Some(key) => {
            let Some((offset, key_min, key_max)) = data.parse_key(key) else {
                return bad_request("Unknown continuation_key.");
            };
            if (query.contains_key("min_date") && min != key_min)
                || (query.contains_key("max_date") && max != key_max)
            {
                return bad_request(
                    "The continuation_key was issued for other min_date / max_date values.",
                );
            }
            (offset, key_min, key_max)
        }
    };
    let all = &data.engagements;
    let lo = all.partition_point(|e| e.date_time.saturating_mul(1_000) < min);
    let hi = all
        .partition_point(|e| e.date_time.saturating_mul(1_000) <= max)
        .max(lo);
    let matches = &all[lo..hi];
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(matches.len());
    let end = start.saturating_add(page_size(offset)).min(matches.len());
    // Newest first: served position k is matches[len - 1 - k].
    let page: Vec<Value> = (start..end)
        .map(|k| data.engagement_json(&matches[matches.len() - 1 - k]))
        .collect();
    let key = (!page.is_empty()).then(|| data.key(end as u64, min, max));
    json(
        StatusCode::OK,
        &json!({"continuation_key": key, "engagements": page}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_when_issued() {
        let data = Data::generate(9, 10);
        let key = data.key(200, i64::MIN, 1_000);
        assert_eq!(data.parse_key(&key), Some((200, i64::MIN, 1_000)));
        let mut forged = key.clone();
        forged.replace_range(0..16, &hex(100, 16));
        assert_eq!(data.parse_key(&forged), None);
        assert_eq!(data.parse_key("nope"), None);
        assert_eq!(Data::generate(10, 10).parse_key(&key), None, "another seed");
        for offset in 0..1_000 {
            assert!((93..=100).contains(&page_size(offset)));
        }
    }

    #[test]
    fn engagement_ids_are_unique_32_hex() {
        let data = Data::generate(3, 5_000);
        let mut ids = std::collections::HashSet::new();
        for e in &data.engagements {
            assert_eq!(e.id.len(), 32);
            assert!(e.id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(ids.insert(e.id.as_str()));
        }
    }
}
