//! The data endpoints over real sockets: full paged walks that follow each
//! provider's paging signals, the paging rules and limits, filters, and the
//! determinism of the generated data.

mod common;

use std::collections::HashSet;

use common::{client, fetch, start_with, unlimited};
use latchkey_sandbox::{Scenario, Volumes};
use serde_json::Value;

fn volumes(f: impl FnOnce(&mut Volumes)) -> Volumes {
    let mut v = Volumes {
        chorus_engagements: 0,
        aircall_calls: 0,
        ccai_calls: 0,
        ccai_agents: 0,
        clari_calls: 0,
    };
    f(&mut v);
    v
}

fn ids(items: &[Value], key: &str) -> Vec<String> {
    items.iter().map(|i| i[key].to_string()).collect()
}

fn assert_unique(ids: &[String], expected: usize) {
    assert_eq!(ids.len(), expected, "record count");
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), expected, "every record exactly once");
}

// ---------------------------------------------------------------- aircall

/// Follow `next_page_link` from `first` to the end; returns every call and
/// the `total` of the first page.
async fn aircall_walk(sb: &latchkey_sandbox::Sandbox, first: &str) -> (Vec<Value>, u64) {
    let c = client();
    let base = sb.base_url("aircall").unwrap();
    let mut calls = Vec::new();
    let mut next = Some(first.to_owned());
    let mut total = None;
    while let Some(link) = next {
        let answer = fetch(&c, sb, "aircall", &link).await;
        assert_eq!(answer.status, 200, "{link}: {}", answer.body);
        let meta = &answer.body["meta"];
        let page = answer.body["calls"].as_array().unwrap();
        assert_eq!(meta["count"].as_u64().unwrap(), page.len() as u64);
        total.get_or_insert(meta["total"].as_u64().unwrap());
        calls.extend(page.iter().cloned());
        next = meta["next_page_link"].as_str().map(str::to_owned);
        if let Some(n) = &next {
            assert!(n.starts_with(&base), "{n} points back at the sandbox");
        }
    }
    (calls, total.unwrap())
}

