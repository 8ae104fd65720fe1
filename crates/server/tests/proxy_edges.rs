//! The proxy's edges over real sockets: path tricks sent byte for byte, timeouts, Latchkey's own
//! throttle and the weekly quota, the provider's 429s, retries by method, hop-by-hop answers,
//! large bodies, `last_used_at`, and the metrics of every outcome. Upstreams are the sandbox's
//! providers, or (where an answer must be shaped byte for byte) a small loopback server here,
//! reached through a provider file of the test's own with a base URL override.

mod common;

use common::{TestApp, expect, read};
use latchkey_core::Settings;
use latchkey_sandbox::{RateLimits, RecordedRequest, Sandbox};
use latchkey_testdb::Backend;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLARI_FILE: &str = include_str!("../../../providers/clari-copilot.toml");
const AIRCALL_FILE: &str = include_str!("../../../providers/aircall.toml");

/// A provider with header auth, for the loopback upstreams here.
const EDGE_FILE: &str = r#"
id = "edge"
name = "Edge"
base_url = "https://edge.invalid"

[[fields]]
key = "api_key"
label = "API Key"
secret = true

[auth]
type = "header"
headers = [{ name = "X-Api-Key", value = "{api_key}" }]

[verify]
path = "/me"
valid = [200]
rejected = [401, 403]
try_later = [429, "5xx"]
"#;

const EDGE_KEY: &str = "edge-key-7f3a9c2e41d8";

/// A built-in provider file under another id (and name), with further replacements.
fn copy_of(file: &str, from: &str, id: &str, replace: &[(&str, &str)]) -> String {
    let mut text = file.replacen(&format!("id = \"{from}\""), &format!("id = \"{id}\""), 1);
    text = text.replacen("\nname = \"", &format!("\nname = \"{id} "), 1);
    for (old, new) in replace {
        assert!(text.contains(old), "{old} is not in the provider file");
        text = text.replacen(old, new, 1);
    }
    text
}

/// Put provider files `(id, text, base URL)` into a providers directory beside the data
/// directory, each pointed at its base URL.
fn add_providers(settings: &mut Settings, files: &[(&str, String, String)]) {
    let dir = settings.data_dir.with_file_name("providers");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, text, base_url) in files {
        std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
        settings
            .provider_base_urls
            .insert((*id).to_owned(), base_url.clone());
    }
    settings.providers_dir = Some(dir);
}

/// Create a credential of provider `id` without verifying it (so that the upstream sees only
/// the test's requests), with the demo fields of the sandbox's `demo_of` provider.
async fn create_unverified(app: &TestApp, id: &str, demo_of: &str, name: &str) -> Value {
    let mut body = app.demo_body(demo_of, name);
    body["provider"] = json!(id);
    expect(
        app.admin(Method::POST, "/v1/credentials?verify=false")
            .json(&body),
        201,
    )
    .await
}

async fn create_edge(app: &TestApp, name: &str) -> Value {
    expect(
        app.admin(Method::POST, "/v1/credentials?verify=false")
            .json(&json!({"provider": "edge", "name": name, "fields": {"api_key": EDGE_KEY}})),
        201,
    )
    .await
}

async fn metrics(app: &TestApp) -> String {
    app.metrics().await
}

