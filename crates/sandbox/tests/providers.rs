//! Each simulated provider's auth semantics, verification answer and error
//! bodies, over real sockets.

mod common;

use common::{client, get, send, start, url};
use latchkey_sandbox::{Sandbox, SandboxConfig, Scenario, Volumes};
use serde_json::json;

// ---------------------------------------------------------------- chorus

const ME: &str = "/api/v1/users/me";

fn assert_chorus_error(answer: &common::Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.api+json")
    );
    let errors = answer.body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["status"], json!(status.to_string()));
    assert_eq!(errors[0]["code"], json!(code));
    assert!(errors[0]["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(errors[0]["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn chorus_raw_token_gets_the_user() {
    let sb = start().await;
    let token = sb.demo().chorus_token.clone();
    let answer = get(&sb, "chorus", ME, &[("Authorization", &token)]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.api+json")
    );
    let data = &answer.body["data"];
    assert_eq!(data["type"], "user");
    assert!(data["id"].is_string());
    let attributes = &data["attributes"];
    assert_eq!(attributes["email"], "ada.lovelace@example.com");
    assert_eq!(attributes["name"], "Ada Lovelace");
    assert_eq!(attributes["first_name"], "Ada");
    assert_eq!(attributes["last_name"], "Lovelace");
    assert_eq!(attributes["role"], "admin");
    sb.shutdown().await;
}

#[tokio::test]
async fn chorus_rejects_bearer_missing_and_wrong_tokens_with_401() {
    let sb = start().await;
    let token = sb.demo().chorus_token.clone();
    let bearer = format!("Bearer {token}");
    let lower_bearer = format!("bearer {token}");
    let longer = format!("{token}x");
    for headers in [
        vec![("Authorization", bearer.as_str())],
        vec![("Authorization", lower_bearer.as_str())],
        vec![],
        vec![("Authorization", "")],
        vec![("Authorization", "lk-sandbox-chorus-00000000000000000000")],
        vec![("Authorization", longer.as_str())],
        vec![("X-Api-Key", token.as_str())],
    ] {
        let answer = get(&sb, "chorus", ME, &headers).await;
        assert_chorus_error(&answer, 401, "ZI0001");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn chorus_user_without_api_role_gets_403() {
    let sb = start().await;
    let token = sb.demo().chorus_no_api_token.clone();
    let answer = get(&sb, "chorus", ME, &[("Authorization", &token)]).await;
    assert_chorus_error(&answer, 403, "ZI0003");
    let detail = answer.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("role"), "{detail}");
    assert!(detail.contains("API access"), "{detail}");
    sb.shutdown().await;
}

#[tokio::test]
async fn chorus_serves_only_the_official_path_and_method() {
    let sb = start().await;
    let token = sb.demo().chorus_token.clone();
    // The seed's /api/v1/me is not in the official spec.
    let answer = get(&sb, "chorus", "/api/v1/me", &[("Authorization", &token)]).await;
    assert_chorus_error(&answer, 404, "ZI0004");

    let answer = send(
        client()
            .post(url(&sb, "chorus", ME))
            .header("Authorization", &token),
    )
    .await;
    assert_chorus_error(&answer, 405, "ZI0005");
    assert!(answer.header("allow").is_some_and(|a| a.contains("GET")));
    sb.shutdown().await;
}

// ---------------------------------------------------------------- aircall

#[tokio::test]
async fn aircall_basic_auth_pings() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let answer = send(
        client()
            .get(url(&sb, "aircall", "/v1/ping"))
            .basic_auth(&demo.aircall_api_id, Some(&demo.aircall_api_token)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"ping": "pong"}));
    sb.shutdown().await;
}

#[tokio::test]
async fn aircall_missing_credentials_401_wrong_ones_403() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let ping = url(&sb, "aircall", "/v1/ping");

    let answer = send(client().get(&ping)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, json!({"message": "Unauthorized"}));

    let wrong = [
        client()
            .get(&ping)
            .basic_auth("someoneelse", Some(&demo.aircall_api_token)),
        client().get(&ping).basic_auth(
            &demo.aircall_api_id,
            Some("lk-sandbox-aircall-0000000000000000"),
        ),
        client()
            .get(&ping)
            .basic_auth(&demo.aircall_api_id, None::<&str>),
        client()
            .get(&ping)
            .basic_auth(&demo.aircall_api_token, Some(&demo.aircall_api_id)),
        client().get(&ping).bearer_auth(&demo.aircall_api_token),
        client()
            .get(&ping)
            .header("Authorization", "Basic !!!not-base64"),
        client().get(&ping).header("Authorization", ""),
    ];
    for request in wrong {
        let answer = send(request).await;
        assert_eq!(answer.status, 403, "{:?}", answer.body);
        assert_eq!(answer.body, json!({"message": "Forbidden"}));
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn aircall_unknown_path_and_wrong_method() {
    let sb = start().await;
    let answer = get(&sb, "aircall", "/v1/nope", &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"], "Not found");
    assert!(
        answer.body["troubleshoot"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let answer = send(client().delete(url(&sb, "aircall", "/v1/ping"))).await;
    assert_eq!(answer.status, 405);
    assert!(answer.body["error"].is_string());
    assert!(answer.body["troubleshoot"].is_string());
    sb.shutdown().await;
}

// ---------------------------------------------------------------- ccai-platform

const ORG: &str = "/manager/api/v1/settings/organization";

fn assert_ccai_401(answer: &common::Answer) {
    assert_eq!(answer.status, 401, "{:?}", answer.body);
    assert_eq!(answer.body["error"], "Unauthorized");
    assert_eq!(answer.body["status"], 401);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn ccai_subdomain_and_token_get_the_organization() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let answer = send(
        client()
            .get(url(&sb, "ccai-platform", ORG))
            .basic_auth(&demo.ccai_subdomain, Some(&demo.ccai_api_token)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["id"], 1);
    assert_eq!(answer.body["name"], "Acme Contact Center");
    assert_eq!(answer.body["subdomain"], "acme");
    assert_eq!(answer.body["region"], "uc1");
    sb.shutdown().await;
}

#[tokio::test]
async fn ccai_agents_is_a_bare_array_paged_in_headers() {
    let scenario = Scenario {
        volumes: Volumes {
            ccai_agents: 3,
            ..Volumes::default()
        },
        ..Scenario::default()
    };
    let sb = Sandbox::start_with(SandboxConfig::default(), scenario)
        .await
        .unwrap();
    let demo = sb.demo().clone();
    let agents = |query: &str| {
        client()
            .get(url(
                &sb,
                "ccai-platform",
                &format!("/manager/api/v1/agents{query}"),
            ))
            .basic_auth(&demo.ccai_subdomain, Some(&demo.ccai_api_token))
    };
    let answer = send(agents("?per=1")).await;
    assert_eq!(answer.status, 200);
    let items = answer.body.as_array().expect("a bare JSON array");
    assert_eq!(items.len(), 1);
    assert!(items[0]["id"].is_number());
    assert!(items[0]["email"].is_string());
    assert_eq!(answer.header("total"), Some("3"));
    assert_eq!(answer.header("per-page"), Some("1"));
    let link = answer.header("link").expect("a next link");
    assert!(
        link.contains("page=2") && link.ends_with("rel=\"next\""),
        "{link}"
    );

    let answer = send(agents("")).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 3);
    assert_eq!(answer.header("link"), None);

    let answer = send(agents("?per=0")).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["status"], 400);

    let answer =
        send(client().get(url(&sb, "ccai-platform", "/manager/api/v1/agents?per=1"))).await;
    assert_ccai_401(&answer);
    sb.shutdown().await;
}

#[tokio::test]
async fn ccai_rejects_missing_and_wrong_credentials_with_401() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let org = url(&sb, "ccai-platform", ORG);
    for request in [
        client().get(&org),
        // right token, but the username is not the subdomain
        client()
            .get(&org)
            .basic_auth("globex", Some(&demo.ccai_api_token)),
        client()
            .get(&org)
            .basic_auth("ACME", Some(&demo.ccai_api_token)),
        client().get(&org).basic_auth(
            &demo.ccai_subdomain,
            Some("lk-sandbox-ccai-0000000000000000"),
        ),
        client().get(&org).bearer_auth(&demo.ccai_api_token),
    ] {
        assert_ccai_401(&send(request).await);
    }
    let answer = get(&sb, "ccai-platform", "/manager/api/v1/nope", &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["status"], 404);
    assert!(answer.body["error"].is_string() && answer.body["message"].is_string());
    sb.shutdown().await;
}

// ---------------------------------------------------------------- clari-copilot

const NOT_PROVIDED: &str =
    "Credentials not provided!, see documentation: https://api-doc.copilot.clari.com";
const INVALID: &str = "Invalid credentials, see documentation: https://api-doc.copilot.clari.com";

#[tokio::test]
async fn clari_both_headers_list_the_users() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let answer = get(
        &sb,
        "clari-copilot",
        "/users",
        &[
            ("X-Api-Key", &demo.clari_api_key),
            ("X-Api-Password", &demo.clari_api_password),
        ],
    )
    .await;
    assert_eq!(answer.status, 200);
    let users = answer.body["users"].as_array().expect("users array");
    assert!(users.len() >= 3);
    for user in users {
        for key in ["id", "email", "name", "role", "is_recording", "manager_id"] {
            assert!(user.get(key).is_some(), "{key} missing in {user}");
        }
        assert!(["REP", "MANAGER", "OBSERVER"].contains(&user["role"].as_str().unwrap()));
        assert!(user["is_recording"].is_boolean());
    }
    let manager = users.iter().find(|u| u["role"] == "MANAGER").unwrap();
    assert_eq!(manager["is_recording"], true);
    assert!(manager["manager_id"].is_null());
    sb.shutdown().await;
}

#[tokio::test]
async fn clari_either_header_alone_or_wrong_values_get_401() {
    let sb = start().await;
    let demo = sb.demo().clone();
    let key = demo.clari_api_key.as_str();
    let password = demo.clari_api_password.as_str();
    for headers in [
        vec![],
        vec![("X-Api-Key", key)],
        vec![("X-Api-Password", password)],
        vec![("X-Api-Key", key), ("X-Api-Password", "")],
    ] {
        let answer = get(&sb, "clari-copilot", "/users", &headers).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, json!({"errorMessage": NOT_PROVIDED}));
    }
    for headers in [
        vec![("X-Api-Key", key), ("X-Api-Password", "wrong")],
        vec![("X-Api-Key", "wrong"), ("X-Api-Password", password)],
        vec![("X-Api-Key", password), ("X-Api-Password", key)],
    ] {
        let answer = get(&sb, "clari-copilot", "/users", &headers).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, json!({"errorMessage": INVALID}));
    }
    let answer = get(&sb, "clari-copilot", "/nope", &[]).await;
    assert_eq!(answer.status, 404);
    assert!(answer.body["errorMessage"].is_string());
    sb.shutdown().await;
}