#[tokio::test]
async fn aircall_walk_follows_next_page_link_to_every_call_once() {
    let sb = start_with(unlimited(volumes(|v| v.aircall_calls = 1_234))).await;
    let (calls, total) = aircall_walk(&sb, "/v1/calls?per_page=50").await;
    assert_eq!(total, 1_234);
    assert_unique(&ids(&calls, "id"), 1_234);
    let started: Vec<i64> = calls
        .iter()
        .map(|c| c["started_at"].as_i64().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "asc by default");
    for call in &calls {
        for key in [
            "id",
            "direct_link",
            "direction",
            "status",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "recording",
            "voicemail",
            "user",
            "number",
            "tags",
        ] {
            assert!(call.get(key).is_some(), "{key} missing in {call}");
        }
        assert!(["inbound", "outbound"].contains(&call["direction"].as_str().unwrap()));
        assert!(call["number"]["digits"].is_string());
        assert!(call["tags"].is_array());
        let (s, e) = (call["started_at"].as_i64(), call["ended_at"].as_i64());
        assert_eq!(call["duration"].as_i64(), Some(e.unwrap() - s.unwrap()));
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn aircall_paging_rules_filters_and_single_calls() {
    let sb = start_with(unlimited(volumes(|v| v.aircall_calls = 120))).await;
    let c = client();
    let base = sb.base_url("aircall").unwrap();

    let first = fetch(&c, &sb, "aircall", "/v1/calls").await;
    let meta = &first.body["meta"];
    assert_eq!(meta["per_page"], 20, "default per_page");
    assert_eq!(meta["current_page"], 1);
    assert_eq!(meta["count"], 20);
    assert_eq!(meta["total"], 120);
    assert!(meta["previous_page_link"].is_null());
    assert_eq!(
        meta["next_page_link"],
        format!("{base}/v1/calls?page=2&per_page=20")
    );

    let second = fetch(&c, &sb, "aircall", "/v1/calls?page=2&order=desc").await;
    let meta = &second.body["meta"];
    assert_eq!(
        meta["previous_page_link"],
        format!("{base}/v1/calls?page=1&per_page=20&order=desc")
    );
    assert_eq!(
        meta["next_page_link"],
        format!("{base}/v1/calls?page=3&per_page=20&order=desc")
    );
    let all = aircall_walk(&sb, "/v1/calls?per_page=50&order=desc")
        .await
        .0;
    let started: Vec<i64> = all
        .iter()
        .map(|c| c["started_at"].as_i64().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // from / to: inclusive, on started_at.
    let (from, to) = (started[80], started[30]);
    let path = format!("/v1/calls?from={from}&to={to}&per_page=50");
    let (window, total) = aircall_walk(&sb, &path).await;
    let expected = started.iter().filter(|&&s| s >= from && s <= to).count();
    assert_eq!(total as usize, expected);
    assert_eq!(window.len(), expected);
    assert!(expected >= 51);
    let first_link = fetch(&c, &sb, "aircall", &path).await.body["meta"]["next_page_link"].clone();
    assert_eq!(
        first_link,
        format!("{base}/v1/calls?page=2&per_page=50&from={from}&to={to}")
    );

    for bad in [
        "/v1/calls?per_page=51",
        "/v1/calls?per_page=0",
        "/v1/calls?page=0",
        "/v1/calls?page=x",
        "/v1/calls?from=yesterday",
        "/v1/calls?order=newest",
    ] {
        let answer = fetch(&c, &sb, "aircall", bad).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(answer.body["error"], "Bad request", "{bad}");
        assert!(answer.body["troubleshoot"].is_string());
    }

    // Past the end (within the cap): an empty page, no next link.
    let past = fetch(&c, &sb, "aircall", "/v1/calls?page=9&per_page=20").await;
    assert_eq!(past.status, 200);
    assert_eq!(past.body["meta"]["count"], 0);
    assert!(past.body["meta"]["next_page_link"].is_null());

    let one = &all[7];
    let id = one["id"].as_u64().unwrap();
    let answer = fetch(&c, &sb, "aircall", &format!("/v1/calls/{id}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body["call"], one);
    assert_eq!(one["direct_link"], format!("{base}/v1/calls/{id}"));
    for unknown in ["/v1/calls/1", "/v1/calls/abc"] {
        let answer = fetch(&c, &sb, "aircall", unknown).await;
        assert_eq!(answer.status, 404, "{unknown}");
        assert_eq!(answer.body["error"], "Not found");
    }
    // Data endpoints keep Aircall's auth rules.
    let answer = common::send(c.get(format!("{base}/v1/calls"))).await;
    assert_eq!(answer.status, 401);
    let answer = common::send(c.get(format!("{base}/v1/calls")).basic_auth("x", Some("y"))).await;
    assert_eq!(answer.status, 403);

    let users = fetch(&c, &sb, "aircall", "/v1/users").await;
    assert_eq!(users.status, 200);
    let list = users.body["users"].as_array().unwrap();
    assert!(!list.is_empty());
    assert_eq!(users.body["meta"]["total"], list.len());
    assert!(
        list.iter()
            .all(|u| u["email"].is_string() && u["id"].is_u64())
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn aircall_caps_a_query_at_10000_and_a_time_split_walks_all_25000() {
    let sb = start_with(unlimited(volumes(|v| v.aircall_calls = 25_000))).await;
    let c = client();

    // Page 200 of 50 holds records 9,951..10,000: the last reachable.
    let last = fetch(&c, &sb, "aircall", "/v1/calls?page=200&per_page=50").await;
    assert_eq!(last.status, 200);
    assert_eq!(
        last.body["meta"]["total"], 25_000,
        "total counts every match"
    );
    assert_eq!(last.body["meta"]["count"], 50);
    assert!(last.body["meta"]["next_page_link"].is_null());
    let beyond = fetch(&c, &sb, "aircall", "/v1/calls?page=201&per_page=50").await;
    assert_eq!(beyond.status, 400);
    assert!(
        beyond.body["troubleshoot"]
            .as_str()
            .unwrap()
            .contains("10,000")
    );
    // A page straddling the cap is cut at it.
    let straddle = fetch(&c, &sb, "aircall", "/v1/calls?page=334&per_page=30").await;
    assert_eq!(straddle.body["meta"]["count"], 10);
    assert!(straddle.body["meta"]["next_page_link"].is_null());
    assert_eq!(
        fetch(&c, &sb, "aircall", "/v1/calls?page=335&per_page=30")
            .await
            .status,
        400
    );

    // Split the time range until each part matches at most 10,000, then walk it.
    let mut pending = vec![(0i64, 4_102_444_800i64)];
    let mut seen = Vec::new();
    while let Some((from, to)) = pending.pop() {
        let path = format!("/v1/calls?from={from}&to={to}&per_page=50");
        let probe = fetch(&c, &sb, "aircall", &path).await;
        let total = probe.body["meta"]["total"].as_u64().unwrap();
        if total > 10_000 {
            let mid = from + (to - from) / 2;
            pending.push((from, mid));
            pending.push((mid + 1, to));
            continue;
        }
        let (calls, _) = aircall_walk(&sb, &path).await;
        assert_eq!(calls.len() as u64, total);
        seen.extend(ids(&calls, "id"));
    }
    assert_unique(&seen, 25_000);
    sb.shutdown().await;
}

// ---------------------------------------------------------------- chorus

/// Walk `/v3/engagements` from `query` until an empty page; every page's size.
async fn chorus_walk(sb: &latchkey_sandbox::Sandbox, query: &str) -> (Vec<Value>, Vec<usize>) {
    let c = client();
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut key: Option<String> = None;
    loop {
        let path = match &key {
            None => format!("/v3/engagements?{query}"),
            Some(k) => format!("/v3/engagements?{query}&continuation_key={k}"),
        };
        let answer = fetch(&c, sb, "chorus", &path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let page = answer.body["engagements"].as_array().unwrap();
        if page.is_empty() {
            assert!(answer.body["continuation_key"].is_null());
            return (all, sizes);
        }
        sizes.push(page.len());
        all.extend(page.iter().cloned());
        key = Some(
            answer.body["continuation_key"]
                .as_str()
                .expect("a non-empty page carries a key")
                .to_owned(),
        );
    }
}

#[tokio::test]
async fn chorus_walk_follows_continuation_keys_until_an_empty_page() {
    let sb = start_with(unlimited(volumes(|v| v.chorus_engagements = 1_050))).await;
    let (all, sizes) = chorus_walk(&sb, "").await;
    assert_unique(&ids(&all, "engagement_id"), 1_050);
    assert!(sizes.iter().all(|&s| (1..=100).contains(&s)));
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&s| s >= 93),
        "about 100 per page: {sizes:?}"
    );
    let times: Vec<i64> = all
        .iter()
        .map(|e| e["date_time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for e in &all {
        let id = e["engagement_id"].as_str().unwrap();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        for key in [
            "subject",
            "duration",
            "engagement_type",
            "user_id",
            "user_email",
            "user_name",
            "participants",
            "url",
            "processing_state",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(!e["participants"].as_array().unwrap().is_empty());
    }

    // min_date / max_date (inclusive) bound the walk.
    let (lo, hi) = (times[700], times[200]);
    let iso = |t: i64| {
        // The sandbox takes any ISO-8601 form; use whole days via the API's own answer.
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (y, m, d) = civil(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    };
    let (bounded, _) =
        chorus_walk(&sb, &format!("min_date={}&max_date={}", iso(lo), iso(hi))).await;
    let expected = times.iter().filter(|&&t| t >= lo && t <= hi).count();
    assert_eq!(bounded.len(), expected);
    sb.shutdown().await;
}

/// Days since 1970-01-01 → (y, m, d).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test]
async fn chorus_rejects_unknown_keys_and_bad_dates_in_the_jsonapi_envelope() {
    let sb = start_with(unlimited(volumes(|v| v.chorus_engagements = 150))).await;
    let c = client();
    let first = fetch(&c, &sb, "chorus", "/v3/engagements?min_date=2025-01-01").await;
    let key = first.body["continuation_key"].as_str().unwrap().to_owned();
    let mut forged = key.clone();
    forged.replace_range(0..1, if key.starts_with('0') { "1" } else { "0" });
    for bad in [
        "/v3/engagements?continuation_key=nope".to_owned(),
        format!("/v3/engagements?continuation_key={forged}"),
        format!("/v3/engagements?min_date=2025-06-01&continuation_key={key}"),
        "/v3/engagements?min_date=last-week".to_owned(),
        "/v3/engagements?max_date=2025-02-30".to_owned(),
    ] {
        let answer = fetch(&c, &sb, "chorus", &bad).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/vnd.api+json")
        );
        assert_eq!(answer.body["errors"][0]["status"], "400");
        assert!(answer.body["errors"][0]["detail"].is_string());
    }
    // The key alone (or with the same dates) continues the walk.
    for path in [
        format!("/v3/engagements?continuation_key={key}"),
        format!("/v3/engagements?min_date=2025-01-01&continuation_key={key}"),
    ] {
        let answer = fetch(&c, &sb, "chorus", &path).await;
        assert_eq!(answer.status, 200, "{path}");
    }
    // Data endpoints keep Chorus's auth rules.
    let norole = sb.demo().chorus_no_api_token.clone();
    let answer = common::get(
        &sb,
        "chorus",
        "/v3/engagements",
        &[("Authorization", &norole)],
    )
    .await;
    assert_eq!(answer.status, 403);
    let bearer = format!("Bearer {}", sb.demo().chorus_token);
    let answer = common::get(
        &sb,
        "chorus",
        "/v3/engagements",
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(answer.status, 401);
    sb.shutdown().await;
}

// ---------------------------------------------------------------- ccai-platform

/// The URL in a `link: <…>; rel="next"` header.
fn next_link(answer: &common::Answer) -> Option<String> {
    let link = answer.header("link")?;
    let (url, rel) = link.split_once(">; ")?;
    assert_eq!(rel, "rel=\"next\"");
    Some(url.trim_start_matches('<').to_owned())
}

async fn ccai_walk(sb: &latchkey_sandbox::Sandbox, first: &str) -> (Vec<Value>, usize) {
    let c = client();
    let base = sb.base_url("ccai-platform").unwrap();
    let mut all = Vec::new();
    let mut next = Some(first.to_owned());
    let mut total = None;
    while let Some(link) = next {
        let answer = fetch(&c, sb, "ccai-platform", &link).await;
        assert_eq!(answer.status, 200, "{link}: {}", answer.body);
        let page = answer.body.as_array().expect("a bare JSON array");
        total.get_or_insert(answer.header("total").unwrap().parse::<usize>().unwrap());
        assert!(answer.header("per-page").is_some());
        all.extend(page.iter().cloned());
        next = next_link(&answer);
        if let Some(n) = &next {
            assert!(n.starts_with(&base), "{n}");
        }
    }
    (all, total.unwrap())
}

#[tokio::test]
async fn ccai_walks_follow_the_link_header_and_updated_at_sync() {
    let sb = start_with(unlimited(volumes(|v| {
        v.ccai_calls = 1_050;
        v.ccai_agents = 250;
    })))
    .await;
    let (calls, total) = ccai_walk(&sb, "/manager/api/v1/calls").await;
    assert_eq!(total, 1_050);
    assert_unique(&ids(&calls, "id"), 1_050);
    for call in &calls {
        for key in [
            "id",
            "call_type",
            "status",
            "created_at",
            "connected_at",
            "ends_at",
            "updated_at",
            "call_duration",
            "hold_duration",
            "recording_url",
            "agent_info",
            "end_user",
        ] {
            assert!(call.get(key).is_some(), "{key} missing in {call}");
        }
        let created = call["created_at"].as_str().unwrap();
        assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    }
    let (agents, total) = ccai_walk(&sb, "/manager/api/v1/agents").await;
    assert_eq!(total, 250);
    assert_unique(&ids(&agents, "id"), 250);
    assert_eq!(agents[0]["email"], "grace.hopper@example.com");

    // Incremental: updated_at[from] with sort by updated_at ascending.
    let mut updated: Vec<&str> = calls
        .iter()
        .map(|c| c["updated_at"].as_str().unwrap())
        .collect();
    updated.sort_unstable();
    let from = updated[600];
    let path = format!(
        "/manager/api/v1/calls?per=100&updated_at%5Bfrom%5D={from}&sort_column=updated_at&sort_direction=ASC"
    );
    let (recent, total) = ccai_walk(&sb, &path).await;
    let expected = updated.iter().filter(|u| **u >= from).count();
    assert_eq!(total, expected);
    assert_unique(&ids(&recent, "id"), expected);
    let order: Vec<&str> = recent
        .iter()
        .map(|c| c["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "ascending updated_at"
    );
    assert!(order.iter().all(|u| *u >= from));

    let c = client();
    for bad in [
        "/manager/api/v1/calls?updated_at%5Bfrom%5D=soon",
        "/manager/api/v1/calls?sort_column=colour",
        "/manager/api/v1/calls?sort_direction=UP",
        "/manager/api/v1/calls?page=0",
    ] {
        let answer = fetch(&c, &sb, "ccai-platform", bad).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(answer.body["status"], 400);
    }
    let clamped = fetch(&c, &sb, "ccai-platform", "/manager/api/v1/calls?per=500").await;
    assert_eq!(clamped.header("per-page"), Some("100"));
    assert_eq!(clamped.body.as_array().unwrap().len(), 100);
    sb.shutdown().await;
}

// ---------------------------------------------------------------- clari-copilot

async fn clari_walk(sb: &latchkey_sandbox::Sandbox, query: &str) -> (Vec<Value>, u64) {
    let c = client();
    let mut all = Vec::new();
    let mut skip = 0;
    let mut matched = None;
    loop {
        let path = format!("/calls?limit=100&skip={skip}{query}");
        let answer = fetch(&c, sb, "clari-copilot", &path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let pagination = &answer.body["pagination"];
        matched.get_or_insert(pagination["matched"].as_u64().unwrap());
        all.extend(answer.body["calls"].as_array().unwrap().iter().cloned());
        if !pagination["hasMore"].as_bool().unwrap() {
            return (all, matched.unwrap());
        }
        skip = pagination["nextPageSkip"].as_u64().unwrap();
    }
}

#[tokio::test]
async fn clari_walk_follows_has_more_and_next_page_skip() {
    let sb = start_with(unlimited(volumes(|v| v.clari_calls = 1_234))).await;
    let (calls, matched) = clari_walk(&sb, "").await;
    assert_eq!(matched, 1_234);
    assert_unique(&ids(&calls, "id"), 1_234);
    let times: Vec<&str> = calls.iter().map(|c| c["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "desc by default");
    let (asc, _) = clari_walk(&sb, "&sortTime=asc").await;
    let asc_times: Vec<&str> = asc.iter().map(|c| c["time"].as_str().unwrap()).collect();
    assert!(asc_times.windows(2).all(|w| w[0] <= w[1]));

    // Strict time / modified filters.
    let (gt, lt) = (times[900], times[100]);
    let (window, matched) = clari_walk(&sb, &format!("&filterTimeGt={gt}&filterTimeLt={lt}")).await;
    let expected = times.iter().filter(|t| **t > gt && **t < lt).count();
    assert_eq!((window.len(), matched as usize), (expected, expected));
    let mut modified: Vec<&str> = calls
        .iter()
        .map(|c| c["last_modified_time"].as_str().unwrap())
        .collect();
    modified.sort_unstable();
    let since = modified[1_000];
    let (changed, _) = clari_walk(&sb, &format!("&filterModifiedGt={since}")).await;
    assert_eq!(
        changed.len(),
        modified.iter().filter(|m| **m > since).count()
    );

    let c = client();
    let default = fetch(&c, &sb, "clari-copilot", "/calls").await;
    assert_eq!(default.body["calls"].as_array().unwrap().len(), 25);
    assert_eq!(default.body["pagination"]["nextPageSkip"], 25);
    assert_eq!(default.body["pagination"]["hasMore"], true);
    for bad in [
        "/calls?limit=101",
        "/calls?limit=0",
        "/calls?skip=10001",
        "/calls?skip=-1",
        "/calls?filterTimeGt=monday",
        "/calls?filterModifiedLt=2026-13-01T00:00:00Z",
        "/calls?sortTime=newest",
    ] {
        let answer = fetch(&c, &sb, "clari-copilot", bad).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert!(answer.body["errorMessage"].is_string());
    }

    let one = &calls[3];
    let id = one["id"].as_str().unwrap();
    let details = fetch(&c, &sb, "clari-copilot", &format!("/call-details?id={id}")).await;
    assert_eq!(details.status, 200);
    let call = &details.body["call"];
    assert_eq!(call["id"], one["id"]);
    assert_eq!(call["title"], one["title"]);
    let transcript = call["transcript"].as_array().unwrap();
    assert!(!transcript.is_empty());
    for line in transcript {
        assert!(line["text"].is_string() && line["start"].is_number());
        assert!(line["end"].is_number() && line["personId"].is_number());
    }
    assert!(call["summary"].is_object());
    let unknown = fetch(
        &c,
        &sb,
        "clari-copilot",
        "/call-details?id=000000000000000000000000",
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body["errorMessage"].is_string());
    let missing = fetch(&c, &sb, "clari-copilot", "/call-details").await;
    assert_eq!(missing.status, 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn clari_skip_stops_at_10000() {
    let sb = start_with(unlimited(volumes(|v| v.clari_calls = 10_250))).await;
    let c = client();
    let edge = fetch(&c, &sb, "clari-copilot", "/calls?skip=10000&limit=100").await;
    assert_eq!(edge.status, 200);
    assert_eq!(edge.body["calls"].as_array().unwrap().len(), 100);
    assert_eq!(edge.body["pagination"]["hasMore"], true);
    assert_eq!(edge.body["pagination"]["nextPageSkip"], 10_100);
    let next = fetch(&c, &sb, "clari-copilot", "/calls?skip=10100&limit=100").await;
    assert_eq!(
        next.status, 400,
        "skip beyond 10,000: narrow with the filters"
    );
    sb.shutdown().await;
}

// ---------------------------------------------------------------- determinism

/// The first page of each data endpoint, with the sandbox's own address
/// replaced (links point at whatever port the sandbox got).
async fn snapshot(sb: &latchkey_sandbox::Sandbox) -> Vec<String> {
    let c = client();
    let mut out = Vec::new();
    for (provider, path) in [
        ("chorus", "/v3/engagements"),
        ("aircall", "/v1/calls?per_page=50&order=desc"),
        ("ccai-platform", "/manager/api/v1/calls?page=2"),
        ("ccai-platform", "/manager/api/v1/agents"),
        ("clari-copilot", "/calls?limit=100"),
    ] {
        let answer = fetch(&c, sb, provider, path).await;
        assert_eq!(answer.status, 200);
        let base = sb.base_url(provider).unwrap();
        out.push(answer.body.to_string().replace(&base, "BASE"));
    }
    let first_clari = fetch(&c, sb, "clari-copilot", "/calls?limit=1").await;
    let id = first_clari.body["calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    out.push(
        fetch(&c, sb, "clari-copilot", &format!("/call-details?id={id}"))
            .await
            .body
            .to_string(),
    );
    out
}

#[tokio::test]
async fn same_seed_same_data_across_starts() {
    let scenario = |seed| Scenario {
        seed,
        ..unlimited(volumes(|v| {
            v.chorus_engagements = 300;
            v.aircall_calls = 300;
            v.ccai_calls = 300;
            v.ccai_agents = 120;
            v.clari_calls = 300;
        }))
    };
    let a = start_with(scenario(42)).await;
    let b = start_with(scenario(42)).await;
    let other = start_with(scenario(43)).await;
    let (sa, sb_, so) = (
        snapshot(&a).await,
        snapshot(&b).await,
        snapshot(&other).await,
    );
    assert_eq!(sa, sb_);
    for (x, y) in sa.iter().zip(&so) {
        assert_ne!(x, y, "another seed, other data");
    }
    // The default scenario is deterministic too (default volumes: 500 each).
    let d1 = common::start().await;
    let d2 = common::start().await;
    assert_eq!(d1.volumes(), Volumes::default());
    assert_eq!(snapshot(&d1).await, snapshot(&d2).await);
    for sb in [a, b, other, d1, d2] {
        sb.shutdown().await;
    }
}