/// The value of the metric line that starts with `series` (name and labels), if any.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Another instance (Latchkey and its HTTP server) on the same database as `app`.
async fn second_instance(app: &TestApp) -> SocketAddr {
    let (lk, _) = latchkey_core::Latchkey::start(&app.settings).await.unwrap();
    let server = latchkey_server::Application::bind(
        "127.0.0.1:0".parse().unwrap(),
        latchkey_server::AppState::new(lk),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    addr
}

// ------------------------------------------------------------------ the weekly quota

/// A Clari Copilot account with a weekly quota of 3, used from two instances on one database:
/// three requests reach the provider, the fourth (from either instance) answers 429 with the
/// seconds until Sunday 00:00 GMT, and nothing more is sent. Another account with the same
/// quota, hit by eight requests at once through both instances, lets exactly three through.
async fn a_weekly_quota_holds_across_instances_until_the_week_ends(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings, sandbox| {
        let clari = sandbox.base_url("clari-copilot").unwrap();
        let files: Vec<(&str, String, String)> = ["clari-quota", "clari-burst"]
            .into_iter()
            .map(|id| {
                let file = copy_of(
                    CLARI_FILE,
                    "clari-copilot",
                    id,
                    &[("weekly = 100000", "weekly = 3")],
                );
                (id, file, clari.clone())
            })
            .collect();
        add_providers(settings, &files);
    })
    .await;
    create_unverified(&app, "clari-quota", "clari-copilot", "quota").await;
    create_unverified(&app, "clari-burst", "clari-copilot", "burst").await;
    let other = second_instance(&app).await;
    let on_other = |path: &str| {
        app.client
            .get(format!("http://{other}{path}"))
            .bearer_auth(&app.admin_token)
    };
    app.sandbox.clear_requests();
    expect(app.admin(Method::GET, "/v1/proxy/quota/users"), 200).await;
    expect(app.admin(Method::GET, "/v1/proxy/quota/users"), 200).await;
    expect(on_other("/v1/proxy/quota/users"), 200).await;
    assert_eq!(app.sandbox.requests("clari-copilot").len(), 3);

    for request in [
        app.admin(Method::GET, "/v1/proxy/quota/users"),
        on_other("/v1/proxy/quota/users"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        // Until the next Sunday 00:00 UTC (UNIX day 0 was a Thursday, four days after one).
        let now = unix_now();
        let days_since_sunday = (now / 86_400 + 4) % 7;
        let next_sunday = (now / 86_400 - days_since_sunday + 7) * 86_400;
        let waited = retry_after(&response);
        assert!(
            waited.abs_diff(next_sunday - now) <= 2,
            "Retry-After {waited}, expected {}",
            next_sunday - now
        );
        let (_, problem) = read(response).await;
        assert_eq!(problem["code"], "quota_exhausted", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("weekly quota of 3"),
            "{problem}"
        );
    }
    assert_eq!(
        app.sandbox.requests("clari-copilot").len(),
        3,
        "nothing was sent past the quota"
    );

    // At once, through both instances: the count is atomic.
    app.sandbox.clear_requests();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let request = if i % 2 == 0 {
            app.admin(Method::GET, "/v1/proxy/burst/users")
        } else {
            on_other("/v1/proxy/burst/users")
        };
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    assert_eq!(app.sandbox.requests("clari-copilot").len(), 3);

    // The built-in Clari Copilot keeps its own count: its quota is untouched.
    app.create_demo("clari-copilot", "clari").await;
    expect(app.admin(Method::GET, "/v1/proxy/clari/users"), 200).await;
}

// ------------------------------------------------------------------ Latchkey's own throttle

/// Two requests a minute: the third, allowed no wait, is refused by Latchkey itself with
/// `Retry-After`, and the provider never sees it.
async fn the_throttle_refuses_past_the_callers_budget(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings, sandbox| {
        let file = copy_of(
            CLARI_FILE,
            "clari-copilot",
            "clari-slow",
            &[("requests = 10\nper = \"1s\"", "requests = 2\nper = \"1m\"")],
        );
        add_providers(
            settings,
            &[(
                "clari-slow",
                file,
                sandbox.base_url("clari-copilot").unwrap(),
            )],
        );
    })
    .await;
    create_unverified(&app, "clari-slow", "clari-copilot", "slow").await;
    app.sandbox.clear_requests();
    for _ in 0..2 {
        expect(
            app.admin(Method::GET, "/v1/proxy/slow/users")
                .header("x-latchkey-max-wait", "0"),
            200,
        )
        .await;
    }
    let response = app
        .admin(Method::GET, "/v1/proxy/slow/users")
        .header("x-latchkey-max-wait", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let waited = retry_after(&response);
    assert!((1..=62).contains(&waited), "Retry-After {waited}");
    let (_, problem) = read(response).await;
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert_eq!(
        app.sandbox.requests("clari-copilot").len(),
        2,
        "the refused request never reached the provider"
    );
}

// ------------------------------------------------------------------ the provider's answers

/// Clari Copilot at one request a second: of two requests at once, one is answered 429 with
/// `Retry-After: 1`; Latchkey waits that out and the retried GET succeeds.
#[tokio::test]
async fn an_upstream_retry_after_is_waited_out() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_demo("clari-copilot", "clari").await;
    app.sandbox.set_rate_limits(RateLimits {
        clari_per_second: Some(1),
        ..RateLimits::default()
    });
    app.sandbox.clear_requests();
    let (a, b) = tokio::join!(
        app.admin(Method::GET, "/v1/proxy/clari/users").send(),
        app.admin(Method::GET, "/v1/proxy/clari/users").send(),
    );
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
    let seen = app.sandbox.requests("clari-copilot");
    let refused: Vec<&RecordedRequest> = seen.iter().filter(|r| r.status == Some(429)).collect();
    assert!(!refused.is_empty(), "the provider answered 429: {seen:?}");
    assert_eq!(seen.len(), 2 + refused.len(), "each 429 was retried once");
    let last = seen.last().unwrap();
    assert_eq!(last.status, Some(200));
    assert!(
        last.at.duration_since(refused[0].at) >= Duration::from_millis(900),
        "the retry waited for Retry-After: 1"
    );
}

