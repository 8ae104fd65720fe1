//! Two `latchkey serve` processes on one PostgreSQL database behave as one: a change made through
//! instance A — a secret replaced, a credential disabled or deleted, an API credential disabled or
//! regenerated — takes effect on instance B (its caches, its authentication, its proxy) within a
//! second. B has just used what A changes, so without the change feed its caches would still
//! answer (credential reads for up to two seconds, verified tokens for five). Under 2 instances ×
//! 50 writers editing the same credentials with `If-Match`, no update is lost and every conflict
//! answers 412; racing creates of one name through both instances make exactly one credential.

mod common;

use base64::Engine as _;
use common::Env;
use common::serve::Served;
use latchkey_testdb::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `latchkey serve` of its own on the test's database, logging to `NAME.log`.
fn serve(env: &Env, name: &str) -> Served {
    let log = std::fs::File::create(env.dir().join(format!("{name}.log"))).unwrap();
    Served::start_with_stderr(env.command(&["serve", "--listen", "127.0.0.1:0"]), log)
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
        at: &Served,
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

    async fn get(&self, at: &Served, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, at, path, token, None).await
    }

    async fn post(&self, at: &Served, path: &str, token: &str, body: Value) -> Value {
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

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn admin_token(env: &Env) -> String {
    let added = env.run(&["api-credentials", "add", "Ops", "--role", "admin"], "");
    token_of(&added.ok().stdout)
}

/// Neither instance's log (at debug level) holds a secret the test used, nor `tokens`.
fn assert_no_secret_in_logs(env: &Env, tokens: &[&str]) {
    for name in ["a", "b"] {
        let log = std::fs::read_to_string(env.dir().join(format!("{name}.log"))).unwrap();
        for secret in env
            .secrets()
            .iter()
            .map(String::as_str)
            .chain(tokens.iter().copied())
        {
            assert!(
                !log.contains(secret),
                "instance {name}'s log holds a secret"
            );
        }
    }
}

const CREDENTIALS: usize = 5;
const WRITERS: usize = 100;
const WRITES_EACH: usize = 3;

/// What one writer saw: every PATCH answer, and for each accepted one the revision it made and
/// the token it appended.
#[derive(Default)]
struct Writes {
    answers: Vec<u16>,
    accepted: Vec<(i64, String)>,
}

/// Read (GET → ETag and description), modify (append this writer's token), write (PATCH with
/// If-Match), again on 412, until `WRITES_EACH` writes were accepted.
async fn write_until_accepted(
    http: reqwest::Client,
    url: String,
    token: String,
    me: usize,
) -> Writes {
    let mut seen = Writes::default();
    for n in 0..WRITES_EACH {
        let mark = format!("w{me}.{n}");
        loop {
            let read = http.get(&url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(read.status(), StatusCode::OK);
            let etag = read.headers()["etag"].to_str().unwrap().to_owned();
            let body: Value = read.json().await.unwrap();
            let description = body["description"].as_str().unwrap_or_default();
            let changed = format!("{description} {mark}").trim().to_owned();
            let write = http
                .patch(&url)
                .bearer_auth(&token)
                .header("if-match", &etag)
                .json(&json!({"description": changed}))
                .send()
                .await
                .unwrap();
            let status = write.status();
            seen.answers.push(status.as_u16());
            let body: Value = write.json().await.unwrap();
            match status {
                StatusCode::OK => {
                    assert_eq!(
                        body["revision"].as_i64().unwrap(),
                        etag.trim_matches('"').parse::<i64>().unwrap() + 1,
                        "an accepted write makes the revision after the one it read"
                    );
                    seen.accepted
                        .push((body["revision"].as_i64().unwrap(), mark));
                    break;
                }
                StatusCode::PRECONDITION_FAILED => {
                    assert_eq!(body["code"], "stale_revision", "{body}");
                }
                other => panic!("a write answered {other}: {body}"),
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_writers_on_each_instance_lose_no_update_and_conflicts_answer_412() {
    let env = Env::on(Backend::Postgres).await;
    let admin = admin_token(&env);
    let a = serve(&env, "a");
    let b = serve(&env, "b");
    let http = client();
    let mut created = Vec::new();
    for i in 0..CREDENTIALS {
        let answer = http
            .post(format!("{}/v1/credentials?verify=false", a.url))
            .bearer_auth(&admin)
            .json(&json!({
                "provider": "chorus",
                "name": format!("Shared {i}"),
                "fields": {"api_token": env.demo().chorus_token},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let body: Value = answer.json().await.unwrap();
        created.push((
            body["id"].as_str().unwrap().to_owned(),
            body["revision"].as_i64().unwrap(),
        ));
    }

    // Writer w works through instance A or B by turns, on credential w / 2 % CREDENTIALS: each
    // credential has as many writers on A as on B.
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let at = if w % 2 == 0 { &a } else { &b };
        let credential = (w / 2) % CREDENTIALS;
        let url = format!("{}/v1/credentials/{}", at.url, created[credential].0);
        let task = write_until_accepted(http.clone(), url, admin.clone(), w);
        writers.spawn(async move { (credential, task.await) });
    }
    let mut answers = BTreeMap::<u16, usize>::new();
    let mut accepted = vec![Vec::<(i64, String)>::new(); CREDENTIALS];
    while let Some(done) = writers.join_next().await {
        let (credential, seen) = done.unwrap();
        for status in seen.answers {
            *answers.entry(status).or_default() += 1;
        }
        accepted[credential].extend(seen.accepted);
    }
    let elapsed = started.elapsed();
    assert_eq!(
        answers.keys().copied().collect::<Vec<_>>(),
        [200, 412],
        "only 200 and 412, and conflicts did happen: {answers:?}"
    );
    assert_eq!(answers[&200], WRITERS * WRITES_EACH);

    for (credential, (id, first)) in created.iter().enumerate() {
        let accepted = &accepted[credential];
        let count = accepted.len() as i64;
        assert_eq!(count as usize, WRITERS / CREDENTIALS * WRITES_EACH);
        // Every accepted write made its own revision, one after another from the first.
        let revisions: BTreeSet<i64> = accepted.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            revisions,
            (first + 1..=first + count).collect::<BTreeSet<i64>>(),
            "two writes were accepted at one revision"
        );
        // Both instances show the last one, holding every accepted write's token.
        for at in [&a, &b] {
            let url = format!("{}/v1/credentials/{id}", at.url);
            let wanted = first + count;
            let mut body = Value::Null;
            let started = Instant::now();
            while body["revision"].as_i64() != Some(wanted) {
                assert!(started.elapsed() < Duration::from_secs(1), "{body}");
                let answer = http.get(&url).bearer_auth(&admin).send().await.unwrap();
                body = answer.json().await.unwrap();
            }
            let tokens: BTreeSet<&str> = body["description"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .collect();
            let marks: BTreeSet<&str> = accepted.iter().map(|(_, m)| m.as_str()).collect();
            assert_eq!(tokens, marks, "an accepted write was lost");
        }
    }
    eprintln!(
        "{} writes in {elapsed:?}: {answers:?}",
        answers.values().sum::<usize>()
    );
    assert_no_secret_in_logs(&env, &[&admin]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_of_one_name_through_both_instances_make_one_credential() {
    let env = Env::on(Backend::Postgres).await;
    let admin = admin_token(&env);
    let a = serve(&env, "a");
    let b = serve(&env, "b");
    let http = client();
    let names = ["Racing Name", "racing name", "RACING NAME"];
    let gate = Arc::new(tokio::sync::Barrier::new(40));
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..40 {
        let request = http
            .post(format!(
                "{}/v1/credentials?verify=false",
                if i % 2 == 0 { &a.url } else { &b.url }
            ))
            .bearer_auth(&admin)
            .json(&json!({
                "provider": "aircall",
                "name": names[i % names.len()],
                "fields": {"api_id": env.demo().aircall_api_id, "api_token": env.demo().aircall_api_token},
            }));
        let gate = gate.clone();
        creates.spawn(async move {
            gate.wait().await;
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        });
    }
    let mut answers = BTreeMap::<u16, usize>::new();
    while let Some(done) = creates.join_next().await {
        let (status, body) = done.unwrap();
        *answers.entry(status).or_default() += 1;
        if status == 409 {
            assert_eq!(body["code"], "duplicate_name", "{body}");
        }
    }
    assert_eq!(answers, BTreeMap::from([(201, 1), (409, 39)]));
    for at in [&a, &b] {
        let list: Value = http
            .get(format!("{}/v1/credentials?limit=100", at.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(
            items[0]["name"].as_str().unwrap().to_lowercase(),
            "racing name"
        );
    }
    assert_no_secret_in_logs(&env, &[&admin]);
}
