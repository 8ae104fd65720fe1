//! The proxy's connections to providers, kept per thread.
//!
//! A connection is kept by the thread (and its runtime) that opened it, so that a proxied request
//! and its connection to the provider are served by one thread, never handed between two. Each
//! connection carries one exchange at a time (HTTP/1.1). It goes back to its thread's idle list
//! when the provider's answer has been read to its end; an answer dropped before its end takes
//! its connection with it, since the rest of that answer would still be on the wire.
//!
//! hyper-util's pooled client does the same with a task per exchange (to put the connection
//! back) and a lock per checkout, costs every proxied request paid; here both are a borrow of a
//! thread-local list.

use super::{BoxError, ProxyConnector, ProxyRequestBody};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::http::uri::{Authority, Scheme};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tower_service::Service;

/// The most idle connections a thread keeps to one provider address.
const MAX_IDLE_PER_HOST: usize = 256;

/// How long an idle connection is kept before it is closed rather than used.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Sender = SendRequest<ProxyRequestBody>;

/// Which connections may carry a request: those of the same `Outbound` and guard (strict or
/// operator-trusted) to the same scheme and authority. Compared and hashed as the catalog renders
/// them (lowercase hosts), as strings: `http`'s own hash of an authority lowercases it byte by
/// byte, which cost more than a thousand instructions a lookup, two lookups a request.
#[derive(Clone)]
pub(super) struct PoolKey {
    outbound: u64,
    trusted: bool,
    scheme: Scheme,
    authority: Authority,
}

impl PoolKey {
    /// The key for requests to `scheme` and `authority` (as the catalog renders them).
    pub(super) fn new(
        outbound: u64,
        trusted: bool,
        scheme: Scheme,
        authority: Authority,
    ) -> PoolKey {
        PoolKey {
            outbound,
            trusted,
            scheme,
            authority,
        }
    }

    /// Where a new connection for this key goes.
    fn uri(&self) -> Result<hyper::Uri, SendError> {
        hyper::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(Box::new(e)))
    }
}

impl PartialEq for PoolKey {
    fn eq(&self, other: &PoolKey) -> bool {
        self.outbound == other.outbound
            && self.trusted == other.trusted
            && self.scheme.as_str() == other.scheme.as_str()
            && self.authority.as_str() == other.authority.as_str()
    }
}

impl Eq for PoolKey {}

impl std::hash::Hash for PoolKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.outbound.hash(state);
        self.trusted.hash(state);
        self.scheme.as_str().hash(state);
        self.authority.as_str().hash(state);
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

thread_local! {
    /// Idle connections by key, oldest first. The keys are the catalog's and the operator's
    /// provider addresses, never a caller's, so a fast hash will do.
    static IDLE: RefCell<HashMap<PoolKey, VecDeque<Idle>, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// Takes this thread's most recently used connection for `key` that can carry a request now.
/// Closed and expired ones are dropped; one still finishing its last exchange stays listed.
fn checkout(key: &PoolKey) -> Option<Sender> {
    IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(entry) = list.pop_back() {
            if entry.sender.is_closed() || now.duration_since(entry.since) > IDLE_TIMEOUT {
                continue;
            }
            if entry.sender.is_ready() {
                found = Some(entry.sender);
                break;
            }
            busy.push(entry);
        }
        list.extend(busy.into_iter().rev());
        found
    })
    .ok()
    .flatten()
}

/// Puts a connection whose exchange is over back on this thread's idle list, after dropping the
/// oldest ones that have expired or closed.
fn checkin(key: PoolKey, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    let _ = IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(key).or_default();
        let now = Instant::now();
        while list.front().is_some_and(|oldest| {
            oldest.sender.is_closed() || now.duration_since(oldest.since) > IDLE_TIMEOUT
        }) {
            list.pop_front();
        }
        if list.len() < MAX_IDLE_PER_HOST {
            list.push_back(Idle { sender, since: now });
        }
    });
}

