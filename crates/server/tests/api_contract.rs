//! The REST API's contract over a real socket: the OpenAPI document and the router agree on every
//! route; every write honours `If-Match`; no body route takes a field it does not own; the audit
//! log's filters and cursor, and that it is append-only; the request timeout.

mod common;

use common::{TestApp, expect, read};
use latchkey_testdb::Backend;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const MISSING_ID: &str = "0190a6b2-0000-7000-8000-000000000000";
const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "options", "trace"];

/// A documented path with its parameters filled with references to nothing.
fn concrete(path: &str) -> String {
    path.replace("{id}", MISSING_ID)
        .replace("{credential}", "no-such-credential")
        .replace("{path}", "v1/anything")
}

fn is_route_not_found(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::NOT_FOUND
        && body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("No such route"))
}

async fn the_openapi_document_and_the_router_agree_on_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = expect(app.client.get(app.url("/v1/openapi.json")), 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    // The routes an earlier document left out are there.
    for (method, path) in [
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("post", "/v1/proxy/{credential}"),
        ("delete", "/v1/proxy/{credential}/{path}"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
    }

    let mut operation_ids = BTreeSet::new();
    let mut documented = 0;
    for (path, item) in paths {
        let url = app.url(&concrete(path));
        for method in METHODS {
            let verb = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(verb, &url)
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            let (_, body) = read(response).await;
            let operation = &item[method];
            if operation.is_null() {
                // The router serves nothing the document does not show.
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_eq!(content_type.as_deref(), Some("application/problem+json"));
                assert_eq!(body["code"], "method_not_allowed");
                continue;
            }
            // …and serves everything it shows.
            documented += 1;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !is_route_not_found(status, &body),
                "{method} {path} is documented but not routed"
            );
            assert!(
                operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
                "{method} {path}: operation ids are unique"
            );
            check_error_responses(path, method, operation, &doc);
        }
    }
    assert!(documented >= 37, "{documented} operations");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Credential",
        "ApiCredential",
        "AuditEvent",
        "Problem",
        "Workspace",
        "Status",
        "IssuedToken",
    ] {
        assert!(schemas.contains_key(schema), "{schema}");
    }
    // The document is public; it holds no secret and needs no token.
    assert!(!doc.to_string().contains(&app.admin_token));
}

/// Every operation lists the errors it can answer, each as problem+json.
fn check_error_responses(path: &str, method: &str, operation: &Value, doc: &Value) {
    let responses = operation["responses"].as_object().unwrap();
    let authenticated = path.starts_with("/v1/") && path != "/v1/openapi.json";
    let mut wanted: Vec<&str> = Vec::new();
    if authenticated {
        wanted.extend(["400", "401", "404", "422", "429"]);
        assert!(operation["security"].is_array(), "{method} {path}");
    }
    let has_body = !operation["requestBody"].is_null();
    if has_body {
        wanted.extend(["413", "415"]);
        let content = &operation["requestBody"]["content"];
        assert!(content["application/json"].is_object(), "{method} {path}");
    }
    let takes_if_match = operation["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-Match"));
    if takes_if_match {
        wanted.push("412");
    }
    // Every write to an object takes If-Match, except verify (which only asks the provider).
    let object_write = ["post", "put", "patch", "delete"].contains(&method)
        && (path.starts_with("/v1/credentials/") || path.starts_with("/v1/api-credentials/"))
        && !path.ends_with("/verify");
    assert_eq!(takes_if_match, object_write, "{method} {path} and If-Match");
    if path.starts_with("/v1/proxy/") {
        wanted.extend(["502", "504"]);
        assert!(responses.contains_key("default"), "{method} {path}");
    }
    if path.ends_with("/verify") || (path == "/v1/credentials" && method == "post") {
        wanted.push("502");
    }
    for status in wanted {
        assert!(
            responses.contains_key(status),
            "{method} {path} lacks {status}"
        );
    }
    for (status, response) in responses {
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        let reference = response["content"]["application/problem+json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} {status}: {response}"));
        assert_eq!(reference, "#/components/schemas/Problem");
        assert!(doc["components"]["schemas"]["Problem"].is_object());
    }
}

/// The ETag of `path` (and the body).
async fn read_with_etag(app: &TestApp, path: &str) -> (String, Value) {
    let response = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, body) = read(response).await;
    assert_eq!(etag, format!("\"{}\"", body["revision"]), "{path}");
    (etag, body)
}