/// Aircall's 429 carries no `Retry-After`, only `X-AircallApi-Reset` (UNIX time): waited out.
#[tokio::test]
async fn an_aircall_reset_header_is_waited_out() {
    let upstream = Scripted::start(|n| {
        if n == 0 {
            let reset = unix_now() + 1;
            Reply::close(&format!(
                "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: application/json\r\nX-AircallApi-Limit: 120\r\nX-AircallApi-Remaining: 0\r\nX-AircallApi-Reset: {reset}\r\nContent-Length: 2\r\n\r\n{{}}"
            ))
        } else {
            Reply::close(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
            )
        }
    })
    .await;
    let url = upstream.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        let file = copy_of(AIRCALL_FILE, "aircall", "aircall-edge", &[]);
        add_providers(settings, &[("aircall-edge", file, url)]);
    })
    .await;
    create_unverified(&app, "aircall-edge", "aircall", "air").await;
    let started = Instant::now();
    let body = expect(app.admin(Method::GET, "/v1/proxy/air/v1/calls"), 200).await;
    assert_eq!(body["ok"], true);
    let heads = upstream.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// The provider's answer to `method` while every answer is a forced 503: retried when the
/// method is idempotent.
async fn requests_under_a_forced_503(app: &TestApp, method: Method) -> usize {
    app.sandbox.clear_requests();
    let response = app
        .admin(method.clone(), "/v1/proxy/clari/users")
        .header("x-latchkey-max-wait", "1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{method}"
    );
    app.sandbox.requests("clari-copilot").len()
}

#[tokio::test]
async fn head_put_and_delete_are_retried_on_a_5xx() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_demo("clari-copilot", "clari").await;
    app.sandbox.set_forced_status(Some(503));
    for method in [Method::HEAD, Method::PUT, Method::DELETE] {
        let sent = requests_under_a_forced_503(&app, method.clone()).await;
        assert!(sent > 1, "{method} was retried ({sent} requests)");
    }
    assert_eq!(
        requests_under_a_forced_503(&app, Method::POST).await,
        1,
        "POST is never retried"
    );
}

