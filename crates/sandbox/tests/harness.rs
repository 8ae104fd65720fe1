//! The sandbox as a harness: ports, fault injection, request recording, demo
//! credentials and shutdown, over real sockets.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{client, get, send, start, url};
use latchkey_sandbox::{DemoCredentials, PROVIDER_IDS, Sandbox, SandboxConfig};

/// The verification request of each provider with the sandbox's good credentials.
fn verify(sb: &Sandbox, provider: &str) -> reqwest::RequestBuilder {
    let demo = sb.demo();
    let c = client();
    match provider {
        "chorus" => c
            .get(url(sb, provider, "/api/v1/users/me"))
            .header("Authorization", &demo.chorus_token),
        "aircall" => c
            .get(url(sb, provider, "/v1/ping"))
            .basic_auth(&demo.aircall_api_id, Some(&demo.aircall_api_token)),
        "ccai-platform" => c
            .get(url(sb, provider, "/manager/api/v1/settings/organization"))
            .basic_auth(&demo.ccai_subdomain, Some(&demo.ccai_api_token)),
        "clari-copilot" => c
            .get(url(sb, provider, "/users"))
            .header("X-Api-Key", &demo.clari_api_key)
            .header("X-Api-Password", &demo.clari_api_password),
        other => panic!("unknown provider {other}"),
    }
}

