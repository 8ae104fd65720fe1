//! Crash safety: a burst of credential creates against `latchkey serve`, the server SIGKILLed in
//! the middle of it, restarted on the same data — and every create that was answered 201 is there.
//! And PostgreSQL going away under a running `latchkey serve`: requests answer 503 meanwhile and
//! succeed again once it is back, with no restart of Latchkey.

mod common;

use common::Env;
use common::serve::Served;
use latchkey_testdb::Backend;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

/// Start `latchkey serve` on the test's data, its log at `warn` and thrown away.
fn serve(env: &Env) -> Served {
    let mut command = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("LATCHKEY_LOG", "warn");
    Served::start_with_stderr(command, Stdio::null())
}

async fn every_create_answered_201_survives_a_sigkill_mid_burst(backend: Backend) {
    let env = Env::on(backend).await;
    let server = serve(&env);
    let (url, token) = (server.url.clone(), server.admin.clone());
    let token = token.expect("a new database gets an admin token");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let (client, url, token, created) =
            (client.clone(), url.clone(), token.clone(), created.clone());
        let demo = env.demo().chorus_token.clone();
        writers.spawn(async move {
            for n in 0.. {
                let name = format!("Crash {writer}-{n}");
                let answer = client
                    .post(format!("{url}/v1/credentials?verify=false"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "provider": "chorus", "name": name, "fields": {"api_token": demo}
                    }))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 201 => created.lock().unwrap().push(name),
                    Ok(r) => panic!("unexpected answer {}", r.status()),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        });
    }
    // Kill it once the burst is well under way.
    while created.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill(); // SIGKILL
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let answered: Vec<String> = created.lock().unwrap().clone();
    assert!(answered.len() >= 200);

    let server = serve(&env);
    let url = server.url.clone();
    assert!(server.admin.is_none(), "a restart prints no token");
    let mut stored = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(a) => format!("?limit=100&after={a}"),
            None => "?limit=100".to_owned(),
        };
        let request = client
            .get(format!("{url}/v1/credentials{query}"))
            .bearer_auth(&token);
        let page: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        for c in page["items"].as_array().unwrap() {
            stored.insert(c["name"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let lost: Vec<&String> = answered.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "answered 201 but gone after the crash: {lost:?}"
    );
    server.kill();
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_create_answered_201_survives_a_sigkill_mid_burst,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_serve_answers_503_and_passes_without_a_restart() {
    let env = Env::on(Backend::Postgres).await;
    let gate = env.db.gate().await;
    let log = env.dir().join("serve.log");
    let mut command = env.command_with_url_in_environment(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("LATCHKEY_DATABASE_URL", env.db.database_url_through(&gate));
    let mut server = Served::start_with_stderr(command, std::fs::File::create(&log).unwrap());
    let (url, token) = (server.url.clone(), server.admin.clone());
    let token = token.expect("a new database gets an admin token");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let create = |name: &str| {
        client
            .post(format!("{url}/v1/credentials?verify=false"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "provider": "chorus", "name": name, "fields": {"api_token": env.demo().chorus_token}
            }))
            .send()
    };
    assert_eq!(create("Before").await.unwrap().status(), 201);

    gate.close();
    let mut answers = Vec::new();
    for path in ["/v1/credentials", "/v1/credentials/Before", "/readyz"] {
        let started = std::time::Instant::now();
        let response = client
            .get(format!("{url}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        answers.push(response.text().await.unwrap());
    }
    let refused = create("During").await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "store_unavailable", "{body}");
    answers.push(body.to_string());
    let healthz = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200, "the process is up");

    gate.open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let response = client
            .get(format!("{url}/v1/credentials/Before"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(create("After").await.unwrap().status(), 201);
    let list: serde_json::Value = client
        .get(format!("{url}/v1/credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(
        names.contains(&"Before") && names.contains(&"After"),
        "{list}"
    );
    assert!(server.running(), "Latchkey was not restarted");
    server.kill();

    // Neither the answers nor the log give the database's password or a secret away.
    let logged = std::fs::read_to_string(&log).unwrap();
    for secret in env.secrets().iter().chain([&token]) {
        assert!(!logged.contains(secret.as_str()), "the log holds a secret");
        for answer in &answers {
            assert!(!answer.contains(secret.as_str()), "{answer}");
        }
    }
}