/// A 403 is the provider's rejection: passed on, never retried, and the credential is marked
/// invalid.
async fn a_403_is_not_retried_and_marks_the_credential_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("clari-copilot", "clari").await;
    app.sandbox.clear_requests();
    app.sandbox.set_forced_status(Some(403));
    let response = app
        .admin(Method::GET, "/v1/proxy/clari/users")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.sandbox.requests("clari-copilot").len(),
        1,
        "not retried"
    );
    let now = expect(
        app.admin(
            Method::GET,
            &format!("/v1/credentials/{}", created["id"].as_str().unwrap()),
        ),
        200,
    )
    .await;
    assert_eq!(now["status"], "invalid", "{now}");
    assert!(
        now["status_reason"]
            .as_str()
            .unwrap()
            .contains("proxied request (HTTP 403)"),
        "{now}"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_of_the_answer_are_not_passed_back() {
    let upstream = Scripted::start(|_| {
        Reply::close(concat!(
            "HTTP/1.1 200 OK\r\n",
            "Content-Type: text/plain\r\n",
            "Connection: close, X-Private\r\n",
            "X-Private: for-the-next-hop\r\n",
            "Keep-Alive: timeout=5, max=100\r\n",
            "Proxy-Authenticate: Basic realm=\"upstream\"\r\n",
            "Upgrade: h2c\r\n",
            "Trailer: X-Checksum\r\n",
            "X-Kept: yes\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
        ))
    })
    .await;
    let url = upstream.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        add_providers(settings, &[("edge", EDGE_FILE.to_owned(), url)]);
    })
    .await;
    create_edge(&app, "edge").await;
    let response = app
        .admin(Method::GET, "/v1/proxy/edge/hop")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    for name in [
        "x-private",
        "keep-alive",
        "proxy-authenticate",
        "upgrade",
        "trailer",
    ] {
        assert!(!headers.contains_key(name), "{name} came back: {headers:?}");
    }
    if let Some(connection) = headers.get(header::CONNECTION) {
        assert!(
            !connection.to_str().unwrap().contains("X-Private"),
            "{headers:?}"
        );
    }
    // The upstream's chunked framing was decoded; any on this hop is Latchkey's own.
    if let Some(te) = headers.get(header::TRANSFER_ENCODING) {
        assert_eq!(te, "chunked");
    }
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(response.text().await.unwrap(), "hello world");
}

/// A provider that takes its secret as a query parameter, under a base path.
const QUERY_FILE: &str = r#"
id = "qedge"
name = "Query Edge"
base_url = "https://qedge.invalid"

[[fields]]
key = "api_key"
label = "API Key"
secret = true

[auth]
type = "query"
param = "api_key"
value = "{api_key}"

[verify]
path = "/me"
valid = [200]
rejected = [401, 403]
"#;

#[tokio::test]
async fn a_query_secret_is_appended_to_the_callers_query_and_never_answered_back() {
    let upstream =
        Scripted::start(|_| Reply::close("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let url = format!("{}/base/", upstream.url());
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        add_providers(settings, &[("qedge", QUERY_FILE.to_owned(), url)]);
    })
    .await;
    let secret = "q&key=9c2e41d8 é";
    expect(
        app.admin(Method::POST, "/v1/credentials?verify=false")
            .json(&json!({"provider": "qedge", "name": "q", "fields": {"api_key": secret}})),
        201,
    )
    .await;
    for (target, sent) in [
        (
            "/v1/proxy/q/items?page=2&q=caf%C3%A9",
            "GET /base/items?page=2&q=caf%C3%A9&api_key=q%26key%3D9c2e41d8+%C3%A9 HTTP/1.1",
        ),
        (
            "/v1/proxy/q/items",
            "GET /base/items?api_key=q%26key%3D9c2e41d8+%C3%A9 HTTP/1.1",
        ),
    ] {
        let response = app.admin(Method::GET, target).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{target}");
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap();
        assert_eq!(body, "ok");
        for shown in [&headers, &body] {
            assert!(!shown.contains("9c2e41d8"), "{target}: {shown}");
        }
        let head = upstream.heads().pop().unwrap();
        assert_eq!(head.lines().next(), Some(sent), "{head}");
    }
}

