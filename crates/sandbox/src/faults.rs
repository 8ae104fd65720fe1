//! Injected faults: a deterministic sequence of 5xx answers and dropped
//! connections, and the listener that makes a connection droppable.
//!
//! A dropped request is read completely, then its connection is closed
//! without a single answer byte: every accepted socket is wrapped in a
//! [`CuttableStream`] whose cut switch travels with each request (as axum
//! connect info, [`Cut`]). Cutting makes the stream's next write fail and its
//! next read see end-of-file, so hyper abandons the connection and the socket
//! is closed (FIN) with nothing sent; the client sees the connection closed
//! before any response ("connection closed before message completed").

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::scenario::Faults;

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Error(u16),
    Drop,
}

/// Parts per million of a rate in 0.0..=1.0 (NaN and negatives are 0).
fn ppm(rate: f64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        0
    } else {
        (rate.min(1.0) * 1e6).round() as u64
    }
}

/// Whether the `n`-th event (0-based) of a sequence with this rate is hit.
fn hit(n: u64, ppm: u64) -> bool {
    (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
}

/// One provider's fault configuration and position in its sequences.
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    drops_seen: u64,
    errors_seen: u64,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            faults,
            drops_seen: 0,
            errors_seen: 0,
        }
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults
    }

    /// New faults; both sequences start again.
    pub(crate) fn set(&mut self, faults: Faults) {
        *self = Self::new(faults);
    }

    /// The fault of the next request.
    pub(crate) fn next(&mut self) -> Fault {
        let n = self.drops_seen;
        self.drops_seen += 1;
        if hit(n, ppm(self.faults.drop_rate)) {
            return Fault::Drop;
        }
        let n = self.errors_seen;
        self.errors_seen += 1;
        if hit(n, ppm(self.faults.error_rate)) {
            return Fault::Error(self.faults.error_status);
        }
        Fault::None
    }
}

/// A TCP listener whose connections can be cut from a request handler.
pub(crate) struct CuttableListener(pub(crate) TcpListener);

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Small answers go out at once (no Nagle delay on paged walks).
                    let _ = stream.set_nodelay(true);
                    let io = CuttableStream {
                        inner: stream,
                        cut: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                // Out of file descriptors and the like: wait, try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// An accepted connection with a cut switch.
pub(crate) struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl CuttableStream {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "sandbox: connection dropped",
    )
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Ok(())); // end of file
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The cut switch of the connection a request came on (axum connect info).
#[derive(Clone, Debug)]
pub(crate) struct Cut(Arc<AtomicBool>);

impl Cut {
    /// Close the connection without answering.
    pub(crate) fn cut(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for Cut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        Cut(Arc::clone(&stream.io().cut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(faults: Faults, n: usize) -> Vec<Fault> {
        let mut state = FaultState::new(faults);
        (0..n).map(|_| state.next()).collect()
    }

    #[test]
    fn rates_hit_exactly_their_share_evenly() {
        let half = Faults {
            error_rate: 0.5,
            ..Faults::default()
        };
        assert_eq!(
            sequence(half, 4),
            [
                Fault::None,
                Fault::Error(503),
                Fault::None,
                Fault::Error(503)
            ]
        );
        for rate in [0.0, 0.01, 0.1, 0.25, 1.0 / 3.0, 0.9, 1.0] {
            let faults = Faults {
                drop_rate: rate,
                ..Faults::default()
            };
            let drops = sequence(faults, 1_000)
                .iter()
                .filter(|f| **f == Fault::Drop)
                .count();
            assert_eq!(drops, (1_000.0 * rate + 1e-9).floor() as usize, "{rate}");
        }
        assert!(
            sequence(Faults::default(), 100)
                .iter()
                .all(|f| *f == Fault::None)
        );
        let all = Faults {
            error_rate: 1.0,
            error_status: 500,
            drop_rate: f64::NAN,
        };
        assert!(sequence(all, 10).iter().all(|f| *f == Fault::Error(500)));
    }

    #[test]
    fn errors_apply_to_the_requests_not_dropped() {
        let faults = Faults {
            error_rate: 0.5,
            error_status: 502,
            drop_rate: 0.5,
        };
        assert_eq!(
            sequence(faults, 4),
            [Fault::None, Fault::Drop, Fault::Error(502), Fault::Drop]
        );
    }
}
