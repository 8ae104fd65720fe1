//! `latchkey serve` as a process, against the test's own sandbox providers: SIGTERM and SIGINT let
//! a request in flight finish and exit 0; JSON logs, each request-scoped line with its request id;
//! `listen` from the config file and `LATCHKEY_LISTEN`; connections past the head timeout are
//! closed; the CLI's changes on the same data are audited as `operator`.

mod common;

use common::Env;
use common::serve::Served;
use latchkey_testdb::Backend;
use std::io::Read;
use std::ops::Deref;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server started on a new data directory, with the admin token it printed.
struct Server {
    served: Served,
    token: String,
    client: reqwest::Client,
}

/// Start `cmd` (a `latchkey … serve` command) on a new data directory.
fn spawn(cmd: std::process::Command) -> Server {
    let served = Served::start(cmd);
    let token = served
        .admin
        .clone()
        .expect("a first start prints the admin token");
    Server {
        served,
        token,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

fn serve(env: &Env) -> Server {
    spawn(env.command(&["serve", "--listen", "127.0.0.1:0"]))
}

impl Deref for Server {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

impl Server {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&self.token)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.token)
    }

    /// Send `signal` and wait for the process to end: its exit code and its stderr.
    async fn stop_with(self, signal: &str) -> (i32, String) {
        self.served.stop_with_async(signal).await
    }
}

/// The JSON body creating the sandbox's demo credential for `provider`.
fn demo_body(env: &Env, provider: &str, name: &str) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = env
        .demo()
        .fields(provider)
        .into_iter()
        .map(|(k, v, _)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    serde_json::json!({ "provider": provider, "name": name, "fields": fields })
}

