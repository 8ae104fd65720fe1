//! Helpers shared by the integration tests: a real sandbox on port 0 and a
//! real HTTP client.
#![allow(dead_code)]

use latchkey_sandbox::{Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use serde_json::Value;

pub async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

pub fn url(sandbox: &Sandbox, provider: &str, path: &str) -> String {
    format!(
        "{}{path}",
        sandbox.base_url(provider).expect("known provider")
    )
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `request` and read the answer; the body must be JSON.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request is answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body reads");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"));
    Answer {
        status,
        headers,
        body,
    }
}

/// `GET` `path` of `provider` with the given headers.
pub async fn get(
    sandbox: &Sandbox,
    provider: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = client().get(url(sandbox, provider, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request).await
}

/// A sandbox with `scenario`.
pub async fn start_with(scenario: latchkey_sandbox::Scenario) -> Sandbox {
    Sandbox::start_with(SandboxConfig::default(), scenario)
        .await
        .expect("sandbox starts")
}

/// A scenario with these volumes and no rate limits (for data walks).
pub fn unlimited(volumes: latchkey_sandbox::Volumes) -> latchkey_sandbox::Scenario {
    latchkey_sandbox::Scenario {
        volumes,
        rate_limits: latchkey_sandbox::RateLimits::off(),
        ..latchkey_sandbox::Scenario::default()
    }
}

/// `GET` of `path_or_url` (a path on `provider`, or an absolute URL from a
/// paging link) with `provider`'s working credentials.
pub fn authed(
    client: &reqwest::Client,
    sandbox: &Sandbox,
    provider: &str,
    path_or_url: &str,
) -> reqwest::RequestBuilder {
    let target = if path_or_url.starts_with("http") {
        path_or_url.to_owned()
    } else {
        url(sandbox, provider, path_or_url)
    };
    let demo = sandbox.demo();
    let request = client.get(target);
    match provider {
        "chorus" => request.header("Authorization", &demo.chorus_token),
        "aircall" => request.basic_auth(&demo.aircall_api_id, Some(&demo.aircall_api_token)),
        "ccai-platform" => request.basic_auth(&demo.ccai_subdomain, Some(&demo.ccai_api_token)),
        "clari-copilot" => request
            .header("X-Api-Key", &demo.clari_api_key)
            .header("X-Api-Password", &demo.clari_api_password),
        other => panic!("unknown provider {other}"),
    }
}

/// `authed` and read the JSON answer.
pub async fn fetch(
    client: &reqwest::Client,
    sandbox: &Sandbox,
    provider: &str,
    path_or_url: &str,
) -> Answer {
    send(authed(client, sandbox, provider, path_or_url)).await
}