/// Closes this thread's idle connections that have been idle for longer than the idle timeout
/// (and forgets those the provider closed). The thread that keeps them calls it now and then, so
/// that connections to a provider it no longer sends to do not stay open until its next request.
pub fn close_idle_connections() {
    close_idle_at(Instant::now());
}

fn close_idle_at(now: Instant) {
    let _ = IDLE.try_with(|idle| {
        idle.borrow_mut().retain(|_, list| {
            // Dropping a connection's last sender ends its exchange task, which closes it.
            list.retain(|entry| {
                !entry.sender.is_closed() && now.duration_since(entry.since) <= IDLE_TIMEOUT
            });
            !list.is_empty()
        });
    });
}

/// Why an exchange failed: opening the connection (the address guard, TCP, TLS), or the HTTP
/// exchange on it.
#[derive(Debug)]
pub(super) enum SendError {
    Connect(BoxError),
    Exchange(hyper::Error),
}

/// Sends `request` to `key`'s scheme and authority, on an idle connection of this thread or on a
/// new one. The request is as it goes on the wire: its target the path and query alone, its
/// `Host` header set. A request that an idle connection could not start (the provider had closed
/// it) is sent again on another; one a new connection could not carry is an error.
pub(super) async fn send(
    connector: &ProxyConnector,
    key: PoolKey,
    mut request: hyper::Request<ProxyRequestBody>,
    idle_timeout: Duration,
) -> Result<hyper::Response<PooledBody>, SendError> {
    loop {
        let (mut sender, reused) = match checkout(&key) {
            Some(sender) => (sender, true),
            // Boxed: opening a connection is rare, and its future would make every request's
            // larger (it is moved with the request's future).
            None => (Box::pin(connect(connector, key.uri()?)).await?, false),
        };
        match sender.try_send_request(request).await {
            Ok(response) => {
                return Ok(response.map(|body| PooledBody::new(body, (key, sender), idle_timeout)));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => request = unsent,
                _ => return Err(SendError::Exchange(e.into_error())),
            },
        }
    }
}

/// Opens a connection through the guarded connector and starts its HTTP/1.1 exchange task.
async fn connect(connector: &ProxyConnector, uri: hyper::Uri) -> Result<Sender, SendError> {
    let mut connector = connector.clone();
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(SendError::Connect)?;
    let io = connector.call(uri).await.map_err(SendError::Connect)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| SendError::Connect(Box::new(e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a connection to a provider ended");
        }
    });
    Ok(sender)
}

/// A provider's answer body. Each pause while it streams is bounded by the idle timeout (a timer
/// runs only while the body waits for data, not for data already there). Read to its end, it puts
/// its connection back on the idle list.
pub struct PooledBody {
    inner: Incoming,
    home: Option<(PoolKey, Sender)>,
    idle_timeout: Duration,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The provider's answer paused for longer than the idle timeout while its body streamed.
#[derive(Debug, thiserror::Error)]
#[error("the provider's answer paused for longer than the idle timeout")]
pub struct IdleTimeout;

impl PooledBody {
    pub(super) fn new(inner: Incoming, home: (PoolKey, Sender), idle_timeout: Duration) -> Self {
        PooledBody {
            inner,
            home: Some(home),
            idle_timeout,
            pause: None,
        }
    }

