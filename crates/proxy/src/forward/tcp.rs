//! Opaque TCP, and upgraded HTTP connections (opaque once both sides have switched): a
//! bidirectional copy that carries half-closes (one side's EOF becomes a shutdown of the
//! other side's write half, so request/response protocols that signal "done sending" by
//! closing keep working), closes both sides once nothing has moved for the idle timeout,
//! and writes the connection's log line.
//!
//! The idle timeout costs one timer per connection, not one per read: every read from or
//! write to the downstream side stamps a shared last-activity instant (every byte in
//! either direction passes there), and a single sleep, re-armed only when it fires,
//! compares that stamp with the deadline.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderValue;
use http::Method;
use http::uri::PathAndQuery;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, copy_bidirectional};

use super::BoxIo;
use super::http::{Sinks, Verdict};
use crate::accesslog::Entry;
use crate::metrics::Direction;

/// The access log `reason` of a connection the proxy closed for being idle.
pub(crate) const IDLE_REASON: &str = "idle timeout";

/// How a spliced connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spliced {
    /// Bytes read from the downstream side.
    pub(crate) bytes_in: u64,
    /// Bytes written to the downstream side.
    pub(crate) bytes_out: u64,
    /// True when the proxy closed it because nothing moved for the idle timeout.
    pub(crate) idle: bool,
}

/// Copies both ways until both sides have closed, an error ends it, or nothing has moved
/// in either direction for `idle_timeout` (`None`: never), in which case both sides are
/// shut down. The byte counts are exact in every case.
pub(crate) async fn splice(
    downstream: BoxIo,
    mut upstream: BoxIo,
    idle_timeout: Option<Duration>,
) -> Spliced {
    let meter = Meter::new();
    let mut downstream = Metered {
        io: downstream,
        meter: &meter,
    };
    let idle = tokio::select! {
        copied = copy_bidirectional(&mut downstream, &mut upstream) => {
            if let Err(e) = copied {
                tracing::debug!(error = %e, "tcp stream ended with an error");
            }
            false
        }
        () = meter.idle(idle_timeout) => true,
    };
    if idle {
        tracing::debug!(
            idle_timeout = ?idle_timeout,
            "closing a connection that carried no bytes for the idle timeout"
        );
        // Both at once: a peer that stopped reading must not delay the other side's close.
        tokio::join!(
            crate::respond::close(downstream.io),
            crate::respond::close(upstream)
        );
    }
    Spliced {
        bytes_in: meter.read.load(Ordering::Relaxed),
        bytes_out: meter.written.load(Ordering::Relaxed),
        idle,
    }
}

/// Byte counts and the last time bytes moved, shared by the downstream stream (which
/// records) and the idle watchdog (which reads). Both live in one task; the fields are
/// atomics only because the task must be `Send` while both borrow the meter.
#[derive(Debug)]
struct Meter {
    start: tokio::time::Instant,
    /// Nanoseconds from `start` to the last read or write that moved bytes.
    last: AtomicU64,
    read: AtomicU64,
    written: AtomicU64,
}

impl Meter {
    fn new() -> Meter {
        Meter {
            // tokio's clock, so that tests with paused time drive the watchdog.
            start: tokio::time::Instant::now(),
            last: AtomicU64::new(0),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// Records `n` bytes moved through `counter`, now.
    fn moved(&self, counter: &AtomicU64, n: usize) {
        // A single writer: a load and a store suffice (no locked read-modify-write).
        counter.store(
            counter.load(Ordering::Relaxed) + n as u64,
            Ordering::Relaxed,
        );
        let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(since, Ordering::Relaxed);
    }

    fn last_activity(&self) -> tokio::time::Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Completes once nothing has moved for `timeout`; never when it is `None`.
    async fn idle(&self, timeout: Option<Duration>) {
        let Some(timeout) = timeout else {
            return std::future::pending().await;
        };
        let sleep = tokio::time::sleep_until(self.last_activity() + timeout);
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().await;
            let deadline = self.last_activity() + timeout;
            if deadline <= tokio::time::Instant::now() {
                return;
            }
            // Bytes moved since the timer was set: wait for the rest of the new deadline.
            sleep.as_mut().reset(deadline);
        }
    }
}

/// The downstream stream, recording into its [`Meter`] every read and write that moved
/// bytes.
struct Metered<'m> {
    io: BoxIo,
    meter: &'m Meter,
}

