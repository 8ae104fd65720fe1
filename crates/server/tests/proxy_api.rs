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
            .header(header::CONNECTION, "keep-alive, X-Hop")
            .header("x-hop", "for the next hop only")
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
        assert!(
            header_of(r, "x-hop").is_none(),
            "a header the caller's Connection header lists stops at Latchkey"
        );
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
    let metrics = app.metrics().await;
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

async fn a_paged_walk_through_the_proxy_follows_aircall_next_page_links(backend: Backend) {
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
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("latchkey_proxy_throttle_wait_seconds_total{provider=\"ccai-platform\"}"),
        "{metrics}"
    );
}

/// The ids of `records` (field `key`, a number or a string), asserting that none comes twice.
fn unique_ids(records: &[serde_json::Value], key: &str) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let id = match &record[key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert!(seen.insert(id.clone()), "record {id} came twice");
    }
    seen
}

async fn a_paged_walk_through_the_proxy_follows_chorus_continuation_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("chorus", "chorus").await;
    let mut all = Vec::new();
    let mut key: Option<String> = None;
    loop {
        let path = match &key {
            None => "/v1/proxy/chorus/v3/engagements".to_owned(),
            Some(k) => format!("/v1/proxy/chorus/v3/engagements?continuation_key={k}"),
        };
        let page = expect(app.admin(Method::GET, &path), 200).await;
        let engagements = page["engagements"].as_array().unwrap();
        if engagements.is_empty() {
            break;
        }
        all.extend(engagements.iter().cloned());
        key = Some(page["continuation_key"].as_str().unwrap().to_owned());
    }
    let ids = unique_ids(&all, "engagement_id");
    assert_eq!(ids.len(), app.sandbox.volumes().chorus_engagements);
}

async fn a_paged_walk_through_the_proxy_follows_ccai_link_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("ccai-platform", "ccai").await;
    let volumes = app.sandbox.volumes();
    for (list, expected) in [
        ("calls", volumes.ccai_calls),
        ("agents", volumes.ccai_agents),
    ] {
        let mut all = Vec::new();
        let mut path = Some(format!("/v1/proxy/ccai/manager/api/v1/{list}?per=100"));
        while let Some(p) = path {
            let response = app.admin(Method::GET, &p).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let total: usize = response.headers()["total"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                total, expected,
                "the provider's paging headers come through"
            );
            // The provider's absolute `Link: <…>; rel="next"`, followed through the proxy.
            path = response
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap().to_owned())
                .map(|l| {
                    let (url, rel) = l.split_once(">; ").unwrap();
                    assert_eq!(rel, "rel=\"next\"");
                    format!("/v1/proxy/ccai{}", url_of(url.trim_start_matches('<')))
                });
            let (_, page) = read(response).await;
            all.extend(page.as_array().expect("a bare JSON array").iter().cloned());
        }
        assert_eq!(unique_ids(&all, "id").len(), expected, "{list}");
    }
}

async fn a_paged_walk_through_the_proxy_follows_clari_next_page_skip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("clari-copilot", "clari").await;
    let mut all = Vec::new();
    let mut skip = 0;
    loop {
        let path = format!("/v1/proxy/clari/calls?limit=100&skip={skip}");
        let page = expect(app.admin(Method::GET, &path), 200).await;
        all.extend(page["calls"].as_array().unwrap().iter().cloned());
        if !page["pagination"]["hasMore"].as_bool().unwrap() {
            break;
        }
        skip = page["pagination"]["nextPageSkip"].as_u64().unwrap();
    }
    let ids = unique_ids(&all, "id");
    assert_eq!(ids.len(), app.sandbox.volumes().clari_calls);
    // One call's details, by an id from the walk.
    let id = ids.iter().next().unwrap();
    let details = expect(
        app.admin(
            Method::GET,
            &format!("/v1/proxy/clari/call-details?id={id}"),
        ),
        200,
    )
    .await;
    assert!(details.is_object(), "{details}");
}