    fn release(&mut self) {
        if let Some((key, sender)) = self.home.take() {
            checkin(key, sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let idle_timeout = this.idle_timeout;
                let pause = this
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle_timeout)));
                ready!(pause.as_mut().poll(cx));
                this.home = None;
                return Poll::Ready(Some(Err(Box::new(IdleTimeout))));
            }
        };
        this.pause = None;
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.home = None,
        }
        Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::outbound::ProxyBase;
    use crate::outbound::tests::chorus_auth;
    use crate::outbound::{Outbound, OutboundConfig};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What a test provider saw: connections opened, and each request's head.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        /// Connections that the proxy's side closed.
        closed: AtomicUsize,
        heads: Mutex<Vec<String>>,
    }

    /// A keep-alive HTTP/1.1 provider answering every request with `body`; with `close_after`,
    /// it closes each connection after its first answer, without saying so in the answer.
    async fn provider(body: &'static [u8], close_after: bool) -> (u16, Arc<Seen>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let seen = shared.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => {
                                    seen.closed.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head: Vec<u8> = buffer.drain(..end + 4).collect();
                        seen.heads
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&head).into_owned());
                        let answer =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        if socket.write_all(answer.as_bytes()).await.is_err()
                            || socket.write_all(body).await.is_err()
                            || close_after
                        {
                            return;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    /// Sends the catalog's Chorus verification request to the provider on `port` through the
    /// proxy's client, and reads the answer to its end (or only its head, with `whole: false`).
    async fn exchange(outbound: &Outbound, port: u16, whole: bool) -> u16 {
        let auth = chorus_auth(&format!("http://127.0.0.1:{port}"));
        let base = ProxyBase::new(&auth);
        let target = base
            .target(
                &hyper::Method::GET,
                auth.path_and_query("/v3/engagements").unwrap(),
            )
            .unwrap();
        let empty = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        let response = outbound
            .send_proxied(&target, &Default::default(), &|_| true, empty)
            .await
            .unwrap();
        let status = response.status().as_u16();
        if whole {
            response.into_body().collect().await.unwrap();
        }
        status
    }

    #[tokio::test]
    async fn answers_read_to_their_end_leave_one_connection_for_the_next_requests() {
        let (port, seen) = provider(b"ok", false).await;
        let outbound = Outbound::new(OutboundConfig::default()).unwrap();
        for _ in 0..3 {
            assert_eq!(exchange(&outbound, port, true).await, 200);
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        let heads = seen.heads.lock().unwrap();
        assert_eq!(heads.len(), 3);
        for head in heads.iter() {
            assert!(head.starts_with("GET /"), "origin-form target: {head}");
            let host = format!("host: 127.0.0.1:{port}\r\n");
            assert!(head.to_ascii_lowercase().contains(&host), "{head}");
        }
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_end_takes_its_connection_with_it() {
        static LARGE: [u8; 1 << 20] = [b'x'; 1 << 20];
        let (port, seen) = provider(&LARGE, false).await;
        let outbound = Outbound::new(OutboundConfig::default()).unwrap();
        assert_eq!(exchange(&outbound, port, false).await, 200);
        assert_eq!(exchange(&outbound, port, true).await, 200);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_provider_closed_is_replaced_without_failing_the_request() {
        let (port, seen) = provider(b"ok", true).await;
        let outbound = Outbound::new(OutboundConfig::default()).unwrap();
        for _ in 0..3 {
            assert_eq!(exchange(&outbound, port, true).await, 200);
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_once_past_the_idle_timeout() {
        let (port, seen) = provider(b"ok", false).await;
        let outbound = Outbound::new(OutboundConfig::default()).unwrap();
        assert_eq!(exchange(&outbound, port, true).await, 200);
        // Not yet past it: the connection stays, and carries the next request.
        super::close_idle_connections();
        assert_eq!(exchange(&outbound, port, true).await, 200);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        super::close_idle_at(
            std::time::Instant::now() + super::IDLE_TIMEOUT + std::time::Duration::from_secs(1),
        );
        let closed = async {
            while seen.closed.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), closed)
            .await
            .expect("the provider sees the idle connection closed");
        assert_eq!(exchange(&outbound, port, true).await, 200);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn each_outbound_and_guard_keeps_its_own_connections() {
        let (port, seen) = provider(b"ok", false).await;
        let (first, second) = (
            Outbound::new(OutboundConfig::default()).unwrap(),
            Outbound::new(OutboundConfig::default()).unwrap(),
        );
        assert_eq!(exchange(&first, port, true).await, 200);
        assert_eq!(exchange(&second, port, true).await, 200);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }
}