/// Wait until the sandbox has received a request for `provider`.
async fn until_the_provider_is_asked(env: &Env, provider: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.sandbox.requests(provider).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached {provider}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_no_secret(env: &Env, text: &str) {
    for secret in env.secrets() {
        assert!(!text.contains(&secret), "a secret in the output:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_verification_in_flight_finish_and_exits_0() {
    let env = Env::new().await;
    let server = serve(&env);
    env.sandbox.set_latency(Duration::from_millis(1500));
    let request = server
        .post("/v1/credentials")
        .json(&demo_body(&env, "aircall", "Aircall"));
    let in_flight = tokio::spawn(async move { request.send().await });
    until_the_provider_is_asked(&env, "aircall").await;
    let admin = server.token.clone();
    let url = server.url.clone();
    let (code, stderr) = server.stop_with("TERM").await;
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["status"], "active");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Latchkey stopped"), "{stderr}");
    assert!(!stderr.contains(&admin));
    assert_no_secret(&env, &stderr);
    // It no longer listens.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(client.get(format!("{url}/healthz")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_lets_a_proxied_request_in_flight_finish_and_exits_0() {
    let env = Env::new().await;
    let server = serve(&env);
    let created = server
        .post("/v1/credentials")
        .json(&demo_body(&env, "aircall", "Aircall"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    env.sandbox.clear_requests();
    env.sandbox.set_latency(Duration::from_millis(1500));
    let request = server.get("/v1/proxy/Aircall/v1/ping");
    let in_flight = tokio::spawn(async move { request.send().await });
    until_the_provider_is_asked(&env, "aircall").await;
    let (code, stderr) = server.stop_with("INT").await;
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    assert!(!response.text().await.unwrap().is_empty());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Latchkey stopped"), "{stderr}");
    assert_no_secret(&env, &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_and_every_request_line_has_its_request_id() {
    let env = Env::new().await;
    env.set_env("LATCHKEY_LOG_FORMAT", "json");
    env.set_env("LATCHKEY_LOG", "debug");
    let server = serve(&env);
    let wrong = env.secret("lkt_not-a-real-token-at-all");
    let requests = [
        server.get("/healthz"),
        server.get("/v1/credentials"),
        server
            .post("/v1/credentials")
            .json(&demo_body(&env, "chorus", "Chorus")),
        server.get("/v1/credentials/Chorus"),
        server.get("/v1/credentials/nothing-here"),
        server
            .client
            .get(format!("{}/v1/credentials", server.url))
            .bearer_auth(&wrong),
    ];
    let mut ids = Vec::new();
    for request in requests {
        let response = request.send().await.unwrap();
        ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let admin = server.token.clone();
    let (code, stderr) = server.stop_with("TERM").await;
    assert_eq!(code, 0, "{stderr}");
    let mut seen = std::collections::BTreeSet::new();
    let mut lines = 0;
    for line in stderr.lines() {
        // The one plain line is the farewell after the log has ended.
        if line.is_empty() || line == "Latchkey stopped." {
            continue;
        }
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        lines += 1;
        let in_request = entry["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["name"] == "request"));
        if in_request {
            let id = entry["span"]["request_id"]
                .as_str()
                .or_else(|| {
                    entry["spans"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|s| s["name"] == "request")
                        .and_then(|s| s["request_id"].as_str())
                })
                .unwrap_or_else(|| panic!("a request line without its id: {line}"));
            assert!(ids.iter().any(|i| i == id), "an unknown request id: {line}");
            seen.insert(id.to_owned());
        }
    }
    assert!(lines > ids.len(), "{stderr}");
    // Every request logged at least one line, with its id.
    for id in &ids {
        assert!(seen.contains(id), "no line for request {id}:\n{stderr}");
    }
    // The create's own message and the failed authentication are request lines.
    for message in ["credential created", "authentication failed"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(message) && l.contains("request_id")),
            "{message}"
        );
    }
    assert!(!stderr.contains(&admin));
    assert_no_secret(&env, &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_comes_from_the_config_file_and_latchkey_listen_wins() {
    let env = Env::new().await;
    let config = env.dir().join("latchkey.toml");
    std::fs::write(&config, "listen = \"127.0.0.2:0\"\n").unwrap();

    let mut cmd = env.command(&["serve"]);
    cmd.env("LATCHKEY_CONFIG", &config);
    let server = spawn(cmd);
    assert!(
        server.url.starts_with("http://127.0.0.2:"),
        "{}",
        server.url
    );
    assert_eq!(server.get("/healthz").send().await.unwrap().status(), 200);
    let (code, stderr) = server.stop_with("TERM").await;
    assert_eq!(code, 0, "{stderr}");

    let mut cmd = env.command(&["serve"]);
    cmd.env("LATCHKEY_CONFIG", &config)
        .env("LATCHKEY_LISTEN", "127.0.0.3:0");
    // The admin was made on the first start: this one prints the URL only.
    let server = Served::start_with_stderr(cmd, Stdio::null());
    let url = server.url.clone();
    assert!(url.starts_with("http://127.0.0.3:"), "{url}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (code, _) = server.stop_with_async("TERM").await;
    assert_eq!(code, 0);
}

/// `request_timeout` (config file, `LATCHKEY_REQUEST_TIMEOUT`, `--request-timeout`) and
/// `head_timeout` must be durations longer than zero: anything else stops `serve` at start with a
/// message naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_timeout_stops_serve_at_start() {
    let env = Env::new().await;
    let config = env.dir().join("latchkey.toml");
    std::fs::write(&config, "request_timeout = \"soon\"\n").unwrap();
    // (arguments, an environment variable, what the error says)
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 4] = [
        (
            &["serve", "--listen", "127.0.0.1:0"],
            None,
            "request_timeout in the config file",
        ),
        (
            &["serve", "--listen", "127.0.0.1:0"],
            Some(("LATCHKEY_REQUEST_TIMEOUT", "0s")),
            "--request-timeout must be longer than zero",
        ),
        (
            &["serve", "--listen", "127.0.0.1:0"],
            Some(("LATCHKEY_HEAD_TIMEOUT", "0s")),
            "--head-timeout must be longer than zero",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--request-timeout",
                "forever",
            ],
            None,
            "--request-timeout",
        ),
    ];
    for (i, (args, var, says)) in cases.into_iter().enumerate() {
        let mut cmd = env.command(args);
        if i == 0 {
            cmd.env("LATCHKEY_CONFIG", &config);
        }
        if let Some((k, v)) = var {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().ok();
                panic!("serve started despite {args:?} {var:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should say {says:?}: {stderr}"
        );
    }
}

async fn the_clis_changes_are_audited_as_the_operator(backend: Backend) {
    let env = Env::on(backend).await;
    let server = serve(&env);
    // The CLI, on the same data while the server runs.
    env.add_demo("chorus", "From the CLI").ok();
    let page: serde_json::Value = server
        .get("/v1/audit?action=credential.create")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let event = &events[0];
    assert_eq!(event["actor"]["kind"], "operator", "{event}");
    assert!(event["actor"]["id"].is_null() && event["actor"]["name"].is_null());
    assert_eq!(event["target"]["name"], "From the CLI");
    assert_eq!(event["outcome"], "success");
    // No request, so no request id and no client address.
    assert!(event["request_id"].is_null() && event["client"].is_null());
    // `actor=operator` finds the operator's events and no API credential's.
    let by_operator: serde_json::Value = server
        .get("/v1/audit?actor=operator")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_operator = by_operator["items"].as_array().unwrap();
    assert!(
        by_operator
            .iter()
            .any(|e| e["action"] == "credential.create"),
        "{by_operator:?}"
    );
    assert!(
        by_operator.iter().all(|e| e["actor"]["kind"] == "operator"),
        "{by_operator:?}"
    );
    let got = server
        .get("/v1/credentials/From%20the%20CLI")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let (code, stderr) = server.stop_with("TERM").await;
    assert_eq!(code, 0, "{stderr}");
    env.assert_no_secret_in_output();
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_clis_changes_are_audited_as_the_operator,
);

/// Reads one answer (head and `Content-Length` body) from `stream`: its status line, or `None` when
/// the server closed the connection first.
async fn answer(stream: &mut TcpStream) -> Option<String> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&read[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if read.len() >= end + 4 + length {
                return Some(head.lines().next().unwrap_or_default().to_owned());
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the server closes `stream` within `within` (reading and dropping whatever comes).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A connection that sends no request head for the head timeout (`--head-timeout`) — after it was
/// opened, or after its last answer — is closed: one that sends nothing, one that sends its head a
/// byte at a time (so bytes keep coming), and a keep-alive one after its answers. Requests that keep
/// coming keep their connection, and a request in flight longer than the timeout (its body sent
/// slowly) is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_no_request_head_in_time_are_closed() {
    let env = Env::new().await;
    let server = spawn(env.command(&["serve", "--listen", "127.0.0.1:0", "--head-timeout", "1s"]));
    let addr = server.url.trim_start_matches("http://").to_owned();
    let timeout = Duration::from_secs(1);

    let opened = Instant::now();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(opened.elapsed() >= timeout, "{:?}", opened.elapsed());

    // A head of 200 bytes at one byte every 50 ms would take 10 s.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(160)
    );
    let slow = TcpStream::connect(&addr).await.unwrap();
    let (mut slow_read, mut slow_write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for byte in head.bytes() {
            if slow_write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut got = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(8), slow_read.read_to_end(&mut got)).await;
    assert!(cut.is_ok(), "a head sent a byte at a time was not cut off");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    trickle.abort();

    // Requests every 300 ms for 2.4 s, on one connection: each is answered.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    for i in 0..8 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(answer(&mut kept).await.as_deref(), Some("http/1.1 200 ok"));
    }
    let answered = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(10)).await);
    assert!(answered.elapsed() >= timeout, "{:?}", answered.elapsed());

    // A request whose body takes 2 s to arrive is in flight, not waiting for a head.
    let body = br#"{"slug":"slow-body-workspace"}"#;
    let mut uploading = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.token,
        body.len()
    );
    uploading.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(3) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        uploading.write_all(chunk).await.unwrap();
    }
    assert_eq!(
        answer(&mut uploading).await.as_deref(),
        Some("http/1.1 201 created")
    );

    let (code, stderr) = server.stop_with("TERM").await;
    assert_eq!(code, 0, "{stderr}");
}
