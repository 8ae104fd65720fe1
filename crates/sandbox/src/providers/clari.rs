//! Clari Copilot (formerly Wingman), base `https://rest-api.copilot.clari.com`.
//!
//! Auth is two headers, `X-Api-Key` and `X-Api-Password`, both required. Either
//! missing (or empty) → 401 "Credentials not provided!"; both present but
//! wrong → 401 "Invalid credentials". Errors are `{"errorMessage":…}`.
//!
//! `GET /calls?skip&limit`: `limit` default 25, 1 to 100 (more → 400);
//! `skip` 0 to 10,000 (more → 400); filters `filterTimeGt/Lt` and
//! `filterModifiedGt/Lt` (ISO-8601, strict comparisons; invalid → 400);
//! `sortTime=asc|desc` (default `desc`). Body `{"calls":[…],"pagination":
//! {"matched","hasMore","nextPageSkip"}}`. `GET /call-details?id=` adds the
//! transcript and summary; unknown id → 404, no id → 400.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::data::{self, Rng, hex, iso, mix};
use crate::limits::Throttle;
use crate::state::AppState;
use crate::util::{ct_eq, json, number};

const DOCS: &str = "see documentation: https://api-doc.copilot.clari.com";
/// The largest `skip` of `GET /calls`.
pub(crate) const MAX_SKIP: usize = 10_000;
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(users))
        .route("/calls", get(calls))
        .route("/call-details", get(call_details))
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

const MANAGER: &str = "64b7f0c2e4a1d30012ab3401";
/// The users with `is_recording` (id, email, name): the calls are theirs.
const REPS: &[(&str, &str, &str)] = &[
    (MANAGER, "mary.jackson@example.com", "Mary Jackson"),
    (
        "64b7f0c2e4a1d30012ab3402",
        "dorothy.vaughan@example.com",
        "Dorothy Vaughan",
    ),
];

/// `GET /users`: every user of the workspace, unpaginated.
async fn users(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
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

/// 429 with `Retry-After` (the shape is not documented): 1 for the
/// per-second limit, the seconds until Sunday 00:00 GMT for the weekly one.
pub(crate) fn throttled(throttle: &Throttle) -> Response {
    let text = if throttle.weekly {
        format!(
            "Too many requests: the weekly limit of {} requests is reached (weeks start Sunday 00:00 GMT)",
            throttle.limit
        )
    } else {
        format!(
            "Too many requests: the limit is {} requests per second",
            throttle.limit
        )
    };
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, &text);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(throttle.retry_after));
    response
}

// ------------------------------------------------------------------ data

const CALL_TYPES: &[&str] = &["ZOOM", "GOOGLE_MEET", "MS_TEAMS", "DIALER"];
const STAGES: &[&str] = &[
    "Qualification",
    "Discovery",
    "Proposal",
    "Negotiation",
    "Closed Won",
];
const REP_LINES: &[&str] = &[
    "Thanks for making the time today.",
    "Could you walk me through how your team handles this now?",
    "What would success look like for you this quarter?",
    "Let me share my screen and show you the dashboard.",
    "We can set up single sign-on during onboarding.",
    "I will send over the proposal by Friday.",
    "Who else should be part of the decision?",
    "Pricing is per seat, billed annually.",
];
const PROSPECT_LINES: &[&str] = &[
    "Right now it is mostly spreadsheets, honestly.",
    "Security review is our biggest hurdle.",
    "We need this live before the end of the quarter.",
    "How does the integration with our CRM work?",
    "Our budget is approved for the next fiscal year.",
    "Can you share a customer reference in our industry?",
    "That makes sense, let me loop in our IT lead.",
    "What does the migration look like?",
];
const TOPICS: &[&str] = &[
    "Pricing",
    "Security",
    "Integrations",
    "Timeline",
    "Onboarding",
    "Competition",
    "Budget",
    "Next steps",
];

