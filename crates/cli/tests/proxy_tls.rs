//! The proxy and verification over TLS, as with every real provider: `latchkey serve` reaches an
//! https provider whose certificate chains to a trusted root, with the auth arriving inside TLS,
//! and refuses one whose certificate does not (nothing is sent to it).

mod common;

use common::serve::Served;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "tls-test-token-0123456789abcdef";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// An https server on loopback with the `localhost` certificate: it answers every request with a
/// small JSON body and keeps each request's head.
async fn tls_upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let certs = CertificateDer::pem_file_iter(fixture("localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let body = r#"{"engagements":[],"continuation_key":null}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, heads)
}

/// `latchkey serve` with Chorus pointed at the https upstream; `roots` is the trusted roots file,
/// or none for the system's.
fn serve(data: &Path, port: u16, roots: Option<&Path>) -> Served {
    let mut cmd = common::latchkey(data);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "LATCHKEY_PROVIDER_CHORUS_BASE_URL",
            format!("https://localhost:{port}"),
        )
        .env("LATCHKEY_LOG", "warn")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(roots) = roots {
        cmd.env("SSL_CERT_FILE", roots);
    }
    Served::start_with_stderr(cmd, Stdio::null())
}

async fn create(client: &reqwest::Client, server: &Served, verify: bool) -> reqwest::Response {
    client
        .post(format!("{}/v1/credentials?verify={verify}", server.url))
        .bearer_auth(server.admin.as_deref().unwrap())
        .json(&serde_json::json!({
            "provider": "chorus", "name": "chorus", "fields": {"api_token": TOKEN}
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_https_provider_is_reached_and_an_untrusted_one_is_refused() {
    let (port, heads) = tls_upstream().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Trusted: verification and the proxy both go over TLS, the auth inside it.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), port, Some(&fixture("ca.pem")));
    let created = create(&client, &server, true).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["status"], "active", "verified over TLS: {created}");
    let proxied = client
        .get(format!(
            "{}/v1/proxy/chorus/v3/engagements?limit=1",
            server.url
        ))
        .bearer_auth(server.admin.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(
        proxied.text().await.unwrap(),
        r#"{"engagements":[],"continuation_key":null}"#
    );
    {
        let heads = heads.lock().unwrap();
        assert_eq!(
            heads.len(),
            2,
            "the verification and the proxied request: {heads:?}"
        );
        let proxied_head = heads[1].to_ascii_lowercase();
        assert!(proxied_head.starts_with("get /v3/engagements?limit=1 http/1.1\r\n"));
        assert!(proxied_head.contains(&format!("authorization: {}", TOKEN.to_ascii_lowercase())));
        assert!(proxied_head.contains(&format!("host: localhost:{port}")));
    }
    server.kill();

    // Not trusted (the system's roots only): refused in the handshake, nothing sent.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), port, None);
    let created = create(&client, &server, false).await;
    assert_eq!(created.status(), 201);
    let refused = client
        .get(format!("{}/v1/proxy/chorus/v3/engagements", server.url))
        .bearer_auth(server.admin.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "upstream_unreachable", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("certificate"),
        "{problem}"
    );
    assert_eq!(
        heads.lock().unwrap().len(),
        2,
        "nothing reached the untrusted host"
    );
    server.kill();
}
