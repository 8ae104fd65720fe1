//! The credential routes over a real socket, against the real sandbox providers.

mod common;

use common::{TestApp, expect, read};
use latchkey_testdb::{Backend, TestDb};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

async fn the_whole_credential_lifecycle_for_each_provider(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for provider in ["chorus", "aircall", "ccai-platform", "clari-copilot"] {
        let name = format!("{provider} – production");
        let response = app
            .admin(Method::POST, "/v1/credentials")
            .json(&app.demo_body(provider, &name))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::ETAG], "\"1\"");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        let (_, created) = read(response).await;
        assert_eq!(created["status"], "active", "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/v1/credentials/{id}"));

        let got = app.admin(Method::GET, &location).send().await.unwrap();
        assert_eq!(got.headers()[header::ETAG], "\"1\"");
        let (_, got) = read(got).await;
        assert_eq!(got["name"], name.as_str());

        // PATCH with the right If-Match, then a stale one.
        let patched = expect(
            app.admin(Method::PATCH, &location)
                .header(header::IF_MATCH, "\"1\"")
                .json(
                    &json!({"name": format!("{name} (renamed)"), "description": "owned by data"}),
                ),
            200,
        )
        .await;
        assert_eq!(patched["description"], "owned by data");
        // A read right after the write shows it (reads are cached, writes empty the cache).
        let reread = expect(app.admin(Method::GET, &location), 200).await;
        assert_eq!(reread["description"], "owned by data");
        assert_eq!(reread["revision"], patched["revision"]);
        let stale = expect(
            app.admin(Method::PATCH, &location)
                .header(header::IF_MATCH, "\"1\"")
                .json(&json!({"name": "x"})),
            412,
        )
        .await;
        assert_eq!(stale["code"], "stale_revision");

        // A rejected new secret changes nothing; verify still passes.
        let secret_key = app
            .sandbox
            .demo()
            .fields(provider)
            .into_iter()
            .find(|(_, _, s)| *s)
            .unwrap()
            .0;
        let rejected = expect(
            app.admin(Method::PUT, &format!("{location}/secrets"))
                .json(&json!({"fields": {secret_key: "lk-wrong-secret-value-0000"}})),
            422,
        )
        .await;
        assert_eq!(rejected["code"], "provider_rejected");
        assert_eq!(
            rejected["field"],
            app.lk.catalog().get(provider).unwrap().verify.check_fields[0].as_str()
        );
        let verified = expect(app.admin(Method::POST, &format!("{location}/verify")), 200).await;
        assert_eq!(verified["outcome"], "valid");

        let disabled = expect(app.admin(Method::POST, &format!("{location}/disable")), 200).await;
        assert_eq!(disabled["status"], "disabled");
        let enabled = expect(app.admin(Method::POST, &format!("{location}/enable")), 200).await;
        assert_eq!(enabled["status"], "active");
        if provider != "clari-copilot" {
            expect(app.admin(Method::DELETE, &location), 204).await;
            expect(app.admin(Method::GET, &location), 404).await;
        }
    }
    let list = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let audit = expect(
        app.admin(Method::GET, "/v1/audit?action=credential.create"),
        200,
    )
    .await;
    let events = audit["items"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["actor"]["name"], "admin");
    assert!(
        events[0]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(events[0]["client"], "127.0.0.1");
}

