//! Rate limits per account with each provider's real 429, and the counters
//! that show what rate a client actually sent.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{authed, client, fetch, get, send, start, start_with};
use latchkey_sandbox::{RateLimits, RateStats, Scenario};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn aircall_allows_120_per_minute_then_429_with_its_headers() {
    let sb = start().await;
    let c = client();
    // Requests without working credentials are not counted against the company.
    for _ in 0..5 {
        assert_eq!(get(&sb, "aircall", "/v1/ping", &[]).await.status, 401);
    }
    for i in 0..120 {
        let answer = fetch(&c, &sb, "aircall", "/v1/ping").await;
        assert_eq!(answer.status, 200, "request {i}");
        // Conservative: the rate-limit headers are documented on 429 only.
        assert!(answer.header("x-aircallapi-limit").is_none());
    }
    let now = unix_now();
    let answer = fetch(&c, &sb, "aircall", "/v1/calls").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("x-aircallapi-limit"), Some("120"));
    assert_eq!(answer.header("x-aircallapi-remaining"), Some("0"));
    let reset: u64 = answer
        .header("x-aircallapi-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > now && reset <= now + 61, "reset {reset}, now {now}");
    assert_eq!(answer.body["error"], "Too many requests");
    assert!(
        answer.body["troubleshoot"]
            .as_str()
            .unwrap()
            .contains("120 requests per minute")
    );
    assert_eq!(
        sb.rate_stats("aircall"),
        Some(RateStats {
            counted: 121,
            throttled: 1
        })
    );
    assert_eq!(
        sb.max_observed_rate("aircall", Duration::from_secs(60)),
        121
    );
    // The log says which answer each request got.
    let log = sb.requests("aircall");
    assert_eq!(log.last().unwrap().status, Some(429));
    assert_eq!(log[0].status, Some(401));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    // The limit is the account's, not the path's; other providers are unaffected.
    assert_eq!(fetch(&c, &sb, "aircall", "/v1/users").await.status, 429);
    assert_eq!(fetch(&c, &sb, "clari-copilot", "/users").await.status, 200);

    // Turned off at run time.
    sb.set_rate_limits(RateLimits::off());
    assert_eq!(sb.rate_limits(), RateLimits::off());
    for _ in 0..30 {
        assert_eq!(fetch(&c, &sb, "aircall", "/v1/ping").await.status, 200);
    }
    sb.clear_requests();
    assert_eq!(sb.rate_stats("aircall"), Some(RateStats::default()));
    assert_eq!(sb.rate_stats("nope"), None);
    sb.shutdown().await;
}

#[tokio::test]
async fn ccai_allows_10_per_second_per_customer() {
    let sb = start().await;
    let c = client();
    for i in 0..10 {
        let answer = fetch(&c, &sb, "ccai-platform", "/manager/api/v1/agents?per=1").await;
        assert_eq!(answer.status, 200, "request {i}");
    }
    let answer = fetch(&c, &sb, "ccai-platform", "/manager/api/v1/calls").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.body["status"], 429);
    assert_eq!(answer.body["error"], "Too Many Requests");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("10 requests per second")
    );
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert_eq!(
        fetch(&c, &sb, "ccai-platform", "/manager/api/v1/calls")
            .await
            .status,
        200
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_paced_client_is_never_throttled_and_the_counters_prove_it() {
    let sb = start().await;
    let c = client();
    // 10 per second, paced at one every 125 ms: at most 8 in any second.
    let mut tick = tokio::time::interval(Duration::from_millis(125));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..20 {
        tick.tick().await;
        let answer = fetch(&c, &sb, "clari-copilot", "/calls?limit=1").await;
        assert_eq!(answer.status, 200);
    }
    let stats = sb.rate_stats("clari-copilot").unwrap();
    assert_eq!(
        stats,
        RateStats {
            counted: 20,
            throttled: 0
        }
    );
    let peak = sb.max_observed_rate("clari-copilot", Duration::from_secs(1));
    assert!((2..=10).contains(&peak), "peak {peak}");
    sb.shutdown().await;
}

#[tokio::test]
async fn clari_per_second_and_weekly_limits() {
    let scenario = Scenario {
        rate_limits: RateLimits {
            clari_per_week: Some(15),
            ..RateLimits::default()
        },
        ..Scenario::default()
    };
    let sb = start_with(scenario).await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(fetch(&c, &sb, "clari-copilot", "/users").await.status, 200);
    }
    let answer = fetch(&c, &sb, "clari-copilot", "/users").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(
        answer.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("per second")
    );

    tokio::time::sleep(Duration::from_millis(1_050)).await;
    for _ in 0..5 {
        assert_eq!(fetch(&c, &sb, "clari-copilot", "/calls").await.status, 200);
    }
    // 15 admitted this week: the weekly limit answers until Sunday 00:00 GMT.
    let answer = fetch(&c, &sb, "clari-copilot", "/calls").await;
    assert_eq!(answer.status, 429);
    let message = answer.body["errorMessage"].as_str().unwrap();
    assert!(message.contains("weekly limit of 15"), "{message}");
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    let now = unix_now();
    let day = now / 86_400;
    let next_sunday = (day - (day + 4) % 7 + 7) * 86_400;
    assert!(
        retry.abs_diff(next_sunday - now) <= 2,
        "retry {retry}, expected {}",
        next_sunday - now
    );
    assert_eq!(sb.rate_stats("clari-copilot").unwrap().throttled, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn chorus_has_no_limit_by_default_and_a_bare_429_when_given_one() {
    let sb = start().await;
    let c = client();
    for _ in 0..150 {
        assert_eq!(
            fetch(&c, &sb, "chorus", "/api/v1/users/me").await.status,
            200
        );
    }
    sb.set_rate_limits(RateLimits {
        chorus_per_minute: Some(3),
        ..RateLimits::default()
    });
    for _ in 0..3 {
        assert_eq!(
            fetch(&c, &sb, "chorus", "/v3/engagements").await.status,
            200
        );
    }
    let answer = fetch(&c, &sb, "chorus", "/v3/engagements").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.body["errors"][0]["status"], "429");
    for (name, _) in &answer.headers {
        let name = name.as_str();
        assert!(
            name != "retry-after" && !name.contains("ratelimit") && !name.contains("aircall"),
            "unexpected header {name}"
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn concurrent_bursts_admit_exactly_the_limit() {
    let sb = start().await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let request = authed(
            &c,
            &sb,
            "ccai-platform",
            "/manager/api/v1/settings/organization",
        );
        tasks.push(tokio::spawn(async move { send(request).await.status }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + throttled, 40);
    // All 40 arrive within well under a second on loopback, but the window
    // slides: allow for a burst that straddles more than one second.
    assert!((10..=20).contains(&ok), "{ok} admitted");
    let stats = sb.rate_stats("ccai-platform").unwrap();
    assert_eq!(stats.counted, 40);
    assert_eq!(stats.throttled as usize, throttled);
    sb.shutdown().await;
}