#[derive(Debug)]
struct Call {
    id: String,
    title: String,
    time: i64,
    modified: i64,
    duration: i64,
    kind: &'static str,
    rep: usize,
    company: &'static str,
    prospects: Vec<(&'static str, &'static str)>,
    deal: Option<(i64, &'static str)>,
    questions: i64,
    talk_ratio: i64,
}

/// The workspace's calls (ascending by `time`).
#[derive(Debug)]
pub(crate) struct Data {
    seed: u64,
    calls: Vec<Call>,
    by_id: HashMap<String, usize>,
}

impl Data {
    pub(crate) fn generate(seed: u64, calls: usize) -> Self {
        let mut rng = Rng::new(seed, 0xc1a2_0001);
        let id_key = rng.next_u64();
        let times = data::sorted_times(&mut rng, calls);
        let calls: Vec<Call> = times
            .into_iter()
            .enumerate()
            .map(|(i, time)| {
                let kind = rng.pick(CALL_TYPES);
                let company = rng.pick(data::COMPANIES);
                let duration = if kind == "DIALER" {
                    rng.range(60, 900)
                } else {
                    rng.range(900, 3_600)
                };
                let modified = if rng.percent(30) {
                    time + duration + rng.range(3_600, 14 * 86_400)
                } else {
                    time + duration + rng.range(300, 1_800)
                };
                Call {
                    // ObjectId-like: 8 hex of the time, 16 of a bijection of the index (unique).
                    id: format!("{}{}", hex(time as u64, 8), hex(mix(id_key ^ i as u64), 16)),
                    title: format!("{company} <> Acme | {}", rng.pick(data::MEETING_TOPICS)),
                    time,
                    modified,
                    duration,
                    kind,
                    rep: rng.index(REPS.len()),
                    company,
                    prospects: (0..rng.range(1, 3))
                        .map(|_| data::person(&mut rng))
                        .collect(),
                    deal: rng
                        .percent(60)
                        .then(|| (rng.range(5, 400) * 1_000, rng.pick(STAGES))),
                    questions: rng.range(2, 30),
                    talk_ratio: rng.range(25, 75),
                }
            })
            .collect();
        let by_id = calls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Data { seed, calls, by_id }
    }

    fn call_json(c: &Call) -> Value {
        let (rep_id, rep_email, _) = REPS[c.rep];
        let domain = data::domain(c.company);
        json!({
            "id": c.id,
            "title": c.title,
            "account_name": c.company,
            "deal_name": c.deal.map(|_| format!("{} - New Business", c.company)),
            "deal_value": c.deal.map(|(value, _)| value),
            "deal_stage": c.deal.map(|(_, stage)| stage),
            "time": iso(c.time),
            "last_modified_time": iso(c.modified),
            "status": "POST_PROCESSING_DONE",
            "type": c.kind,
            "users": [{"userId": rep_id, "userEmail": rep_email, "isOrganizer": true}],
            "externalParticipants": c.prospects.iter().map(|(first, last)| json!({
                "name": format!("{first} {last}"),
                "email": data::email(first, last, &domain),
            })).collect::<Vec<_>>(),
            "metrics": {
                "call_duration": c.duration,
                "talk_listen_ratio": c.talk_ratio,
                "num_questions_asked": c.questions,
            },
            "audio_url": format!("https://clari-media.sandbox.invalid/calls/{}/audio.mp3", c.id),
            "video_url": (c.kind != "DIALER").then(|| format!("https://clari-media.sandbox.invalid/calls/{}/video.mp4", c.id)),
            "call_review_page_url": format!("https://copilot.clari.com/call/{}", c.id),
        })
    }