// ------------------------------------------------------------------ bodies

/// What the body-recording upstream saw: method, path, body length and a checksum.
type Received = Arc<Mutex<Vec<(String, String, usize, u64)>>>;

/// An upstream that reads every body to its end and records it; `/fail…` answers 503.
async fn body_upstream() -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let method = request.method().to_string();
            let path = request.uri().path().to_owned();
            let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
                .await
                .unwrap();
            let sum = checksum(&bytes);
            seen.lock()
                .unwrap()
                .push((method, path.clone(), bytes.len(), sum));
            let status = if path.starts_with("/fail") {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                axum::http::StatusCode::OK
            };
            (
                status,
                axum::Json(json!({"length": bytes.len(), "sum": sum})),
            )
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().enumerate().fold(0u64, |acc, (i, b)| {
        acc.wrapping_mul(31)
            .wrapping_add(u64::from(*b) ^ (i as u64 & 0xff))
    })
}

/// A PUT larger than what is buffered for retries streams through whole, and is sent once; a
/// smaller one is still retried.
#[tokio::test]
async fn a_put_larger_than_the_buffer_streams_through_whole_and_is_not_retried() {
    let (url, received) = body_upstream().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        add_providers(settings, &[("edge", EDGE_FILE.to_owned(), url)]);
    })
    .await;
    create_edge(&app, "edge").await;
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let want = checksum(&big);
    let answer = expect(
        app.admin(Method::PUT, "/v1/proxy/edge/store")
            .body(big.clone()),
        200,
    )
    .await;
    assert_eq!(answer["length"], big.len());
    assert_eq!(answer["sum"], want);

    // Without a Content-Length (chunked) too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let answer = expect(
        app.admin(Method::PUT, "/v1/proxy/edge/store")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
        200,
    )
    .await;
    assert_eq!(answer["length"], big.len());
    assert_eq!(answer["sum"], want);

    received.lock().unwrap().clear();
    let response = app
        .admin(Method::PUT, "/v1/proxy/edge/fail")
        .header("x-latchkey-max-wait", "2")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    {
        let seen = received.lock().unwrap();
        assert_eq!(seen.len(), 1, "a streamed PUT is sent once");
        assert_eq!(seen[0].2, 9 * 1024 * 1024);
        assert_eq!(seen[0].3, want);
    }

    received.lock().unwrap().clear();
    let response = app
        .admin(Method::PUT, "/v1/proxy/edge/fail")
        .header("x-latchkey-max-wait", "1")
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let seen = received.lock().unwrap();
    assert!(seen.len() > 1, "a buffered PUT is retried");
    assert!(seen.iter().all(|r| r.2 == 1024), "whole each time");
}

// ------------------------------------------------------------------ timeouts

/// A 504 problem+json `upstream_timeout` whose message names the 1 s limit (`which` timeout) the
/// test configured, not another one.
async fn assert_upstream_timeout(response: reqwest::Response, which: &str) {
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let (_, problem) = read(response).await;
    assert_eq!(problem["code"], "upstream_timeout", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(" 1 s"),
        "the message names the {which} timeout: {problem}"
    );
}

#[tokio::test]
async fn a_connect_timeout_answers_504() {
    // A listener whose accept queue is full and never drained: the kernel drops further SYNs,
    // so a connection attempt hangs until the connect timeout (loopback only).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connecting to the full listener failed: {e}"),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        settings.outbound.connect_timeout = Duration::from_secs(1);
        settings.outbound.first_byte_timeout = Duration::from_secs(30);
        add_providers(
            settings,
            &[("edge", EDGE_FILE.to_owned(), format!("http://{addr}"))],
        );
    })
    .await;
    create_edge(&app, "edge").await;
    let started = Instant::now();
    let response = app
        .admin(Method::GET, "/v1/proxy/edge/x")
        .header("x-latchkey-max-wait", "0")
        .send()
        .await
        .unwrap();
    assert_upstream_timeout(response, "connect").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the connect timeout (1 s) ended it, not the first-byte timeout (30 s)"
    );
    drop((listener, held));
}