/// Aircall's real limit (120 requests a minute per company): 300 requests at once take two minutes,
/// and not one is refused, by Latchkey or by the provider.
async fn a_burst_of_300_aircall_requests_waits_for_the_limit_and_none_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("aircall", "air").await;
    assert_eq!(app.sandbox.rate_limits().aircall_per_minute, Some(120));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let request = app
            .admin(
                Method::GET,
                &format!("/v1/proxy/air/v1/calls?per_page=1&page={}", i % 20 + 1),
            )
            .header("x-latchkey-max-wait", "200");
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        std::collections::BTreeMap::from([(200, 300)]),
        "every answer is 200"
    );
    let stats = app.sandbox.rate_stats("aircall").unwrap();
    assert_eq!(stats.throttled, 0, "the provider never had to refuse");
    assert!(
        app.sandbox
            .max_observed_rate("aircall", std::time::Duration::from_secs(60))
            <= 120
    );
    // 301 requests (the verification too) at 120 a minute cannot take less than two minutes.
    assert!(started.elapsed() >= std::time::Duration::from_secs(119));
}

async fn dropped_connections_are_retried_for_get_but_not_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("chorus", "chorus").await;
    app.sandbox.clear_requests();
    // Every second connection is dropped without an answer.
    app.sandbox.set_drop_rate(Some("chorus"), 0.5);
    for _ in 0..6 {
        expect(
            app.admin(Method::GET, "/v1/proxy/chorus/v3/engagements"),
            200,
        )
        .await;
    }
    let mut unreachable = 0;
    for _ in 0..4 {
        let (status, problem) = read(
            app.admin(Method::POST, "/v1/proxy/chorus/v3/engagements")
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        if status == StatusCode::BAD_GATEWAY {
            assert_eq!(problem["code"], "upstream_unreachable", "{problem}");
            unreachable += 1;
        }
    }
    assert_eq!(unreachable, 2, "half the POSTs failed, none was retried");
}

/// Proxied requests are served without the router (`proxy::serve_direct`); their answers carry
/// what the router's layers give every other route, and they are counted the same way.
async fn proxied_answers_carry_the_envelope_of_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_demo("aircall", "air").await;
    let is_request_id = |v: &header::HeaderValue| v.to_str().is_ok_and(|s| s.len() == 36);
    for (request, status) in [
        (app.admin(Method::GET, "/v1/proxy/air/v1/ping"), 200),
        (app.admin(Method::GET, "/v1/proxy/air"), 404),
        (app.client.get(app.url("/v1/proxy/air/v1/ping")), 401),
        (app.admin(Method::TRACE, "/v1/proxy/air/v1/ping"), 405),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let headers = response.headers();
        assert!(
            headers.get("x-request-id").is_some_and(is_request_id),
            "{headers:?}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{status}");
    }
    let response = app
        .admin(Method::GET, "/v1/proxy/air/v1/ping")
        .header("x-request-id", "pipeline-run-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "pipeline-run-42");
    let problem = app
        .client
        .get(app.url("/v1/proxy/air/v1/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let metrics = app.metrics().await;
    for line in [
        r#"latchkey_http_requests_total{method="GET",route="/v1/proxy/{credential}/{*path}",status="200"} 2"#,
        r#"latchkey_http_requests_total{method="GET",route="/v1/proxy/{credential}/{*path}",status="401"} 2"#,
        r#"latchkey_http_requests_total{method="GET",route="/v1/proxy/{credential}",status="404"} 1"#,
        // The router answered the TRACE, under the same route.
        r#"latchkey_http_requests_total{method="TRACE",route="/v1/proxy/{credential}/{*path}",status="405"} 1"#,
        r#"latchkey_http_request_duration_seconds_count{route="/v1/proxy/{credential}/{*path}"} 5"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

latchkey_testdb::backend_tests!(
    proxied_answers_carry_the_envelope_of_every_route,
    each_providers_auth_arrives_exactly_as_its_api_expects,
    path_tricks_never_change_the_target_host,
    disabled_credentials_and_rejections,
    server_errors_are_retried_for_get_but_not_post_and_timeouts_answer_504,
    the_proxy_needs_a_latchkey_credential_and_stays_in_its_workspace,
    a_paged_walk_through_the_proxy_follows_aircall_next_page_links,
    a_burst_waits_for_the_providers_rate_limit_instead_of_hitting_it,
    a_paged_walk_through_the_proxy_follows_chorus_continuation_keys,
    a_paged_walk_through_the_proxy_follows_ccai_link_headers,
    a_paged_walk_through_the_proxy_follows_clari_next_page_skip,
    a_burst_of_300_aircall_requests_waits_for_the_limit_and_none_is_refused,
    dropped_connections_are_retried_for_get_but_not_post,
);
