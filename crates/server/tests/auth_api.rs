//! Issued API credentials and isolation over a real socket: SECURITY-TESTS 13–21 and 23.

mod common;

use base64::Engine as _;
use common::{TestApp, expect, read};
use latchkey_core::{Actor, Role};
use latchkey_testdb::Backend;
use reqwest::{Method, StatusCode, header};
use serde_json::json;

fn basic(workspace: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{workspace}:{token}"))
    )
}

async fn the_api_credential_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({"name": "etl"})),
        201,
    )
    .await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lkt_"));
    assert!(
        created["warning"]
            .as_str()
            .unwrap()
            .contains("will not be shown again")
    );
    let id = created["api_credential"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/api-credentials/{id}");

    // The token works as Bearer and as Basic with its workspace.
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 200).await;
    expect(
        app.client
            .get(app.url("/v1/credentials"))
            .header(header::AUTHORIZATION, basic("default", &token)),
        200,
    )
    .await;
    // Get and list never show it.
    let listed = app
        .admin(Method::GET, "/v1/api-credentials")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let got = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&token) && !got.contains(&token));
    assert!(listed.contains("\"etl\""));

    // A member cannot mint API credentials.
    let problem = expect(
        app.with_token(Method::POST, "/v1/api-credentials", &token)
            .json(&json!({"name": "sneaky"})),
        403,
    )
    .await;
    assert_eq!(problem["code"], "forbidden");

    // Rename keeps it valid; disable refuses it at once; enable brings it back.
    expect(
        app.admin(Method::PATCH, &path)
            .json(&json!({"name": "etl-nightly"})),
        200,
    )
    .await;
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 200).await;
    expect(app.admin(Method::POST, &format!("{path}/disable")), 200).await;
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 401).await;
    expect(app.admin(Method::POST, &format!("{path}/enable")), 200).await;
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 200).await;

    // Regenerate: the old token is refused at once, the new one works.
    let regenerated = expect(app.admin(Method::POST, &format!("{path}/regenerate")), 200).await;
    let new_token = regenerated["token"].as_str().unwrap().to_owned();
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 401).await;
    expect(
        app.with_token(Method::GET, "/v1/credentials", &new_token),
        200,
    )
    .await;

    // With a grace period the old one lasts until it ends.
    let graced = expect(
        app.admin(Method::POST, &format!("{path}/regenerate"))
            .json(&json!({"grace_seconds": 2})),
        200,
    )
    .await;
    let newest = graced["token"].as_str().unwrap().to_owned();
    expect(
        app.with_token(Method::GET, "/v1/credentials", &new_token),
        200,
    )
    .await;
    expect(app.with_token(Method::GET, "/v1/credentials", &newest), 200).await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    expect(
        app.with_token(Method::GET, "/v1/credentials", &new_token),
        401,
    )
    .await;
    let too_long = expect(
        app.admin(Method::POST, &format!("{path}/regenerate"))
            .json(&json!({"grace_seconds": 86_401})),
        422,
    )
    .await;
    assert_eq!(too_long["field"], "grace_seconds");

    // Delete refuses it at once.
    expect(app.admin(Method::DELETE, &path), 204).await;
    expect(app.with_token(Method::GET, "/v1/credentials", &newest), 401).await;

    // The database holds no form of any token.
    let db = app.db.dump().await;
    assert!(!db.is_empty());
    for t in [&token, &new_token, &newest, &app.admin_token] {
        let forms = [
            t.to_string(),
            base64::engine::general_purpose::STANDARD.encode(t),
        ];
        for form in forms {
            assert!(!db.windows(form.len()).any(|w| w == form.as_bytes()));
        }
    }
}

async fn every_authentication_failure_looks_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut typo = app.admin_token.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let other = app
        .lk
        .create_workspace(&Actor::operator(), "other")
        .await
        .unwrap();
    let attempts: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some(format!("Bearer {typo}")),
        Some("Bearer lkt_00000000000000000000000000000000000000".to_owned()),
        Some(basic(&other.slug, &app.admin_token)),
        Some(basic("default", "")),
        Some("Basic %%%".to_owned()),
        Some(format!("Token {}", app.admin_token)),
    ];
    let mut answers = Vec::new();
    for attempt in attempts {
        let mut request = app.client.get(app.url("/v1/credentials"));
        if let Some(value) = attempt {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let www = response.headers().get(header::WWW_AUTHENTICATE).cloned();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response.text().await.unwrap();
        answers.push((status, www, content_type, body));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    let failures = expect(app.admin(Method::GET, "/v1/audit?action=auth.failure"), 200).await;
    assert!(!failures["items"].as_array().unwrap().is_empty());
}

async fn repeated_failures_are_slowed_without_locking_out_the_rightful_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut last = None;
    for _ in 0..25 {
        let response = app
            .with_token(Method::GET, "/v1/credentials", "lkt_wrong")
            .send()
            .await
            .unwrap();
        last = Some((
            response.status(),
            response.headers().get(header::RETRY_AFTER).cloned(),
        ));
    }
    let (status, retry_after) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
}