/// The idle timeout: a pause while the head is still arriving answers 504; a pause in the body,
/// after the head (and part of the body) went to the caller, ends the body with an error (the
/// status is already sent, so it cannot become a 504).
#[tokio::test]
async fn an_idle_upstream_times_out() {
    let upstream = Scripted::start(|n| {
        if n == 0 {
            Reply::stall("HTTP/1.1 200 OK\r\nContent-Type: text/pl")
        } else {
            Reply::stall(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\npartial",
            )
        }
    })
    .await;
    let url = upstream.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |settings, _| {
        settings.outbound.idle_timeout = Duration::from_secs(1);
        settings.outbound.first_byte_timeout = Duration::from_secs(30);
        add_providers(settings, &[("edge", EDGE_FILE.to_owned(), url)]);
    })
    .await;
    create_edge(&app, "edge").await;

    let started = Instant::now();
    let response = app
        .admin(Method::GET, "/v1/proxy/edge/head")
        .header("x-latchkey-max-wait", "0")
        .send()
        .await
        .unwrap();
    assert_upstream_timeout(response, "idle").await;
    assert!(started.elapsed() < Duration::from_secs(10));

    let started = Instant::now();
    let mut response = app
        .admin(Method::GET, "/v1/proxy/edge/body")
        .header("x-latchkey-max-wait", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut got = Vec::new();
    let ended = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(ended.is_err(), "the truncated body ends with an error");
    assert_eq!(got, b"partial");
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ------------------------------------------------------------------ last use, by id, metrics

/// A proxied request (here by the credential's id) sets `last_used_at`; a burst after it does
/// not write it again (the stored value stays the first request's time, to the millisecond).
async fn last_use_is_recorded_without_a_write_per_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "air").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["last_used_at"].is_null());
    expect(
        app.admin(Method::GET, &format!("/v1/proxy/{id}/v1/ping")),
        200,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = expect(
            app.admin(Method::GET, &format!("/v1/credentials/{id}")),
            200,
        )
        .await;
        if now["last_used_at"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last_used_at was never set: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = || async {
        let ws = app
            .lk
            .repository()
            .workspace_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        app.lk
            .repository()
            .get_credential(&ws.id, &id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .expect("stored")
    };
    let first = stored().await;
    for _ in 0..10 {
        expect(app.admin(Method::GET, "/v1/proxy/air/v1/ping"), 200).await;
    }
    assert!(
        latchkey_core::Timestamp::now().millis() > first,
        "time moved on"
    );
    assert_eq!(stored().await, first, "the burst wrote last_used_at again");
}

#[tokio::test]
async fn metrics_count_every_outcome_under_its_provider() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let created = app.create_demo("clari-copilot", "metrics-cred-5d1e").await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.sandbox.clear_requests();
    expect(
        app.admin(Method::GET, "/v1/proxy/metrics-cred-5d1e/users"),
        200,
    )
    .await;
    // A forced 5xx is retried (GET) until the budget runs out, and passed on.
    app.sandbox.set_forced_status(Some(503));
    let response = app
        .admin(Method::GET, "/v1/proxy/metrics-cred-5d1e/users")
        .header("x-latchkey-max-wait", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A 429 beyond the budget: Latchkey's own error answer.
    app.sandbox.set_forced_status(Some(429));
    let response = app
        .admin(Method::GET, "/v1/proxy/metrics-cred-5d1e/users")
        .header("x-latchkey-max-wait", "0.2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    app.sandbox.set_forced_status(None);
    expect(app.admin(Method::GET, "/v1/proxy/no-such-cred/users"), 404).await;
    let sent = app.sandbox.requests("clari-copilot").len();

    let text = metrics(&app).await;
    let clari = "{provider=\"clari-copilot\"}";
    let retries = metric(&text, &format!("latchkey_proxy_retries_total{clari}")).unwrap_or(0.0);
    assert!(retries >= 1.0, "{text}");
    assert_eq!(
        metric(
            &text,
            &format!("latchkey_proxy_upstream_duration_seconds_count{clari}")
        ),
        Some(sent as f64),
        "one observation per request sent: {text}"
    );
    assert_eq!(
        retries as usize + 3,
        sent,
        "every send but the first three retried"
    );
    for (class, n) in [("2xx", 1.0), ("5xx", 1.0), ("error_rate_limited", 1.0)] {
        assert_eq!(
            metric(
                &text,
                &format!(
                    "latchkey_proxy_requests_total{{provider=\"clari-copilot\",class=\"{class}\"}}"
                )
            ),
            Some(n),
            "{class}: {text}"
        );
    }
    assert_eq!(
        metric(
            &text,
            "latchkey_proxy_requests_total{provider=\"none\",class=\"error_credential_not_found\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("metrics-cred") && !text.contains(&id),
        "{text}"
    );
    for secret in app.secrets() {
        assert!(!text.contains(&secret));
    }
}

// ------------------------------------------------------------------ path tricks, sent raw

/// Send a GET with `target` written into the request line byte for byte (no client
/// normalises it) and read the whole answer: status, headers (lowercase names), body.
async fn raw_get(app: &TestApp, target: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        app.addr, app.admin_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// An app with the Aircall demo credential `air`, the sandbox's log emptied.
async fn trick_app() -> TestApp {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_demo("aircall", "air").await;
    app.sandbox.clear_requests();
    app
}

/// The trick was refused with a clear 400 problem+json, and no provider saw anything.
async fn assert_refused(app: &TestApp, target: &str) {
    let (status, headers, body) = raw_get(app, target).await;
    assert_eq!(status, 400, "{target}: {body}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/problem+json"),
        "{target}: {headers:?}"
    );
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "invalid_path", "{target}: {problem}");
    assert_nothing_sent(&app.sandbox, target);
}

fn assert_nothing_sent(sandbox: &Sandbox, target: &str) {
    for provider in latchkey_sandbox::PROVIDER_IDS {
        assert!(
            sandbox.requests(provider).is_empty(),
            "{target} reached {provider}: {:?}",
            sandbox.requests(provider)
        );
    }
}

/// The trick was kept inside the provider's path: exactly one request reached Aircall's host,
/// at `path_and_query`, and no other provider saw anything.
fn assert_kept_inside(sandbox: &Sandbox, target: &str, path_and_query: &str) {
    let seen = sandbox.requests("aircall");
    assert_eq!(seen.len(), 1, "{target}: {seen:?}");
    assert_eq!(seen[0].path_and_query, path_and_query, "{target}");
    let host = seen[0].header("host").unwrap();
    assert_eq!(
        host,
        sandbox.addr("aircall").unwrap().to_string(),
        "{target}"
    );
    assert!(
        !seen[0]
            .headers
            .iter()
            .any(|(_, v)| v.contains("evil.example")),
        "{target}: {seen:?}"
    );
    for provider in ["chorus", "ccai-platform", "clari-copilot"] {
        assert!(sandbox.requests(provider).is_empty(), "{target}");
    }
}

#[tokio::test]
async fn a_dot_dot_path_is_refused() {
    let app = trick_app().await;
    assert_refused(&app, "/v1/proxy/air/../../v1/credentials").await;
    assert_refused(&app, "/v1/proxy/air/v1/calls/..").await;
}

#[tokio::test]
async fn a_percent_encoded_dot_dot_path_is_refused() {
    let app = trick_app().await;
    assert_refused(&app, "/v1/proxy/air/v1/%2e%2e/%2e%2e/v1/credentials").await;
    assert_refused(&app, "/v1/proxy/air/v1/%2E%2E/%2E%2E/v1/credentials").await;
    assert_refused(&app, "/v1/proxy/air/v1/.%2E/ping").await;
    assert_refused(&app, "/v1/proxy/air/v1%2f..%2fping").await;
}

#[tokio::test]
async fn a_double_slash_host_is_refused() {
    let app = trick_app().await;
    assert_refused(&app, "/v1/proxy/air//evil.example/x").await;
}

#[tokio::test]
async fn an_at_sign_stays_in_the_providers_path() {
    let app = trick_app().await;
    let (status, _, _) = raw_get(&app, "/v1/proxy/air/@evil.example/v1/ping").await;
    // The sandbox's Aircall knows no such path.
    assert_eq!(status, 404);
    assert_kept_inside(&app.sandbox, "@evil.example", "/@evil.example/v1/ping");
}

#[tokio::test]
async fn an_absolute_url_is_refused_in_the_path_and_ignored_as_the_request_target() {
    let app = trick_app().await;
    assert_refused(&app, "/v1/proxy/air/http://evil.example/").await;
    assert_refused(&app, "/v1/proxy/air/http:%2f%2fevil.example/v1/ping").await;
    // An absolute-form request target names Latchkey's route; its host is not the target's.
    let (status, _, body) = raw_get(&app, "http://evil.example/v1/proxy/air/v1/ping").await;
    assert_eq!(status, 200, "{body}");
    assert_kept_inside(&app.sandbox, "absolute-form", "/v1/ping");
}

#[tokio::test]
async fn cr_lf_in_the_path_is_refused() {
    let app = trick_app().await;
    assert_refused(&app, "/v1/proxy/air/v1/ping%0d%0aHost:%20evil.example").await;
    assert_refused(&app, "/v1/proxy/air/v1/ping%0D%0A%0D%0AGET%20/x").await;
}

#[tokio::test]
async fn cr_lf_in_the_query_stays_encoded_in_the_query() {
    let app = trick_app().await;
    let (status, _, body) =
        raw_get(&app, "/v1/proxy/air/v1/ping?x=%0d%0aHost:%20evil.example").await;
    assert_eq!(status, 200, "{body}");
    assert_kept_inside(
        &app.sandbox,
        "CR/LF in the query",
        "/v1/ping?x=%0d%0aHost:%20evil.example",
    );
}

latchkey_testdb::backend_tests!(
    a_weekly_quota_holds_across_instances_until_the_week_ends,
    the_throttle_refuses_past_the_callers_budget,
    a_403_is_not_retried_and_marks_the_credential_invalid,
    last_use_is_recorded_without_a_write_per_request,
);

// ------------------------------------------------------------------ a scripted upstream

/// A loopback upstream answering connection `n` with `script(n)`, written byte for byte after
/// the request's head was read; it records each head.
struct Scripted {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

struct Reply {
    bytes: Vec<u8>,
    /// Keep the connection open, silent, after the bytes (else close it).
    stall: bool,
}

impl Reply {
    fn close(text: &str) -> Reply {
        Reply {
            bytes: text.as_bytes().to_vec(),
            stall: false,
        }
    }

    fn stall(text: &str) -> Reply {
        Reply {
            bytes: text.as_bytes().to_vec(),
            stall: true,
        }
    }
}

impl Scripted {
    async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = heads.clone();
        let script = Arc::new(script);
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                let reply = script(n);
                n += 1;
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => head.extend_from_slice(&buf[..k]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    if stream.write_all(&reply.bytes).await.is_err() {
                        return;
                    }
                    if reply.stall {
                        std::future::pending::<()>().await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        Scripted { addr, heads }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}