#[tokio::test]
async fn addresses_and_base_urls() {
    let sb = start().await;
    let mut ports = Vec::new();
    for id in PROVIDER_IDS {
        let addr = sb.addr(id).expect("known provider");
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert_eq!(
            sb.base_url(id),
            Some(format!("http://127.0.0.1:{}", addr.port()))
        );
        ports.push(addr.port());
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4, "each provider has its own port");
    assert_eq!(sb.addr("custom"), None);
    assert_eq!(sb.base_url("nope"), None);
    assert!(sb.requests("nope").is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn base_port_puts_providers_on_consecutive_ports() {
    // Find a free range: take an ephemeral port, release it, try it as the base.
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base > u16::MAX - 3 {
            continue;
        }
        let config = SandboxConfig {
            base_port: base,
            ..SandboxConfig::default()
        };
        let Ok(sb) = Sandbox::start(config).await else {
            continue; // someone else holds part of the range
        };
        for (i, id) in PROVIDER_IDS.iter().enumerate() {
            assert_eq!(sb.addr(id).unwrap().port(), base + i as u16);
        }
        assert_eq!(send(verify(&sb, "clari-copilot")).await.status, 200);
        sb.shutdown().await;
        return;
    }
    panic!("no free range of four ports found");
}

#[tokio::test]
async fn a_taken_port_fails_start_with_the_provider_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = SandboxConfig {
        base_port: port,
        ..SandboxConfig::default()
    };
    let err = Sandbox::start(config).await.expect_err("port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("chorus"), "{err}");
}

#[tokio::test]
async fn forced_503_answers_every_provider_in_its_own_shape_then_recovers() {
    let sb = start().await;
    sb.set_forced_status(Some(503));
    for id in PROVIDER_IDS {
        let answer = send(verify(&sb, id)).await;
        assert_eq!(answer.status, 503, "{id}");
        let body = &answer.body;
        match id {
            "chorus" => {
                assert_eq!(
                    answer.header("content-type"),
                    Some("application/vnd.api+json")
                );
                assert_eq!(body["errors"][0]["status"], "503");
            }
            "aircall" => {
                assert_eq!(body["error"], "Service Unavailable");
                assert!(body["troubleshoot"].is_string());
            }
            "ccai-platform" => {
                assert_eq!(body["status"], 503);
                assert!(body["error"].is_string() && body["message"].is_string());
            }
            _ => assert!(body["errorMessage"].is_string()),
        }
    }
    // Forced answers cover unknown paths too, and every request is recorded.
    assert_eq!(get(&sb, "aircall", "/v1/nope", &[]).await.status, 503);
    assert_eq!(sb.requests("aircall").len(), 2);

    sb.set_forced_status(None);
    for id in PROVIDER_IDS {
        assert_eq!(send(verify(&sb, id)).await.status, 200, "{id}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn forced_429_carries_each_providers_throttle_headers() {
    let sb = start().await;
    sb.set_forced_status(Some(429));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let aircall = send(verify(&sb, "aircall")).await;
    assert_eq!(aircall.status, 429);
    assert_eq!(aircall.header("x-aircallapi-limit"), Some("120"));
    assert_eq!(aircall.header("x-aircallapi-remaining"), Some("0"));
    let reset: u64 = aircall
        .header("x-aircallapi-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > now && reset <= now + 61, "reset {reset}, now {now}");
    assert!(aircall.body["error"].is_string());

    for id in ["ccai-platform", "clari-copilot"] {
        let answer = send(verify(&sb, id)).await;
        assert_eq!(answer.status, 429, "{id}");
        assert_eq!(answer.header("retry-after"), Some("1"), "{id}");
    }

    // Chorus documents no rate limit: a bare 429, no rate-limit headers at all.
    let chorus = send(verify(&sb, "chorus")).await;
    assert_eq!(chorus.status, 429);
    assert_eq!(chorus.body["errors"][0]["status"], "429");
    for (name, _) in &chorus.headers {
        let name = name.as_str();
        assert!(
            name != "retry-after" && !name.contains("ratelimit") && !name.contains("rate-limit"),
            "unexpected header {name}"
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let sb = start().await;
    let start_unset = Instant::now();
    assert_eq!(send(verify(&sb, "aircall")).await.status, 200);
    let baseline = start_unset.elapsed();

    let delay = Duration::from_millis(300);
    sb.set_latency(delay);
    for id in PROVIDER_IDS {
        let t = Instant::now();
        assert_eq!(send(verify(&sb, id)).await.status, 200);
        assert!(t.elapsed() >= delay, "{id}: {:?}", t.elapsed());
    }
    // Rejected and forced answers wait too.
    sb.set_forced_status(Some(503));
    let t = Instant::now();
    assert_eq!(get(&sb, "chorus", "/nope", &[]).await.status, 503);
    assert!(t.elapsed() >= delay);

    sb.set_forced_status(None);
    sb.set_latency(Duration::ZERO);
    assert!(baseline < Duration::from_secs(5));
    sb.shutdown().await;

    // The configured starting latency applies from the first request.
    let config = SandboxConfig {
        latency: Duration::from_millis(200),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    let t = Instant::now();
    assert_eq!(send(verify(&sb, "clari-copilot")).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    sb.shutdown().await;
}

#[tokio::test]
async fn requests_record_auth_exactly_as_sent() {
    let sb = start().await;
    let demo = sb.demo().clone();
    for id in PROVIDER_IDS {
        send(verify(&sb, id).header("User-Agent", "latchkey-test/1")).await;
    }
    // A rejected request with a query string is recorded too.
    get(
        &sb,
        "chorus",
        "/api/v1/users/me?fields=email",
        &[("Authorization", "Bearer x")],
    )
    .await;

    let chorus = sb.requests("chorus");
    assert_eq!(chorus.len(), 2);
    assert_eq!(chorus[0].method, "GET");
    assert_eq!(chorus[0].path_and_query, "/api/v1/users/me");
    assert_eq!(
        chorus[0].header("authorization"),
        Some(demo.chorus_token.as_str())
    );
    assert_eq!(chorus[0].header("user-agent"), Some("latchkey-test/1"));
    assert_eq!(chorus[1].path_and_query, "/api/v1/users/me?fields=email");
    assert_eq!(chorus[1].header("Authorization"), Some("Bearer x"));

    let aircall = sb.requests("aircall");
    assert_eq!(aircall.len(), 1);
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            demo.aircall_api_id, demo.aircall_api_token
        ))
    );
    assert_eq!(aircall[0].header("authorization"), Some(basic.as_str()));
    assert!(
        aircall[0]
            .headers
            .iter()
            .all(|(n, _)| n == &n.to_lowercase())
    );
    assert!(
        aircall[0].header("x-api-key").is_none(),
        "no foreign header"
    );

    let ccai = sb.requests("ccai-platform");
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", demo.ccai_subdomain, demo.ccai_api_token))
    );
    assert_eq!(ccai[0].header("authorization"), Some(basic.as_str()));

    let clari = sb.requests("clari-copilot");
    assert_eq!(
        clari[0].header("x-api-key"),
        Some(demo.clari_api_key.as_str())
    );
    assert_eq!(
        clari[0].header("x-api-password"),
        Some(demo.clari_api_password.as_str())
    );
    assert!(clari[0].header("authorization").is_none());

    sb.clear_requests();
    for id in PROVIDER_IDS {
        assert!(sb.requests(id).is_empty(), "{id}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn random_demo_credentials_are_the_ones_accepted() {
    let a = DemoCredentials::random();
    let b = DemoCredentials::random();
    assert_ne!(a.chorus_token, b.chorus_token);
    assert_ne!(a.aircall_api_token, b.aircall_api_token);
    assert_ne!(a.ccai_api_token, b.ccai_api_token);
    assert_ne!(a.clari_api_password, b.clari_api_password);
    let d = DemoCredentials::default();
    assert_ne!(a.chorus_token, d.chorus_token);
    assert!(a.chorus_token.starts_with("lk-sandbox-chorus-"));
    assert_eq!(a.chorus_token.len(), d.chorus_token.len());
    assert_eq!(a.ccai_region, "uc1");
    assert!(
        a.ccai_subdomain
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );

    let config = SandboxConfig {
        demo: a.clone(),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    assert_eq!(sb.demo().chorus_token, a.chorus_token);
    for id in PROVIDER_IDS {
        assert_eq!(send(verify(&sb, id)).await.status, 200, "{id}");
    }
    // The fixed defaults no longer work against it.
    let answer = get(
        &sb,
        "chorus",
        "/api/v1/users/me",
        &[("Authorization", &d.chorus_token)],
    )
    .await;
    assert_eq!(answer.status, 401);
    sb.shutdown().await;
}

#[test]
fn fields_are_listed_in_catalog_order() {
    let d = DemoCredentials::default();
    let keys = |p: &str| -> Vec<(&'static str, bool)> {
        d.fields(p).into_iter().map(|(k, _, s)| (k, s)).collect()
    };
    assert_eq!(keys("chorus"), [("api_token", true)]);
    assert_eq!(keys("aircall"), [("api_id", false), ("api_token", true)]);
    assert_eq!(
        keys("ccai-platform"),
        [("subdomain", false), ("region", false), ("api_token", true)]
    );
    assert_eq!(
        keys("clari-copilot"),
        [("api_key", false), ("api_password", true)]
    );
    assert!(d.fields("custom").is_empty());

    let values: Vec<String> = d
        .fields("ccai-platform")
        .into_iter()
        .map(|(_, v, _)| v)
        .collect();
    assert_eq!(
        values,
        [
            d.ccai_subdomain.clone(),
            d.ccai_region.clone(),
            d.ccai_api_token.clone()
        ]
    );
    assert_eq!(d.chorus_token, "lk-sandbox-chorus-9f3a2c7e41b8d05f6a1e");
    assert_eq!(d.aircall_api_id, "lksandboxaircall01");
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let sb = start().await;
    let addrs: Vec<_> = PROVIDER_IDS.iter().map(|id| sb.addr(id).unwrap()).collect();
    assert_eq!(send(verify(&sb, "aircall")).await.status, 200);
    sb.shutdown().await;
    for addr in addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
}