async fn lists_filter_and_page_with_a_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..5 {
        let mut body = app.demo_body("aircall", &format!("Aircall {i}"));
        body["fields"]["api_token"] = json!("not-checked");
        expect(
            app.admin(Method::POST, "/v1/credentials?verify=false")
                .json(&body),
            201,
        )
        .await;
    }
    app.create_demo("chorus", "Chorus prod").await;
    let page = expect(
        app.admin(Method::GET, "/v1/credentials?limit=2&provider=aircall"),
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let mut next = page["next"].as_str().map(str::to_owned);
    while let Some(cursor) = next {
        let page = expect(
            app.admin(
                Method::GET,
                &format!("/v1/credentials?limit=2&provider=aircall&after={cursor}"),
            ),
            200,
        )
        .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned()),
        );
        next = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(
        seen,
        [
            "Aircall 0",
            "Aircall 1",
            "Aircall 2",
            "Aircall 3",
            "Aircall 4"
        ]
    );
    let unverified = expect(
        app.admin(Method::GET, "/v1/credentials?status=unverified"),
        200,
    )
    .await;
    assert_eq!(unverified["items"].as_array().unwrap().len(), 5);
    let searched = expect(app.admin(Method::GET, "/v1/credentials?q=PROD"), 200).await;
    assert_eq!(searched["items"][0]["name"], "Chorus prod");
    let bad = expect(app.admin(Method::GET, "/v1/credentials?status=sleepy"), 422).await;
    assert_eq!(bad["field"], "status");
    expect(app.admin(Method::GET, "/v1/credentials?limit=lots"), 400).await;
    expect(app.admin(Method::GET, "/v1/credentials?colour=red"), 400).await;
}

async fn bad_bodies_get_problem_answers_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let post = || app.admin(Method::POST, "/v1/credentials");
    let body = app.demo_body("aircall", "Aircall");

    let response = post()
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"provider\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let (status, problem) = read(response).await;
    assert_eq!(status, 400);
    assert_eq!(problem["code"], "malformed_json");
    assert!(
        problem["detail"].as_str().unwrap().contains("line 1"),
        "{problem}"
    );

    for (key, value) in [
        ("workspace", json!("other")),
        ("status", json!("active")),
        ("revision", json!(7)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("key_id", json!("mk_0000000000000000")),
        ("token_hash", json!("00")),
    ] {
        let mut b = body.clone();
        b[key] = value;
        let problem = expect(post().json(&b), 400).await;
        assert_eq!(problem["code"], "invalid_body");
        assert!(
            problem["detail"].as_str().unwrap().contains(key),
            "{problem}"
        );
        assert_eq!(problem["field"], key);
    }
    let problem = expect(
        post()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(body.to_string()),
        415,
    )
    .await;
    assert_eq!(problem["code"], "unsupported_media_type");
    let mut huge = body.clone();
    huge["description"] = json!("x".repeat(70 * 1024));
    expect(post().json(&huge), 413).await;
    let mut wrong_type = body.clone();
    wrong_type["name"] = json!(42);
    expect(post().json(&wrong_type), 400).await;

    let mut unknown = body.clone();
    unknown["provider"] = json!("salesforce");
    let problem = expect(post().json(&unknown), 422).await;
    assert_eq!(problem["code"], "unknown_provider");
    assert_eq!(problem["field"], "provider");
    let mut bad_field = app.demo_body("ccai-platform", "CCAI");
    bad_field["fields"]["subdomain"] = json!("evil.com#");
    let problem = expect(post().json(&bad_field), 422).await;
    assert_eq!(problem["field"], "subdomain");

    app.sandbox.set_forced_status(Some(503));
    let problem = expect(post().json(&body), 502).await;
    assert_eq!(problem["code"], "provider_unreachable");
    app.sandbox.set_forced_status(None);

    let list = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let problem = expect(app.admin(Method::GET, "/v1/nothing-here"), 404).await;
    assert_eq!(problem["code"], "not_found");
}

async fn concurrent_patches_with_the_same_if_match_have_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall").await;
    let location = format!("/v1/credentials/{}", created["id"].as_str().unwrap());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let request = app
            .admin(Method::PATCH, &location)
            .header(header::IF_MATCH, "\"1\"")
            .json(&json!({ "description": format!("writer {i}") }));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );
    let now = expect(app.admin(Method::GET, &location), 200).await;
    assert_eq!(now["revision"], 2);
}