/// The parts of an object that a write changes.
fn state_of(v: &Value) -> Value {
    json!([
        v["name"],
        v["description"],
        v["status"],
        v["enabled"],
        v["revision"],
        v["updated_at"],
        v["hint"],
        v["grace_until"]
    ])
}

/// `write` with a stale If-Match answers 412 problem+json and changes nothing; with the current
/// ETag it succeeds.
async fn stale_then_current(
    app: &TestApp,
    object: &str,
    bump: &dyn Fn(u32) -> (Method, String, Value),
    round: u32,
    write: (Method, String, Option<Value>),
    ok: u16,
) -> Value {
    let (stale, _) = read_with_etag(app, object).await;
    let (method, path, body) = bump(round);
    expect(app.admin(method, &path).json(&body), 200).await;
    let (current, before) = read_with_etag(app, object).await;
    assert_ne!(stale, current);
    let (method, path, body) = write;
    let send = |etag: &str| {
        let mut request = app
            .admin(method.clone(), &path)
            .header(header::IF_MATCH, etag);
        if let Some(body) = &body {
            request = request.json(body);
        }
        request
    };
    let response = send(&stale).send().await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let (status, problem) = read(response).await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "{method} {path}: {problem}"
    );
    assert_eq!(problem["code"], "stale_revision");
    assert!(problem.get("token").is_none());
    let (_, after) = read_with_etag(app, object).await;
    assert_eq!(
        state_of(&before),
        state_of(&after),
        "{method} {path} changed it"
    );
    // A malformed If-Match is refused the same way.
    expect(send("\"not-a-revision\""), 412).await;
    expect(send(&current), ok).await
}

async fn every_write_honours_if_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall").await;
    let object = format!("/v1/credentials/{}", created["id"].as_str().unwrap());
    let describe = |round: u32| {
        (
            Method::PATCH,
            object.clone(),
            json!({"description": format!("round {round}")}),
        )
    };
    let token = app.sandbox.demo().aircall_api_token.clone();
    let writes = [
        (
            Method::PATCH,
            object.clone(),
            Some(json!({"name": "Aircall (renamed)"})),
            200,
        ),
        (
            Method::PUT,
            format!("{object}/secrets"),
            Some(json!({"fields": {"api_token": token}})),
            200,
        ),
        (Method::POST, format!("{object}/disable"), None, 200),
        (Method::POST, format!("{object}/enable"), None, 200),
        (Method::DELETE, object.clone(), None, 204),
    ];
    for (round, (method, path, body, ok)) in writes.into_iter().enumerate() {
        stale_then_current(
            &app,
            &object,
            &describe,
            round as u32,
            (method, path, body),
            ok,
        )
        .await;
    }
    expect(app.admin(Method::GET, &object), 404).await;

    let issued = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({"name": "etl"})),
        201,
    )
    .await;
    let etl_token = issued["token"].as_str().unwrap().to_owned();
    let object = format!(
        "/v1/api-credentials/{}",
        issued["api_credential"]["id"].as_str().unwrap()
    );
    // Reads carry an ETag, by id and by name.
    read_with_etag(&app, &object).await;
    read_with_etag(&app, "/v1/api-credentials/etl").await;
    let rename = |round: u32| {
        (
            Method::PATCH,
            object.clone(),
            json!({"name": format!("etl-{round}")}),
        )
    };
    let writes = [
        (
            Method::PATCH,
            object.clone(),
            Some(json!({"name": "etl-nightly"})),
            200,
        ),
        (Method::POST, format!("{object}/disable"), None, 200),
        (Method::POST, format!("{object}/enable"), None, 200),
    ];
    for (round, (method, path, body, ok)) in writes.into_iter().enumerate() {
        stale_then_current(
            &app,
            &object,
            &rename,
            round as u32,
            (method, path, body),
            ok,
        )
        .await;
    }
    // A stale regenerate issues no token and leaves the old one working.
    let regenerated = stale_then_current(
        &app,
        &object,
        &rename,
        10,
        (Method::POST, format!("{object}/regenerate"), None),
        200,
    )
    .await;
    expect(
        app.with_token(Method::GET, "/v1/credentials", &etl_token),
        401,
    )
    .await;
    let new_token = regenerated["token"].as_str().unwrap().to_owned();
    stale_then_current(
        &app,
        &object,
        &rename,
        11,
        (Method::DELETE, object.clone(), None),
        204,
    )
    .await;
    expect(
        app.with_token(Method::GET, "/v1/credentials", &new_token),
        401,
    )
    .await;
}

