//! A 200 MiB answer and a 200 MiB upload stream through `latchkey serve`'s proxy without being held
//! in memory: the process's peak resident set grows by less than 32 MiB.

mod common;

use axum::body::Body;
use axum::routing::{get, post};
use common::serve::Served;
use futures_util::StreamExt as _;
use std::process::Stdio;

const CHUNK: usize = 64 * 1024;
const BIG: usize = 200 * 1024 * 1024;

/// A plain upstream on loopback standing in for the provider's host: `/big` answers 200 MiB,
/// `/upload` counts what it receives.
async fn upstream() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/small", get(|| async { "ok" }))
        .route(
            "/big",
            get(|| async {
                let chunks = futures_util::stream::iter(
                    (0..BIG / CHUNK).map(|_| Ok::<_, std::io::Error>(vec![7u8; CHUNK])),
                );
                axum::response::Response::builder()
                    .header("content-length", BIG.to_string())
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }),
        )
        .route(
            "/upload",
            post(|body: Body| async move {
                let mut stream = body.into_data_stream();
                let mut received = 0usize;
                while let Some(chunk) = stream.next().await {
                    received += chunk.unwrap().len();
                }
                received.to_string()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The process's peak resident set size, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mib_stream_through_the_proxy_in_constant_memory() {
    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::latchkey(&dir.path().join("data"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "LATCHKEY_PROVIDER_AIRCALL_BASE_URL",
            format!("http://{upstream}"),
        )
        .env("LATCHKEY_LOG", "warn");
    let server = Served::start_with_stderr(cmd, Stdio::null());
    let (url, token) = (server.url.clone(), server.admin.clone().unwrap());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let created = client
        .post(format!("{url}/v1/credentials?verify=false"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "provider": "aircall", "name": "air",
            "fields": {"api_id": "stream-test", "api_token": "stream-test-token-0123456789"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    // Warm up (the connection pools, the caches) before taking the baseline.
    for _ in 0..3 {
        let small = client
            .get(format!("{url}/v1/proxy/air/small"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(small.text().await.unwrap(), "ok");
    }
    let pid = server.pid();
    let before = peak_rss(pid);

    let response = client
        .get(format!("{url}/v1/proxy/air/big"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0usize;
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, BIG);
    let after_download = peak_rss(pid);

    let chunks = futures_util::stream::iter(
        (0..BIG / CHUNK).map(|_| Ok::<_, std::io::Error>(vec![9u8; CHUNK])),
    );
    let uploaded = client
        .post(format!("{url}/v1/proxy/air/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    assert_eq!(uploaded.text().await.unwrap(), BIG.to_string());
    let after_upload = peak_rss(pid);

    server.kill();
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "peak RSS: {:.1} MiB before, {:.1} MiB after the download, {:.1} MiB after the upload",
        mib(before),
        mib(after_download),
        mib(after_upload)
    );
    assert!(
        after_download - before < 32 * 1024 * 1024,
        "the download grew the peak RSS by {:.1} MiB",
        mib(after_download - before)
    );
    assert!(
        after_upload - before < 32 * 1024 * 1024,
        "the upload grew the peak RSS by {:.1} MiB",
        mib(after_upload - before)
    );
}
