//! The floor for `scripts/bench-proxy`: the HTTP stack Latchkey's proxy is built on (hyper's
//! server, hyper's pooled client, one single-threaded runtime per core, as `latchkey serve` runs
//! them) forwarding every request to one upstream with a static `Authorization` header, and doing
//! nothing else — no authentication, no credential, no rate limit, no metrics. What Latchkey's
//! proxy does on top is the difference between this row and Latchkey's.
//!
//! `bare-proxy LISTEN UPSTREAM`, e.g. `bare-proxy 127.0.0.1:8091 http://127.0.0.1:8090`.

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;

type Upstream = Client<HttpConnector, Incoming>;

async fn forward(
    client: Upstream,
    upstream: hyper::Uri,
    mut request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    let mut parts = upstream.into_parts();
    parts.path_and_query = Some(path);
    *request.uri_mut() = hyper::Uri::from_parts(parts).expect("a valid upstream address");
    request.headers_mut().insert(
        hyper::header::AUTHORIZATION,
        hyper::header::HeaderValue::from_static("static-bench-token"),
    );
    client.request(request).await
}

/// One single-threaded runtime serving the connections it is handed.
fn server(upstream: hyper::Uri) -> tokio::sync::mpsc::UnboundedSender<std::net::TcpStream> {
    let (send, mut connections) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let client: Upstream = Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(256)
                    .build_http();
                while let Some(stream) = connections.recv().await {
                    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let (client, upstream) = (client.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            forward(client.clone(), upstream.clone(), request)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
    });
    send
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare-proxy LISTEN UPSTREAM");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen
        .parse()
        .expect("LISTEN is an address, e.g. 127.0.0.1:8091");
    let upstream: hyper::Uri = upstream.parse().expect("UPSTREAM is a URL");
    let listener = std::net::TcpListener::bind(listen).expect("cannot listen");
    // As `latchkey serve`: one runtime per core, accepted connections handed to each in turn.
    let servers: Vec<_> = (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
        .map(|_| server(upstream.clone()))
        .collect();
    for (i, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        if stream.set_nonblocking(true).is_ok() {
            let _ = servers[i % servers.len()].send(stream);
        }
    }
}