/// `body` with `key` added is refused as 400 naming the field.
async fn refused_naming(app: &TestApp, method: Method, path: &str, body: &Value, key: &str) {
    let problem = expect(app.admin(method.clone(), path).json(body), 400).await;
    assert_eq!(
        problem["code"], "invalid_body",
        "{method} {path}: {problem}"
    );
    assert_eq!(problem["field"], key, "{method} {path}: {problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(key),
        "{problem}"
    );
}

fn with(body: &Value, key: &str, value: Value) -> Value {
    let mut body = body.clone();
    body[key] = value;
    body
}

async fn no_body_route_takes_a_field_it_does_not_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall").await;
    let credential = format!("/v1/credentials/{}", created["id"].as_str().unwrap());
    let issued = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({"name": "etl"})),
        201,
    )
    .await;
    let etl_token = issued["token"].as_str().unwrap().to_owned();
    let api = format!(
        "/v1/api-credentials/{}",
        issued["api_credential"]["id"].as_str().unwrap()
    );
    let (_, credential_before) = read_with_etag(&app, &credential).await;
    let (_, api_before) = read_with_etag(&app, &api).await;
    let owned = [
        ("workspace", json!("other")),
        ("id", json!(MISSING_ID)),
        ("revision", json!(9)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("updated_at", json!("2020-01-01T00:00:00Z")),
    ];

    let patch = json!({"name": "Aircall 2"});
    for (key, value) in owned.iter().cloned().chain([
        ("status", json!("active")),
        ("provider", json!("chorus")),
        ("key_id", json!("mk_0000000000000000")),
        ("fields", json!({"api_token": "x"})),
    ]) {
        refused_naming(
            &app,
            Method::PATCH,
            &credential,
            &with(&patch, key, value),
            key,
        )
        .await;
    }
    let secrets = json!({"fields": {"api_token": app.sandbox.demo().aircall_api_token}});
    for (key, value) in owned.iter().cloned().chain([
        ("status", json!("active")),
        ("provider", json!("chorus")),
        ("name", json!("renamed")),
    ]) {
        let path = format!("{credential}/secrets");
        refused_naming(&app, Method::PUT, &path, &with(&secrets, key, value), key).await;
    }

    let add = json!({"name": "new-one"});
    let api_owned = [
        ("enabled", json!(false)),
        ("token", json!("lkt_mine")),
        ("token_hash", json!("00")),
        ("hint", json!("lkt_…abcd")),
        ("last_used_at", json!("2020-01-01T00:00:00Z")),
        ("grace_until", json!("2099-01-01T00:00:00Z")),
    ];
    for (key, value) in owned.iter().cloned().chain(api_owned.iter().cloned()) {
        let body = with(&add, key, value);
        refused_naming(&app, Method::POST, "/v1/api-credentials", &body, key).await;
    }
    let rename = json!({"name": "etl-2"});
    for (key, value) in owned
        .iter()
        .cloned()
        .chain(api_owned.iter().cloned())
        .chain([("role", json!("admin"))])
    {
        refused_naming(&app, Method::PATCH, &api, &with(&rename, key, value), key).await;
    }
    let regenerate = json!({"grace_seconds": 60});
    for (key, value) in owned
        .iter()
        .cloned()
        .chain(api_owned.iter().cloned())
        .chain([("role", json!("admin")), ("name", json!("x"))])
    {
        let path = format!("{api}/regenerate");
        refused_naming(
            &app,
            Method::POST,
            &path,
            &with(&regenerate, key, value),
            key,
        )
        .await;
    }
    let workspace = json!({"slug": "team-b"});
    for (key, value) in owned.iter().cloned().chain([("name", json!("Team B"))]) {
        if key == "workspace" {
            continue;
        }
        let body = with(&workspace, key, value);
        refused_naming(&app, Method::POST, "/v1/workspaces", &body, key).await;
    }

    // Regenerate's optional body is held to the same rules as every other body.
    let path = format!("{api}/regenerate");
    let big = json!({"grace_seconds": 60, "pad": "x".repeat(70 * 1024)});
    let response = app
        .admin(Method::POST, &path)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let (status, problem) = read(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["code"], "body_too_large");
    let problem = expect(
        app.admin(Method::POST, &path)
            .header(header::CONTENT_TYPE, "application/json")
            .body("{\"grace_seconds\": "),
        400,
    )
    .await;
    assert_eq!(problem["code"], "malformed_json");
    let problem = expect(
        app.admin(Method::POST, &path)
            .header(header::CONTENT_TYPE, "text/plain")
            .body("{}"),
        415,
    )
    .await;
    assert_eq!(problem["code"], "unsupported_media_type");
    let problem = expect(
        app.admin(Method::POST, &path)
            .json(&json!({"grace_seconds": "soon"})),
        400,
    )
    .await;
    assert_eq!(problem["code"], "invalid_body");

    // Nothing changed: the objects, the API credentials, the workspaces, and the token still works.
    let (_, credential_after) = read_with_etag(&app, &credential).await;
    assert_eq!(state_of(&credential_before), state_of(&credential_after));
    let (_, api_after) = read_with_etag(&app, &api).await;
    assert_eq!(state_of(&api_before), state_of(&api_after));
    assert_eq!(api_after["role"], "member");
    let listed = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let workspaces = expect(app.admin(Method::GET, "/v1/workspaces"), 200).await;
    assert_eq!(workspaces["items"].as_array().unwrap().len(), 1);
    expect(
        app.with_token(Method::GET, "/v1/credentials", &etl_token),
        200,
    )
    .await;
    // An empty body is still fine.
    expect(app.admin(Method::POST, &path), 200).await;
}

