//! Serving HTTP connections: one listener, and one single-threaded runtime per core that each
//! accepted connection is handed to, round robin. A connection, its requests and the proxy's
//! connections to the provider that those requests open all stay on one thread, so a proxied
//! request is never handed between threads (that hand-over cost more than all of the proxy's own
//! work). Everything else — the database pools, the background tasks — runs on the process's main
//! runtime, which keeps serving them while these run. Proxied requests skip the router
//! (`proxy::serve_direct`).

use axum::extract::ConnectInfo;
use futures_util::FutureExt;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

/// An accepted connection on its way to a serving runtime.
type Accepted = (std::net::TcpStream, SocketAddr);

struct Server {
    connections: mpsc::UnboundedSender<Accepted>,
    stopped: oneshot::Receiver<()>,
}

/// How many serving runtimes: one per core.
fn server_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, let the requests
/// in flight finish, and close idle connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: crate::HttpApp,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let servers = (0..server_count())
        .map(|i| start_server(i, app.clone()))
        .collect::<std::io::Result<Vec<Server>>>()?;
    tokio::pin!(shutdown);
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::error!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let _ = servers[next].connections.send((stream, peer));
        next = (next + 1) % servers.len();
    }
    drop(listener);
    for server in servers {
        drop(server.connections);
        let _ = server.stopped.await;
    }
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A thread with its own runtime serving the connections it is handed, until the sender is
/// dropped; then it finishes the requests in flight and says so on `stopped`.
fn start_server(index: usize, app: crate::HttpApp) -> std::io::Result<Server> {
    let (connections, mut incoming) = mpsc::unbounded_channel::<Accepted>();
    let (done, stopped) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("latchkey-http-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let graceful = GracefulShutdown::new();
                while let Some((stream, peer)) = incoming.recv().await {
                    serve_connection(stream, peer, app.clone(), &graceful);
                }
                graceful.shutdown().await;
            });
            let _ = done.send(());
        })?;
    Ok(Server {
        connections,
        stopped,
    })
}

fn serve_connection(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    app: crate::HttpApp,
    graceful: &GracefulShutdown,
) {
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "could not serve an accepted connection");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let crate::HttpApp { router, state } = app;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // A proxied request is served straight; every other request goes through the router.
        match crate::proxy::direct_route(request.method(), request.uri().path()) {
            Some(route) => Either::Left(
                crate::proxy::serve_direct(state.clone(), route, peer, request)
                    .map(Ok::<_, std::convert::Infallible>),
            ),
            None => {
                request.extensions_mut().insert(ConnectInfo(peer));
                Either::Right(router.clone().oneshot(request.map(axum::body::Body::new)))
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a connection ended with an error");
        }
    });
}
