//! `latchkey serve --sandbox` as a process: first start prints the URL, the demo credentials and the
//! one-time admin token; a full create → verify → proxy → regenerate cycle at the most verbose log
//! level leaves no secret, token, master key or database password in any output (on both
//! backends); SIGTERM stops it cleanly; a restart prints no token.

mod common;

use base64::Engine as _;
use common::serve::Served;
use latchkey_testdb::{Backend, TestDb};

/// At the most verbose log level, on the test database's backend (its data directory holds the
/// key file either way).
fn start_on(db: &TestDb) -> Served {
    let mut env = vec![("LATCHKEY_LOG", "trace")];
    let url = db.database_url();
    if let Some(url) = &url {
        env.push(("LATCHKEY_DATABASE_URL", url));
    }
    start_with(&db.data_dir(), &env)
}

fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    let mut cmd = common::latchkey(data_dir);
    cmd.args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied());
    Served::start(cmd)
}

/// A path under each seed provider that its sandbox answers 200 to, for a proxied GET.
fn proxied_get_path(provider: &str) -> &'static str {
    match provider {
        "chorus" => "/api/v1/users/me",
        "aircall" => "/v1/ping",
        "ccai-platform" => "/manager/api/v1/agents?per=1",
        "clari-copilot" => "/users",
        other => panic!("no proxied path for {other}"),
    }
}

/// The master key lines of a key file (comments and blank lines left out).
fn key_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

