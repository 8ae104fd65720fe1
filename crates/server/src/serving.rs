//! Serving HTTP connections: one listener, and one single-threaded runtime per core that each
//! accepted connection is handed to, round robin. A connection, its requests and the proxy's
//! connections to the provider that those requests open all stay on one thread, so a proxied
//! request is never handed between threads (that hand-over cost more than all of the proxy's own
//! work). Everything else — the database pools, the background tasks — runs on the process's main
//! runtime, which keeps serving them while these run. Proxied requests skip the router
//! (`proxy::serve_direct`).
//!
//! Each serving thread also watches its connections for the head timeout ([`Watched`]): one that
//! sends no request head for that long — from when it was opened, or from when the answer to its
//! previous request was sent — is closed. hyper can do this itself, but it sets a timer for every
//! request, which cost about 7 % of a proxied request's CPU; the watchdog looks at each connection
//! once a tick and costs a request two counts. On the same tick, it closes the connections to
//! providers that the thread keeps (`latchkey_core::outbound`) and that have been idle for too long.

use axum::extract::ConnectInfo;
use futures_util::FutureExt;
use futures_util::future::{AbortHandle, Either};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
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
/// dropped; then it finishes the requests in flight and says so on `stopped`. Meanwhile it closes
/// the connections past the head timeout, and the connections to providers it keeps that have
/// been idle for too long.
fn start_server(index: usize, app: crate::HttpApp) -> std::io::Result<Server> {
    let (connections, mut incoming) = mpsc::unbounded_channel::<Accepted>();
    let (done, stopped) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let head_timeout = app.state.head_timeout();
    std::thread::Builder::new()
        .name(format!("latchkey-http-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let watched = RefCell::new(Vec::<Watched>::new());
                let serving = async {
                    let graceful = GracefulShutdown::new();
                    while let Some((stream, peer)) = incoming.recv().await {
                        if let Some(connection) =
                            serve_connection(stream, peer, app.clone(), &graceful)
                        {
                            watched.borrow_mut().push(connection);
                        }
                    }
                    graceful.shutdown().await;
                };
                let watchdog = async {
                    let mut tick = tokio::time::interval(watch_tick(head_timeout));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        let now = tick.tick().await.into_std();
                        watched
                            .borrow_mut()
                            .retain_mut(|connection| connection.check(now, head_timeout));
                        latchkey_core::outbound::close_idle_connections();
                    }
                };
                tokio::select! {
                    () = serving => {}
                    () = watchdog => {}
                }
            });
            let _ = done.send(());
        })?;
    Ok(Server {
        connections,
        stopped,
    })
}

/// How often a serving thread looks at its connections: a connection is closed between the head
/// timeout and one tick more after its last answer.
fn watch_tick(head_timeout: Duration) -> Duration {
    (head_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// A connection's requests as its watchdog sees them: how many were started and how many of their
/// answers have been sent (or dropped).
#[derive(Default)]
struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
}

/// One request of a connection, counted as started until it is dropped — with its answer's body,
/// once hyper has sent it.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.started.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// An answer's body, holding its request's [`InFlight`] until hyper has sent it.
struct Answer {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl Answer {
    fn of(response: axum::response::Response, in_flight: InFlight) -> hyper::Response<Answer> {
        response.map(|body| Answer {
            body,
            _in_flight: in_flight,
        })
    }
}

impl Body for Answer {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection on its serving thread's watch list.
struct Watched {
    activity: Arc<Activity>,
    close: AbortHandle,
    /// The counts at the last tick that saw them change.
    seen: (u64, u64),
    /// Since when no request has been started and no answer is being sent, as far as the ticks
    /// have seen.
    idle_since: Instant,
}

impl Watched {
    /// Closes the connection when it has sent no request head for `head_timeout` since its last
    /// answer (or since it was opened). False once the connection is gone.
    fn check(&mut self, now: Instant, head_timeout: Duration) -> bool {
        // The connection's service holds the other count; it goes with the connection.
        if Arc::strong_count(&self.activity) == 1 {
            return false;
        }
        let seen = (
            self.activity.started.load(Ordering::Relaxed),
            self.activity.finished.load(Ordering::Relaxed),
        );
        if seen != self.seen || seen.0 != seen.1 {
            self.seen = seen;
            self.idle_since = now;
            return true;
        }
        if now.duration_since(self.idle_since) >= head_timeout {
            tracing::debug!(
                "closed a connection that sent no request head within the head timeout"
            );
            self.close.abort();
            return false;
        }
        true
    }
}

fn serve_connection(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    app: crate::HttpApp,
    graceful: &GracefulShutdown,
) -> Option<Watched> {
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "could not serve an accepted connection");
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let crate::HttpApp { router, state } = app;
    let activity = Arc::new(Activity::default());
    let counts = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(&counts);
        // A proxied request is served straight; every other request goes through the router.
        match crate::proxy::direct_route(request.method(), request.uri().path()) {
            Some(route) => Either::Left(
                crate::proxy::serve_direct(state.clone(), route, peer, request).map(|response| {
                    Ok::<_, std::convert::Infallible>(Answer::of(response, in_flight))
                }),
            ),
            None => {
                request.extensions_mut().insert(ConnectInfo(peer));
                Either::Right(
                    router
                        .clone()
                        .oneshot(request.map(axum::body::Body::new))
                        .map(|answer| answer.map(|response| Answer::of(response, in_flight))),
                )
            }
        }
    });
    // The head timeout is the watchdog's (see the module's description), not hyper's.
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let (connection, close) = futures_util::future::abortable(graceful.watch(connection));
    tokio::spawn(async move {
        if let Ok(Err(e)) = connection.await {
            tracing::debug!(error = %e, "a connection ended with an error");
        }
    });
    Some(Watched {
        activity,
        close,
        seen: (0, 0),
        idle_since: Instant::now(),
    })
}
