//! Two `latchkey serve` processes on one PostgreSQL database behave as one: a change made through
//! instance A — a secret replaced, a credential disabled or deleted, an API credential disabled or
//! regenerated — takes effect on instance B (its caches, its authentication, its proxy) within a
//! second. B has just used what A changes, so without the change feed its caches would still
//! answer (credential reads for up to two seconds, verified tokens for five).

mod common;

use base64::Engine as _;
use common::Env;
use latchkey_testdb::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, name: &str) -> Instance {
    let log = std::fs::File::create(env.dir().join(format!("{name}.log"))).unwrap();
    let mut child = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Latchkey is listening on ") {
            url = Some(rest.trim().to_owned());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Instance {
        child,
        url: url.unwrap_or_else(|| panic!("instance {name} did not start")),
    }
}

fn token_of(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("lkt_") && w.len() == 42)
        .unwrap_or_else(|| panic!("no token in:\n{text}"))
        .to_owned()
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        at: &Instance,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", at.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, at: &Instance, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, at, path, token, None).await
    }

    async fn post(&self, at: &Instance, path: &str, token: &str, body: Value) -> Value {
        let (status, body) = self
            .send(reqwest::Method::POST, at, path, token, Some(body))
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

/// Poll `check` until it holds, failing after a second.
async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: instance B did not see it within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_takes_effect_on_the_other_within_a_second() {
    let env = Env::on(Backend::Postgres).await;
    env.add_demo("aircall", "Prod").ok();
    let admin = token_of(
        &env.run(&["api-credentials", "add", "Ops", "--role", "admin"], "")
            .ok()
            .stdout,
    );
    let member = token_of(
        &env.run(&["api-credentials", "add", "Pipeline"], "")
            .ok()
            .stdout,
    );
    let a = serve(&env, "a");
    let b = serve(&env, "b");
    let c = Client {
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };

    // A secret replaced through A: B's reads show it and B's proxy sends it.
    let (status, before) = c.get(&b, "/v1/credentials/Prod", &admin).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let (status, _) = c.get(&b, "/v1/proxy/Prod/v1/ping", &member).await;
    assert_eq!(status, StatusCode::OK);
    let replaced = "replaced-through-a-0000000000wxyz";
    let (status, body) = c
        .send(
            reqwest::Method::PUT,
            &a,
            "/v1/credentials/Prod/secrets?verify=false",
            &admin,
            Some(json!({"fields": {"api_token": replaced}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within_a_second("a replaced secret", async || {
        let (_, now) = c.get(&b, "/v1/credentials/Prod", &admin).await;
        now["revision"].as_i64() > before["revision"].as_i64()
    })
    .await;
    env.sandbox.clear_requests();
    c.get(&b, "/v1/proxy/Prod/v1/ping", &member).await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{replaced}", env.demo().aircall_api_id));
    let sent = env.sandbox.requests("aircall");
    assert!(
        sent.iter().any(|r| r
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.ends_with(&basic))),
        "B's proxy sent the replaced secret"
    );

    // A credential disabled, then deleted, through A.
    c.get(&b, "/v1/credentials/Prod", &admin).await;
    c.post(&a, "/v1/credentials/Prod/disable", &admin, json!({}))
        .await;
    within_a_second("a disabled credential", async || {
        let (_, now) = c.get(&b, "/v1/credentials/Prod", &admin).await;
        now["status"] == "disabled"
    })
    .await;
    let (status, _) = c.get(&b, "/v1/proxy/Prod/v1/ping", &member).await;
    assert_ne!(
        status,
        StatusCode::OK,
        "B's proxy refuses a disabled credential"
    );
    let (status, _) = c
        .send(
            reqwest::Method::DELETE,
            &a,
            "/v1/credentials/Prod",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    within_a_second("a deleted credential", async || {
        c.get(&b, "/v1/credentials/Prod", &admin).await.0 == StatusCode::NOT_FOUND
    })
    .await;

    // An API credential disabled, then regenerated, through A: B has just accepted its token.
    assert_eq!(
        c.get(&b, "/v1/credentials", &member).await.0,
        StatusCode::OK
    );
    c.post(
        &a,
        "/v1/api-credentials/Pipeline/disable",
        &admin,
        json!({}),
    )
    .await;
    within_a_second("a disabled API credential", async || {
        c.get(&b, "/v1/credentials", &member).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    c.post(&a, "/v1/api-credentials/Pipeline/enable", &admin, json!({}))
        .await;
    within_a_second("an enabled API credential", async || {
        c.get(&b, "/v1/credentials", &member).await.0 == StatusCode::OK
    })
    .await;
    let regenerated = c
        .post(
            &a,
            "/v1/api-credentials/Pipeline/regenerate",
            &admin,
            json!({}),
        )
        .await;
    let new_member = regenerated["token"].as_str().unwrap().to_owned();
    within_a_second("a regenerated API credential", async || {
        c.get(&b, "/v1/credentials", &member).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(
        c.get(&b, "/v1/credentials", &new_member).await.0,
        StatusCode::OK
    );
}