    /// The call with its transcript and summary (generated from the seed and
    /// the call's position, so identical on every start).
    fn details_json(&self, index: usize) -> Value {
        let c = &self.calls[index];
        let mut rng = Rng::new(self.seed, 0xc1a2_1000 ^ index as u64);
        let mut transcript = Vec::new();
        let mut at = 0.0f64;
        for turn in 0..rng.range(6, 14) {
            let rep = turn % 2 == 0;
            let text = if rep {
                rng.pick(REP_LINES)
            } else {
                rng.pick(PROSPECT_LINES)
            };
            let length = rng.range(20, 120) as f64 / 10.0;
            transcript.push(json!({
                "text": text,
                "start": at,
                "end": at + length,
                "personId": if rep { 1 } else { 2 + rng.index(c.prospects.len()) },
            }));
            at += length + rng.range(0, 20) as f64 / 10.0;
        }
        let topics: Vec<&str> = (0..3).map(|_| rng.pick(TOPICS)).collect();
        let mut call = Self::call_json(c);
        call["transcript"] = Value::Array(transcript);
        call["summary"] = json!({
            "full_summary": format!(
                "{} met {} to discuss {}. Next step: follow up with a proposal.",
                REPS[c.rep].2,
                c.company,
                topics[0].to_lowercase()
            ),
            "topics_discussed": topics,
            "key_action_items": [
                format!("Send the proposal to {}", c.company),
                "Schedule the security review".to_owned(),
            ],
        });
        call
    }
}

fn bad_request(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, text)
}

/// `GET /calls?skip&limit&filterTimeGt&filterTimeLt&filterModifiedGt&filterModifiedLt&sortTime`.
async fn calls(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let Some(skip) = number(&query, "skip", 0usize)
        .ok()
        .filter(|&s| s <= MAX_SKIP)
    else {
        return bad_request("skip must be an integer from 0 to 10000");
    };
    let Some(limit) = number(&query, "limit", DEFAULT_LIMIT)
        .ok()
        .filter(|&l| (1..=MAX_LIMIT).contains(&l))
    else {
        return bad_request("limit must be an integer from 1 to 100");
    };
    let descending = match query.get("sortTime").map(String::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return bad_request("sortTime must be asc or desc"),
    };
    let mut bounds = [i64::MIN, i64::MAX, i64::MIN, i64::MAX];
    for (slot, name) in [
        "filterTimeGt",
        "filterTimeLt",
        "filterModifiedGt",
        "filterModifiedLt",
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(value) = query.get(name) {
            match data::parse_iso_ms(value) {
                Some(ms) => bounds[slot] = ms,
                None => return bad_request(&format!("{name} must be an ISO-8601 date-time")),
            }
        }
    }
    let [time_gt, time_lt, modified_gt, modified_lt] = bounds;
    let data = app.shared.clari_data();
    let mut matches: Vec<&Call> = data
        .calls
        .iter()
        .filter(|c| {
            let (time, modified) = (c.time * 1_000, c.modified * 1_000);
            time > time_gt && time < time_lt && modified > modified_gt && modified < modified_lt
        })
        .collect();
    if descending {
        matches.reverse();
    }
    let matched = matches.len();
    let start = skip.min(matched);
    let end = start.saturating_add(limit).min(matched);
    let calls: Vec<Value> = matches[start..end]
        .iter()
        .map(|c| Data::call_json(c))
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "calls": calls,
            "pagination": {"matched": matched, "hasMore": end < matched, "nextPageSkip": skip + (end - start)},
        }),
    )
}

/// `GET /call-details?id=`.
async fn call_details(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(rejection) = rejection(&app, &headers) {
        return rejection;
    }
    let Some(id) = query.get("id").filter(|id| !id.is_empty()) else {
        return bad_request("id is required");
    };
    let data = app.shared.clari_data();
    match data.by_id.get(id) {
        Some(&index) => json(StatusCode::OK, &json!({"call": data.details_json(index)})),
        None => message(StatusCode::NOT_FOUND, "Call not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_unique_and_details_deterministic() {
        let data = Data::generate(4, 3_000);
        assert_eq!(data.by_id.len(), 3_000);
        assert!(
            data.calls
                .iter()
                .all(|c| c.id.len() == 24 && c.modified > c.time)
        );
        let again = Data::generate(4, 3_000);
        assert_eq!(data.details_json(17), again.details_json(17));
        let details = data.details_json(17);
        let transcript = details["transcript"].as_array().unwrap();
        assert!(transcript.len() >= 6);
        for (a, b) in transcript.iter().zip(transcript.iter().skip(1)) {
            assert!(a["end"].as_f64().unwrap() <= b["start"].as_f64().unwrap());
        }
    }
}