impl AsyncRead for Metered<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.meter.moved(&self.meter.read, n);
        }
        polled
    }
}

impl AsyncWrite for Metered<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.meter.moved(&self.meter.written, n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The request an upgraded stream came from, for its log line.
pub(crate) struct UpgradedRequest {
    pub(crate) request_id: HeaderValue,
    pub(crate) method: Method,
    pub(crate) path: Option<PathAndQuery>,
}

/// One TCP connection's (or upgraded stream's) log line and metrics.
pub(crate) struct TcpLog {
    pub(crate) sinks: Sinks,
    pub(crate) direction: Direction,
    pub(crate) source: Option<Arc<str>>,
    pub(crate) source_addr: SocketAddr,
    pub(crate) destination: Option<Arc<str>>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) start: Instant,
    pub(crate) verdict: Verdict,
    /// Set for an upgraded stream: its line is of kind `upgrade` and names the request.
    pub(crate) upgraded: Option<UpgradedRequest>,
    /// Outbound: the endpoint chosen, and the overflow or timeout that refused it.
    pub(crate) resilience: super::http::Resilience,
}

impl TcpLog {
    /// Counts the connection as opened; pair with [`TcpLog::closed`].
    pub(crate) fn opened(&self) {
        self.sinks.metrics.tcp_opened(self.direction);
    }

    /// Counts the connection as closed and writes its line.
    pub(crate) fn closed(self, spliced: Spliced) {
        let duration = self.start.elapsed();
        let metrics = &self.sinks.metrics;
        metrics.tcp_closed(
            self.direction,
            spliced.bytes_in,
            spliced.bytes_out,
            duration,
        );
        if spliced.idle {
            metrics.tcp_idle_timeout(self.direction);
        }
        let closed_by = spliced.idle.then_some(IDLE_REASON);
        self.write(spliced.bytes_in, spliced.bytes_out, duration, closed_by);
    }

    /// Writes the line of a connection that was refused before it was opened.
    pub(crate) fn refused(self) {
        self.write(0, 0, self.start.elapsed(), None);
    }

    /// Writes the line; `closed_by` (the proxy's reason for ending the connection) takes
    /// the place of the policy's reason, which `decision` and `policy` still identify.
    fn write(&self, bytes_in: u64, bytes_out: u64, duration: Duration, closed_by: Option<&str>) {
        if !self.sinks.access_log.is_enabled() {
            return;
        }
        let verdict_reason = self.verdict.reason.as_ref().map(ToString::to_string);
        let request = self.upgraded.as_ref();
        self.sinks.access_log.write(&Entry {
            kind: if request.is_some() { "upgrade" } else { "tcp" },
            direction: self.direction,
            request_id: request.and_then(|r| r.request_id.to_str().ok()),
            source: self.source.as_deref(),
            source_addr: self.source_addr,
            destination: self.destination.as_deref(),
            upstream: self.upstream,
            method: request.map(|r| r.method.as_str()),
            path: request.and_then(|r| r.path.as_ref().map(PathAndQuery::as_str)),
            status: request.map(|_| 101),
            bytes_in,
            bytes_out,
            duration,
            decision: self.verdict.decision(),
            layer: self.verdict.layer.map(|l| l.as_str()),
            policy: self.verdict.policy.as_deref(),
            reason: closed_by.or(verdict_reason.as_deref()),
            retries: self.resilience.retries,
            endpoint: self.resilience.endpoint,
            overflow: self.resilience.overflow,
            timeout: self.resilience.timeout,
            waf: None,
        });
    }
}

#[cfg(test)]
mod tests;