async fn another_workspaces_ids_answer_404_for_every_verb(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let credential = app.create_demo("aircall", "Aircall").await;
    let cid = credential["id"].as_str().unwrap();
    let api = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({"name": "etl"})),
        201,
    )
    .await;
    let aid = api["api_credential"]["id"].as_str().unwrap();
    app.lk
        .create_workspace(&Actor::operator(), "other")
        .await
        .unwrap();
    let (_, other_token) = app
        .lk
        .add_api_credential(
            &Actor::operator(),
            true,
            "other",
            "other-admin",
            Role::Admin,
        )
        .await
        .unwrap();
    let other = other_token.expose().to_owned();
    // `{c}` is the credential, `{a}` the API credential: by id and by name.
    let mut matrix: Vec<(Method, &str, Option<serde_json::Value>)> = vec![
        (Method::GET, "/v1/credentials/{c}", None),
        (
            Method::PATCH,
            "/v1/credentials/{c}",
            Some(json!({"name": "mine"})),
        ),
        (
            Method::PUT,
            "/v1/credentials/{c}/secrets",
            Some(json!({"fields": {"api_token": "x"}})),
        ),
        (Method::POST, "/v1/credentials/{c}/verify", None),
        (Method::POST, "/v1/credentials/{c}/disable", None),
        (Method::POST, "/v1/credentials/{c}/enable", None),
        (Method::DELETE, "/v1/credentials/{c}", None),
        (Method::GET, "/v1/api-credentials/{a}", None),
        (
            Method::PATCH,
            "/v1/api-credentials/{a}",
            Some(json!({"name": "mine"})),
        ),
        (Method::POST, "/v1/api-credentials/{a}/disable", None),
        (Method::POST, "/v1/api-credentials/{a}/enable", None),
        (Method::POST, "/v1/api-credentials/{a}/regenerate", None),
        (Method::DELETE, "/v1/api-credentials/{a}", None),
    ];
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        for path in ["/v1/proxy/{c}/v1/ping", "/v1/proxy/{c}"] {
            matrix.push((method.clone(), path, Some(json!({"x": 1}))));
        }
    }
    let missing_cid = "0190a6b2-0000-7000-8000-000000000000";
    app.sandbox.clear_requests();
    let refs = [
        ((cid, aid), (missing_cid, missing_cid)),
        (("Aircall", "etl"), ("Nothing", "nothing")),
    ];
    for ((c, a), (missing_c, missing_a)) in refs {
        for (method, template, body) in &matrix {
            let path = template.replace("{c}", c).replace("{a}", a);
            let mut request = app.with_token(method.clone(), &path, &other);
            if let Some(body) = body {
                request = request.json(body);
            }
            let (status, theirs) = read(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {theirs}");
            // Exactly as a reference to nothing at all.
            let missing_path = template.replace("{c}", missing_c).replace("{a}", missing_a);
            let mut request = app.with_token(method.clone(), &missing_path, &other);
            if let Some(body) = body {
                request = request.json(body);
            }
            let (status, missing) = read(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            // The same answer, down to the detail (which names the reference as sent).
            let theirs = theirs
                .to_string()
                .replace(c, missing_c)
                .replace(a, missing_a);
            assert_eq!(theirs, missing.to_string(), "{method} {path}");
        }
    }
    // Nothing reached the provider.
    assert!(app.sandbox.requests("aircall").is_empty());
    // Nothing of the first workspace changed.
    let still = expect(
        app.admin(Method::GET, &format!("/v1/credentials/{cid}")),
        200,
    )
    .await;
    assert_eq!(still["revision"], 1);
    assert_eq!(still["name"], "Aircall");
    // Lists are scoped too.
    let listed = expect(app.with_token(Method::GET, "/v1/credentials", &other), 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    // Workspaces are for the default workspace's admin only.
    expect(app.with_token(Method::GET, "/v1/workspaces", &other), 403).await;
    let workspaces = expect(app.admin(Method::GET, "/v1/workspaces"), 200).await;
    assert_eq!(workspaces["items"].as_array().unwrap().len(), 2);
    expect(
        app.admin(Method::POST, "/v1/workspaces")
            .json(&json!({"slug": "team-b"})),
        201,
    )
    .await;
    expect(
        app.admin(Method::POST, "/v1/workspaces")
            .json(&json!({"slug": "Team B"})),
        422,
    )
    .await;
}

latchkey_testdb::backend_tests!(
    the_api_credential_lifecycle,
    every_authentication_failure_looks_the_same,
    repeated_failures_are_slowed_without_locking_out_the_rightful_token,
    another_workspaces_ids_answer_404_for_every_verb,
);
