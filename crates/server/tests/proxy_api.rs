//! The auth-injecting proxy over a real socket, against the real sandbox providers.

mod common;

use common::{TestApp, expect, read};
use latchkey_testdb::Backend;
use reqwest::{Method, StatusCode, header};
use serde_json::json;

fn header_of<'a>(r: &'a latchkey_sandbox::RecordedRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn each_providers_auth_arrives_exactly_as_its_api_expects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let demo = app.sandbox.demo().clone();
    for (provider, path) in [
        ("chorus", "/api/v1/users/me"),
        ("aircall", "/v1/ping"),
        ("ccai-platform", "/manager/api/v1/settings/organization"),
        ("clari-copilot", "/users"),
    ] {
        app.create_demo(provider, provider).await;
        app.sandbox.clear_requests();
        let response = app
            .admin(Method::GET, &format!("/v1/proxy/{provider}{path}?x=1"))
            .header(header::COOKIE, "session=caller-cookie")
            .header("x-latchkey-max-wait", "5")
            .header("x-pipeline", "nightly")
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{provider}: {body}");
        let seen = app.sandbox.requests(provider);
        assert_eq!(seen.len(), 1, "{provider}");
        let r = &seen[0];
        assert_eq!(r.path_and_query, format!("{path}?x=1"));
        assert_eq!(
            header_of(r, "x-pipeline"),
            Some("nightly"),
            "the caller's own headers are forwarded"
        );
        assert!(
            header_of(r, "cookie").is_none(),
            "the caller's cookie never reaches the provider"
        );
        assert!(header_of(r, "x-latchkey-max-wait").is_none());
        let auth = header_of(r, "authorization");
        assert_ne!(
            auth,
            Some(format!("Bearer {}", app.admin_token).as_str()),
            "the caller's token never reaches the provider"
        );
        match provider {
            "chorus" => assert_eq!(auth, Some(demo.chorus_token.as_str())),
            "clari-copilot" => {
                assert!(auth.is_none());
                assert_eq!(header_of(r, "x-api-key"), Some(demo.clari_api_key.as_str()));
                assert_eq!(
                    header_of(r, "x-api-password"),
                    Some(demo.clari_api_password.as_str())
                );
            }
            _ => assert!(auth.is_some_and(|a| a.starts_with("Basic "))),
        }
        // No secret in the answer to the caller.
        for secret in app.secrets() {
            assert!(!body.to_string().contains(&secret));
        }
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("latchkey_proxy_requests_total{provider=\"aircall\",class=\"2xx\"} 1"),
        "{metrics}"
    );
}

async fn path_tricks_never_change_the_target_host(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("aircall", "air").await;
    for trick in [
        "/v1/proxy/air/../../v1/credentials",
        "/v1/proxy/air/v1/%2e%2e/%2e%2e/secret",
        "/v1/proxy/air//evil.example/v1/ping",
        "/v1/proxy/air/http://evil.example/v1/ping",
        "/v1/proxy/air/@evil.example/v1/ping",
        "/v1/proxy/air/v1/ping%0d%0aHost:%20evil.example",
        "/v1/proxy/air/v1/ping?x=%0d%0aHost:%20evil.example",
        "/v1/proxy/air/v1%2f..%2fping",
    ] {
        app.sandbox.clear_requests();
        let response = app.admin(Method::GET, trick).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        // Either refused, or answered by the sandbox itself: never anything else.
        assert!(
            status == StatusCode::BAD_REQUEST
                || status == StatusCode::NOT_FOUND
                || status == StatusCode::OK,
            "{trick}: {status} {body}"
        );
        for r in app.sandbox.requests("aircall") {
            assert!(
                !r.path_and_query.contains(".."),
                "{trick} reached the provider as {}",
                r.path_and_query
            );
            assert!(
                header_of(&r, "host").is_none_or(|h| h.starts_with("127.0.0.1")),
                "{trick}"
            );
        }
    }
}

async fn disabled_credentials_and_rejections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "air").await;
    let id = created["id"].as_str().unwrap().to_owned();
    expect(
        app.admin(Method::POST, &format!("/v1/credentials/{id}/disable")),
        200,
    )
    .await;
    let problem = expect(app.admin(Method::GET, "/v1/proxy/air/v1/ping"), 409).await;
    assert_eq!(problem["code"], "credential_disabled");
    expect(
        app.admin(Method::POST, &format!("/v1/credentials/{id}/enable")),
        200,
    )
    .await;

    // A credential the provider no longer accepts is marked invalid by real traffic.
    let mut body = app.demo_body("chorus", "stale");
    body["fields"]["api_token"] = json!("lk-revoked-token-000000000000");
    let stale = expect(
        app.admin(Method::POST, "/v1/credentials?verify=false")
            .json(&body),
        201,
    )
    .await;
    let response = app
        .admin(Method::GET, "/v1/proxy/stale/api/v1/users/me")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the provider's answer is passed on"
    );
    let now = expect(
        app.admin(
            Method::GET,
            &format!("/v1/credentials/{}", stale["id"].as_str().unwrap()),
        ),
        200,
    )
    .await;
    assert_eq!(now["status"], "invalid");
    assert!(
        now["status_reason"]
            .as_str()
            .unwrap()
            .contains("proxied request (HTTP 401)"),
        "{now}"
    );
    assert_eq!(
        app.sandbox
            .requests("chorus")
            .iter()
            .filter(|r| r.path_and_query.starts_with("/api/v1/users/me"))
            .count(),
        1,
        "401 is never retried"
    );
    // Fixing the secret (verified) clears it.
    let fixed = expect(
        app.admin(
            Method::PUT,
            &format!("/v1/credentials/{}/secrets", stale["id"].as_str().unwrap()),
        )
        .json(&json!({"fields": {"api_token": app.sandbox.demo().chorus_token}})),
        200,
    )
    .await;
    assert_eq!(fixed["status"], "active");
    let used = expect(
        app.admin(Method::GET, &format!("/v1/credentials/{id}")),
        200,
    )
    .await;
    assert!(
        used["last_used_at"].is_null(),
        "the disabled attempt did not count as use"
    );
}

