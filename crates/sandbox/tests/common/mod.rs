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