async fn serve_with_sandbox_logs_no_secret_at_the_most_verbose_level(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_on(&db);
    let admin = server
        .admin
        .clone()
        .expect("first start prints the admin token");
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("will not be shown again"))
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("{}{p}", server.url);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // Every secret, and the forms it could be sent in: Basic credentials pair it with the
    // workspace (Latchkey's own tokens) or with the provider's other fields (e.g. Aircall's
    // `api_id:api_token`).
    let mut secrets = vec![admin.clone()];
    let mut pairs = Vec::new();
    let mut responses = Vec::new();
    let mut ids = Vec::new();
    for (provider, fields) in &server.demo {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        for (k, v) in fields {
            if ["api_token", "api_password"].contains(&k.as_str()) {
                secrets.push(v.clone());
                for (_, other) in fields.iter().filter(|(o, _)| o != k) {
                    pairs.push(b64(&format!("{other}:{v}")));
                }
            }
        }
        let response = client
            .post(url("/v1/credentials"))
            .basic_auth("default", Some(&admin))
            .json(&serde_json::json!({"provider": provider, "name": provider, "fields": map}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let verified = client
            .post(url(&format!("/v1/credentials/{id}/verify")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(verified.status(), 200);
        responses.push(verified.text().await.unwrap());
        ids.push((provider.clone(), id));
    }

    // Through the proxy: a GET to each provider, with its auth injected, and a POST with a body.
    for (provider, _) in &ids {
        let proxied = client
            .get(url(&format!(
                "/v1/proxy/{provider}{}",
                proxied_get_path(provider)
            )))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), 200, "proxied GET to {provider}");
        responses.push(format!("{:?}", proxied.headers()));
        responses.push(proxied.text().await.unwrap());
    }
    let posted = client
        .post(url("/v1/proxy/chorus/v3/engagements"))
        .basic_auth("default", Some(&admin))
        .json(&serde_json::json!({"engagement": "from the proxy test"}))
        .send()
        .await
        .unwrap();
    let status = posted.status();
    assert!(
        status.is_client_error() && status != 401,
        "the sandbox answers the proxied POST itself (it has no POST route): {status}"
    );
    responses.push(format!("{:?}", posted.headers()));
    responses.push(posted.text().await.unwrap());

    // A credential's secret replaced, then proxied with (the sandbox refuses the new value).
    let replaced = "lk-replaced-chorus-token-5e1f0a9c7d";
    secrets.push(replaced.to_owned());
    let chorus = &ids.iter().find(|(p, _)| p == "chorus").unwrap().1;
    let put = client
        .put(url(&format!(
            "/v1/credentials/{chorus}/secrets?verify=false"
        )))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"fields": {"api_token": replaced}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    responses.push(put.text().await.unwrap());
    let proxied = client
        .get(url("/v1/proxy/chorus/api/v1/users/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        proxied.status(),
        401,
        "the provider refuses the replaced secret"
    );
    responses.push(proxied.text().await.unwrap());

    // An API credential issued, then regenerated.
    let issued: serde_json::Value = client
        .post(url("/v1/api-credentials"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "etl"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let etl = issued["token"].as_str().unwrap().to_owned();
    secrets.push(etl.clone());
    let id = issued["api_credential"]["id"].as_str().unwrap();
    let regenerated: serde_json::Value = client
        .post(url(&format!("/v1/api-credentials/{id}/regenerate")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_etl = regenerated["token"].as_str().unwrap().to_owned();
    secrets.push(new_etl.clone());
    assert_eq!(
        client
            .get(url("/v1/credentials"))
            .bearer_auth(&etl)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(url("/v1/credentials"))
            .bearer_auth(&new_etl)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let proxied = client
        .get(url("/v1/proxy/aircall/v1/ping"))
        .basic_auth("default", Some(&new_etl))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200, "the regenerated token proxies");
    responses.push(proxied.text().await.unwrap());
    for path in ["/v1/credentials", "/v1/audit?limit=200", "/metrics"] {
        responses.push(
            client
                .get(url(path))
                .bearer_auth(&new_etl)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }

    let stdout = server.stdout.join("\n");
    let (code, stderr) = server.stop_with("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("TRACE"),
        "the log is at the most verbose level"
    );
    assert!(
        stderr.contains("/v1/proxy/"),
        "the log speaks of the proxied requests"
    );
    assert!(stderr.contains("Latchkey stopped"));

    // The master key (as written in the key file, and its bytes in hex) and the database
    // password are secrets that appear nowhere, not even on stdout.
    let mut hidden = Vec::new();
    for line in key_lines(&db.data_dir().join("master.key")) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&line)
            .expect("a key line is base64");
        hidden.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        hidden.push(line);
    }
    assert!(!hidden.is_empty(), "the key file holds a key");
    if let Some(password) = db
        .database_url()
        .and_then(|u| url::Url::parse(&u).ok()?.password().map(str::to_owned))
    {
        hidden.push(password);
    }
    for secret in &hidden {
        assert!(
            !stderr.contains(secret.as_str()),
            "the log holds a key or password"
        );
        assert!(
            !stdout.contains(secret.as_str()),
            "stdout holds a key or password"
        );
        for r in &responses {
            assert!(
                !r.contains(secret.as_str()),
                "a response holds a key or password"
            );
        }
    }

    for secret in &secrets {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for form in [
            secret.clone(),
            b64(secret),
            hex,
            b64(&format!("default:{secret}")),
        ] {
            assert!(!stderr.contains(&form), "the log holds a secret");
            for r in &responses {
                assert!(!r.contains(&form), "a response holds a secret: {r}");
            }
        }
        // stdout shows the sandbox's demo values and the admin token once, never an issued token.
        if *secret == etl || *secret == new_etl || secret == replaced {
            assert!(!stdout.contains(secret.as_str()));
        }
    }
    for pair in &pairs {
        assert!(
            !stderr.contains(pair.as_str()),
            "the log holds an Authorization value"
        );
        for r in &responses {
            assert!(
                !r.contains(pair.as_str()),
                "a response holds an Authorization value"
            );
        }
    }
    assert_eq!(stdout.matches(admin.as_str()).count(), 1);

    assert_eq!(
        db.data_dir().join("latchkey.db").exists(),
        backend == Backend::Sqlite,
        "served from the backend under test"
    );

    // A restart on the same data prints no token.
    let again = start_on(&db);
    assert!(again.admin.is_none());
    let (code, _) = again.stop_with("TERM");
    assert_eq!(code, 0);
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    serve_with_sandbox_logs_no_secret_at_the_most_verbose_level,
);

fn request_id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_on_every_request_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        &dir.path().join("data"),
        &[("LATCHKEY_LOG", "info"), ("LATCHKEY_LOG_FORMAT", "json")],
    );
    let admin = server.admin.clone().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(format!("{}/v1/credentials?verify=false", server.url))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"provider": "chorus", "name": "Chorus", "fields": {"api_token": "lk-json-log-token-1234"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let request_id = request_id_of(&response);
    // A proxied request is served without the router: its lines carry its id and route too.
    let refused = client
        .get(format!("{}/v1/proxy/Chorus/v3/engagements", server.url))
        .bearer_auth("lkt_not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let proxy_request_id = request_id_of(&refused);
    let (code, stderr) = server.stop_with("TERM");
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let created = lines
        .iter()
        .find(|l| l["fields"]["message"] == "credential created")
        .expect("a JSON line for the create");
    assert_eq!(
        created["span"]["request_id"],
        request_id.as_str(),
        "{created}"
    );
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "authentication failed")
        .expect("a JSON line for the refused proxied request");
    assert_eq!(
        failed["span"]["request_id"],
        proxy_request_id.as_str(),
        "{failed}"
    );
    assert_eq!(
        failed["span"]["route"], "/v1/proxy/{credential}/{*path}",
        "{failed}"
    );
    assert!(!stderr.contains("lk-json-log-token-1234"));
    assert!(!stderr.contains(&admin));
}
