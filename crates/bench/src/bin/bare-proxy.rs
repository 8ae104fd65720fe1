//! The floor for `scripts/bench-proxy`: the HTTP stack Latchkey's proxy is built on (hyper's
//! server, hyper's HTTP/1.1 client connections kept per thread, one single-threaded runtime per
//! core, as `latchkey serve` runs them) forwarding every request to one upstream with a static
//! `Authorization` header, and doing nothing else — no authentication, no credential, no rate
//! limit, no metrics, no timeouts. What Latchkey's proxy does on top is the difference between
//! this row and Latchkey's.
//!
//! `bare-proxy LISTEN UPSTREAM`, e.g. `bare-proxy 127.0.0.1:8091 127.0.0.1:8090`.

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::net::SocketAddr;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

thread_local! {
    /// This thread's idle connections to the upstream.
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

/// An idle connection that can carry a request now (one still finishing stays listed).
fn checkout() -> Option<SendRequest<Incoming>> {
    IDLE.with_borrow_mut(|idle| {
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                found = Some(sender);
                break;
            }
            if !sender.is_closed() {
                busy.push(sender);
            }
        }
        idle.extend(busy);
        found
    })
}

async fn forward(
    upstream: SocketAddr,
    mut request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Incoming>, BoxError> {
    request.headers_mut().insert(
        hyper::header::AUTHORIZATION,
        hyper::header::HeaderValue::from_static("static-bench-token"),
    );
    let mut sender = match checkout() {
        Some(sender) => sender,
        None => {
            let stream = tokio::net::TcpStream::connect(upstream).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            sender
        }
    };
    let response = sender.send_request(request).await?;
    // Listed again at once: the next checkout takes it when its answer has been read.
    IDLE.with_borrow_mut(|idle| idle.push(sender));
    Ok(response)
}

/// One single-threaded runtime serving the connections it is handed.
fn server(upstream: SocketAddr) -> tokio::sync::mpsc::UnboundedSender<std::net::TcpStream> {
    let (send, mut connections) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                while let Some(stream) = connections.recv().await {
                    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |request| forward(upstream, request));
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
    let upstream: SocketAddr = upstream
        .parse()
        .expect("UPSTREAM is an address, e.g. 127.0.0.1:8090");
    let listener = std::net::TcpListener::bind(listen).expect("cannot listen");
    // As `latchkey serve`: one runtime per core, accepted connections handed to each in turn.
    let servers: Vec<_> = (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
        .map(|_| server(upstream))
        .collect();
    for (i, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        if stream.set_nonblocking(true).is_ok() {
            let _ = servers[i % servers.len()].send(stream);
        }
    }
}