async fn server_errors_are_retried_for_get_but_not_post_and_timeouts_answer_504(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("clari-copilot", "clari").await;
    app.sandbox.clear_requests();
    app.sandbox.set_forced_status(Some(503));
    let response = app
        .admin(Method::GET, "/v1/proxy/clari/users")
        .header("x-latchkey-max-wait", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let gets = app.sandbox.requests("clari-copilot").len();
    assert!(gets > 1, "GET was retried ({gets} requests)");
    app.sandbox.clear_requests();
    let response = app
        .admin(Method::POST, "/v1/proxy/clari/users")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.sandbox.requests("clari-copilot").len(),
        1,
        "POST is never retried"
    );

    // Upstream 429 beyond the caller's budget: Latchkey answers 429 with Retry-After.
    app.sandbox.set_forced_status(Some(429));
    let response = app
        .admin(Method::GET, "/v1/proxy/clari/users")
        .header("x-latchkey-max-wait", "0.2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let (_, problem) = read(response).await;
    assert_eq!(problem["code"], "rate_limited");
    app.sandbox.set_forced_status(None);

    // No answer within the first-byte timeout (2 s here): 504.
    app.sandbox.set_latency(std::time::Duration::from_secs(3));
    let problem = expect(app.admin(Method::GET, "/v1/proxy/clari/users"), 504).await;
    assert_eq!(problem["code"], "upstream_timeout");
    app.sandbox.set_latency(std::time::Duration::ZERO);
    let problem = expect(
        app.admin(Method::GET, "/v1/proxy/clari/users")
            .header("x-latchkey-max-wait", "soon"),
        400,
    )
    .await;
    assert_eq!(problem["field"], "X-Latchkey-Max-Wait");
}

async fn the_proxy_needs_a_latchkey_credential_and_stays_in_its_workspace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("aircall", "air").await;
    expect(app.client.get(app.url("/v1/proxy/air/v1/ping")), 401).await;
    app.lk
        .create_workspace(&latchkey_core::Actor::operator(), "other")
        .await
        .unwrap();
    let (_, token) = app
        .lk
        .add_api_credential(
            &latchkey_core::Actor::operator(),
            true,
            "other",
            "o",
            latchkey_core::Role::Member,
        )
        .await
        .unwrap();
    expect(
        app.with_token(Method::GET, "/v1/proxy/air/v1/ping", token.expose()),
        404,
    )
    .await;
}

async fn a_paged_walk_through_the_proxy_returns_every_record_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("aircall", "air").await;
    let total = app.sandbox.volumes().aircall_calls;
    let mut seen = std::collections::HashSet::new();
    let mut path = "/v1/proxy/air/v1/calls?per_page=50&order=asc".to_owned();
    loop {
        let page = expect(app.admin(Method::GET, &path), 200).await;
        for call in page["calls"].as_array().unwrap() {
            assert!(
                seen.insert(call["id"].as_u64().unwrap()),
                "a record came twice"
            );
        }
        match page["meta"]["next_page_link"].as_str() {
            // The provider's absolute link, followed through the proxy.
            Some(next) => {
                let url = url_of(next);
                path = format!("/v1/proxy/air{}", url);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
}

fn url_of(link: &str) -> String {
    let rest = link.split_once("://").map(|(_, r)| r).unwrap_or(link);
    rest.find('/')
        .map(|i| rest[i..].to_owned())
        .unwrap_or_default()
}

async fn a_burst_waits_for_the_providers_rate_limit_instead_of_hitting_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("ccai-platform", "ccai").await;
    app.sandbox.clear_requests();
    let mut tasks = Vec::new();
    for _ in 0..35 {
        let request = app.admin(Method::GET, "/v1/proxy/ccai/manager/api/v1/agents?per=1");
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            StatusCode::OK,
            "no 429 reaches the client"
        );
    }
    let stats = app.sandbox.rate_stats("ccai-platform").unwrap();
    assert_eq!(stats.throttled, 0, "the provider never had to refuse");
    assert!(
        app.sandbox
            .max_observed_rate("ccai-platform", std::time::Duration::from_secs(1))
            <= 10
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("latchkey_proxy_throttle_wait_seconds_total{provider=\"ccai-platform\"}"),
        "{metrics}"
    );
}

latchkey_testdb::backend_tests!(
    each_providers_auth_arrives_exactly_as_its_api_expects,
    path_tricks_never_change_the_target_host,
    disabled_credentials_and_rejections,
    server_errors_are_retried_for_get_but_not_post_and_timeouts_answer_504,
    the_proxy_needs_a_latchkey_credential_and_stays_in_its_workspace,
    a_paged_walk_through_the_proxy_returns_every_record_once,
    a_burst_waits_for_the_providers_rate_limit_instead_of_hitting_it,
);