async fn no_response_carries_a_stored_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut bodies = Vec::new();
    for provider in ["chorus", "aircall", "ccai-platform", "clari-copilot"] {
        let created = app.create_demo(provider, provider).await;
        bodies.push(created.to_string());
        let id = created["id"].as_str().unwrap();
        for (method, path) in [
            (Method::GET, format!("/v1/credentials/{id}")),
            (Method::POST, format!("/v1/credentials/{id}/verify")),
            (Method::POST, format!("/v1/credentials/{id}/disable")),
        ] {
            let response = app.admin(method, &path).send().await.unwrap();
            bodies.push(response.text().await.unwrap());
        }
    }
    for path in ["/v1/credentials", "/v1/audit", "/v1/providers", "/metrics"] {
        bodies.push(
            app.admin(Method::GET, path)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for secret in app.secrets() {
        for body in &bodies {
            assert!(!body.contains(&secret), "a secret in {body}");
        }
    }
}

async fn operations_endpoints(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = expect(app.client.get(app.url("/healthz")), 200).await;
    assert_eq!(health["status"], "ok");
    let ready = expect(app.client.get(app.url("/readyz")), 200).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], backend.name());
    // The master key is loaded: readiness names the primary key the server encrypts with.
    let primary = app.lk.key_ring().primary_id().as_str().to_owned();
    assert!(primary.starts_with("mk_"), "{primary}");
    assert_eq!(ready["master_key"], primary.as_str(), "{ready}");
    app.create_demo("aircall", "Secret Project Name").await;
    let _ = app
        .client
        .get(app.url("/v1/credentials"))
        .send()
        .await
        .unwrap();
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("latchkey_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/credentials\""), "{metrics}");
    assert!(
        metrics.contains("latchkey_verifications_total{provider=\"aircall\",outcome=\"valid\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("latchkey_auth_failures_total{reason=\"malformed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("latchkey_http_request_duration_seconds_bucket"));
    assert!(!metrics.contains("Secret Project Name"));
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

async fn shutdown_lets_requests_in_flight_finish(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A second application on the same core, whose shutdown we control.
    let server = latchkey_server::Application::bind(
        "127.0.0.1:0".parse().unwrap(),
        latchkey_server::AppState::new(app.lk.clone()),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    app.sandbox
        .set_latency(std::time::Duration::from_millis(800));
    let request = app
        .client
        .post(format!("http://{addr}/v1/credentials"))
        .bearer_auth(&app.admin_token)
        .json(&app.demo_body("aircall", "Aircall"));
    let in_flight = tokio::spawn(async move { request.send().await.unwrap().status() });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap(), StatusCode::CREATED);
    serving.await.unwrap().unwrap();
    // New connections are refused once it has stopped.
    assert!(
        app.client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
}

async fn oversized_headers_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .admin(Method::GET, "/v1/credentials")
        .header("x-filler", "a".repeat(512 * 1024))
        .send()
        .await;
    match response {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // The server is still fine.
    expect(app.client.get(app.url("/healthz")), 200).await;
}

/// PostgreSQL only (an embedded SQLite file cannot go away): while the database server is
/// unreachable requests answer 503 `store_unavailable` promptly, with no database detail, and
/// once it is back they succeed again without a restart.
#[tokio::test]
async fn a_database_outage_answers_503_and_passes() {
    let db = TestDb::new(Backend::Postgres).await;
    let gate = db.gate().await;
    let url = db.database_url_through(&gate);
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    let app = TestApp::spawn_on(db, Some(url)).await;
    app.create_demo("aircall", "Before").await;

    gate.close();
    for path in ["/v1/credentials", "/v1/credentials/Before"] {
        let started = std::time::Instant::now();
        let (status, body) = read(app.admin(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "store_unavailable", "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let text = body.to_string();
        assert!(
            !text.contains(&password) && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
    let (status, _) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    gate.open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let response = app
            .admin(Method::GET, "/v1/credentials")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.create_demo("aircall", "After").await;
}

latchkey_testdb::backend_tests!(
    the_whole_credential_lifecycle_for_each_provider,
    lists_filter_and_page_with_a_cursor,
    bad_bodies_get_problem_answers_and_change_nothing,
    concurrent_patches_with_the_same_if_match_have_one_winner,
    no_response_carries_a_stored_secret,
    operations_endpoints,
    shutdown_lets_requests_in_flight_finish,
    oversized_headers_are_refused,
);