/// `start` with `key=value` appended, the value percent-encoded.
fn with_query(start: &str, key: &str, value: &str) -> String {
    let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{start}{key}={value}")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_audit_log_filters_pages_and_is_append_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let aircall = app.create_demo("aircall", "Aircall").await;
    let aircall_id = aircall["id"].as_str().unwrap().to_owned();
    let chorus = app.create_demo("chorus", "Chorus").await;
    let verified = expect(
        app.admin(
            Method::POST,
            &format!("/v1/credentials/{aircall_id}/verify"),
        ),
        200,
    )
    .await;
    assert_eq!(verified["outcome"], "valid");
    let issued = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({"name": "etl"})),
        201,
    )
    .await;
    let etl = issued["token"].as_str().unwrap().to_owned();
    let etl_id = issued["api_credential"]["id"].as_str().unwrap().to_owned();
    expect(
        app.with_token(
            Method::PATCH,
            &format!("/v1/credentials/{}", chorus["id"].as_str().unwrap()),
            &etl,
        )
        .json(&json!({"description": "by etl"})),
        200,
    )
    .await;
    let wrong = "lkt_not-a-real-token-at-all";
    expect(app.with_token(Method::GET, "/v1/credentials", wrong), 401).await;

    let all = expect(app.admin(Method::GET, "/v1/audit?limit=200"), 200).await;
    let events = all["items"].as_array().unwrap().clone();
    assert!(events.len() >= 6, "{all}");
    assert!(all["next"].is_null());

    // verify is recorded, with who, what, the outcome, the request id and the client.
    let verify = expect(
        app.admin(Method::GET, "/v1/audit?action=credential.verify"),
        200,
    )
    .await;
    let verify = verify["items"].as_array().unwrap();
    assert_eq!(verify.len(), 1, "{verify:?}");
    assert_eq!(verify[0]["target"]["id"], aircall_id.as_str());
    assert_eq!(verify[0]["outcome"], "success");
    assert_eq!(verify[0]["actor"]["kind"], "api_credential");
    assert_eq!(verify[0]["actor"]["name"], "admin");
    assert!(
        verify[0]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(verify[0]["client"], "127.0.0.1");

    // target: by id and by name, only that object's events.
    for target in [aircall_id.as_str(), "Aircall"] {
        let page = expect(
            app.admin(Method::GET, &with_query("/v1/audit?", "target", target)),
            200,
        )
        .await;
        let items = page["items"].as_array().unwrap();
        let actions: BTreeSet<&str> = items
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains("credential.create") && actions.contains("credential.verify"),
            "{actions:?}"
        );
        assert!(
            items
                .iter()
                .all(|e| e["target"]["id"] == aircall_id.as_str())
        );
    }

    // actor: by name and by id, only that API credential's events.
    for actor in ["etl", etl_id.as_str()] {
        let page = expect(
            app.admin(Method::GET, &with_query("/v1/audit?", "actor", actor)),
            200,
        )
        .await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["action"], "credential.describe");
        assert_eq!(items[0]["actor"]["id"], etl_id.as_str());
    }

    // since: every event at or after the time, and none before. The time is the earliest one
    // after the oldest event's (events made in the same millisecond share a time), so that at
    // least the oldest is left out whenever the events are not all of one millisecond.
    let at = |e: &serde_json::Value| e["at"].as_str().unwrap().to_owned();
    let oldest = events.iter().map(at).min().unwrap();
    let since = events
        .iter()
        .map(at)
        .filter(|t| *t > oldest)
        .min()
        .unwrap_or_else(|| oldest.clone());
    let since = since.as_str();
    let page = expect(
        app.admin(
            Method::GET,
            &with_query("/v1/audit?limit=200&", "since", since),
        ),
        200,
    )
    .await;
    let expected: Vec<String> = events
        .iter()
        .filter(|e| e["at"].as_str().unwrap() >= since)
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(expected.len() < events.len() || since == oldest.as_str());
    assert_eq!(ids(&page), expected);
    let far = expect(
        app.admin(Method::GET, "/v1/audit?since=2999-01-01T00:00:00Z"),
        200,
    )
    .await;
    assert!(far["items"].as_array().unwrap().is_empty());
    let bad = expect(app.admin(Method::GET, "/v1/audit?since=yesterday"), 422).await;
    assert_eq!(bad["field"], "since");

    // The cursor: pages of two, newest first, are the whole log without a repeat.
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(cursor) => with_query("/v1/audit?limit=2&", "before", cursor),
            None => "/v1/audit?limit=2".to_owned(),
        };
        let page = expect(app.admin(Method::GET, &path), 200).await;
        assert!(page["items"].as_array().unwrap().len() <= 2);
        paged.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
    }
    // The page requests were authenticated reads; they added no event.
    assert_eq!(paged, ids(&all));

    // A failed authentication is recorded, with its cause and client, never the token.
    let failures = expect(app.admin(Method::GET, "/v1/audit?action=auth.failure"), 200).await;
    let failure = &failures["items"][0];
    assert_eq!(failure["outcome"], "failure", "{failures}");
    assert_eq!(failure["client"], "127.0.0.1");
    assert!(
        failure["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(failure["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(!failures.to_string().contains(wrong));

    // Append-only: no method changes it.
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let response = app
            .admin(method.clone(), "/v1/audit")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let (status, problem) = read(response).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(problem["code"], "method_not_allowed");
        let path = format!("/v1/audit/{}", events[0]["id"].as_str().unwrap());
        let (status, _) = read(app.admin(method, &path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let after = expect(app.admin(Method::GET, "/v1/audit?limit=200"), 200).await;
    let after = ids(&after);
    assert!(after.ends_with(&ids(&all)), "no event went away");
}

async fn a_request_over_the_timeout_answers_408_and_the_proxy_is_not_cut(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall").await;
    let server = latchkey_server::Application::bind(
        "127.0.0.1:0".parse().unwrap(),
        latchkey_server::AppState::new(app.lk.clone())
            .with_request_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    let url = |path: &str| format!("http://{addr}{path}");

    app.sandbox.set_latency(Duration::from_millis(1200));
    let started = std::time::Instant::now();
    let response = app
        .client
        .post(url("/v1/credentials"))
        .bearer_auth(&app.admin_token)
        .json(&app.demo_body("aircall", "Slow"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(1100));
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let (status, problem) = read(response).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{problem}");
    assert_eq!(problem["code"], "request_timeout");
    // A proxied request has its own limits: it waits for the provider.
    let response = app
        .client
        .get(url(&format!(
            "/v1/proxy/{}/v1/ping",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.sandbox.set_latency(Duration::ZERO);
    // The abandoned create stored nothing.
    let list = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Aircall"]);
}

/// Found by schemathesis once the proxy's header was documented: a huge wait is clamped, not a
/// dropped connection.
async fn any_max_wait_header_gets_an_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (value, status) in [
        ("1e300", 404),
        ("18446744073709551616", 404),
        ("300.5", 404),
        ("0", 404),
        ("-1", 400),
        ("NaN", 400),
        ("inf", 400),
        ("soon", 400),
    ] {
        let problem = expect(
            app.admin(Method::GET, "/v1/proxy/no-such-credential/v1/ping")
                .header("x-latchkey-max-wait", value),
            status,
        )
        .await;
        if status == 400 {
            assert_eq!(problem["field"], "X-Latchkey-Max-Wait", "{value}");
        }
    }
}

latchkey_testdb::backend_tests!(
    any_max_wait_header_gets_an_answer,
    the_openapi_document_and_the_router_agree_on_every_route,
    every_write_honours_if_match,
    no_body_route_takes_a_field_it_does_not_own,
    the_audit_log_filters_pages_and_is_append_only,
    a_request_over_the_timeout_answers_408_and_the_proxy_is_not_cut,
);
