//! Opaque TCP: a bidirectional copy that carries half-closes (one side's EOF becomes a
//! shutdown of the other side's write half, so request/response protocols that signal
//! "done sending" by closing keep working), and the connection's log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::copy_bidirectional;

use super::BoxIo;
use super::http::{Sinks, Verdict};
use crate::accesslog::Entry;
use crate::metrics::Direction;

/// Copies both ways until both sides have closed; returns the bytes read from
/// `downstream` and written to it (also when the copy ended with an error, counting
/// what was moved before it).
pub(crate) async fn splice(mut downstream: BoxIo, mut upstream: BoxIo) -> (u64, u64) {
    match copy_bidirectional(&mut downstream, &mut upstream).await {
        Ok(counts) => counts,
        Err(e) => {
            // A reset in either direction ends both; the bytes moved are not known exactly
            // here, which the log accepts rather than wrapping every read in a counter.
            tracing::debug!(error = %e, "tcp stream ended with an error");
            (0, 0)
        }
    }
}

/// One TCP connection's log line and metrics.
pub(crate) struct TcpLog {
    pub(crate) sinks: Sinks,
    pub(crate) direction: Direction,
    pub(crate) source: Option<Arc<str>>,
    pub(crate) source_addr: SocketAddr,
    pub(crate) destination: Option<Arc<str>>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) start: Instant,
    pub(crate) verdict: Verdict,
}

impl TcpLog {
    /// Counts the connection as opened; pair with [`TcpLog::closed`].
    pub(crate) fn opened(&self) {
        self.sinks.metrics.tcp_opened(self.direction);
    }

    /// Counts the connection as closed and writes its line.
    pub(crate) fn closed(self, bytes_in: u64, bytes_out: u64) {
        let duration = self.start.elapsed();
        self.sinks
            .metrics
            .tcp_closed(self.direction, bytes_in, bytes_out, duration);
        self.write(bytes_in, bytes_out);
    }

    /// Writes the line of a connection that was refused before it was opened.
    pub(crate) fn refused(self) {
        self.write(0, 0);
    }

    fn write(&self, bytes_in: u64, bytes_out: u64) {
        if !self.sinks.access_log.is_enabled() {
            return;
        }
        let reason = self.verdict.reason.as_ref().map(ToString::to_string);
        self.sinks.access_log.write(&Entry {
            kind: "tcp",
            direction: self.direction,
            request_id: None,
            source: self.source.as_deref(),
            source_addr: self.source_addr,
            destination: self.destination.as_deref(),
            upstream: self.upstream,
            method: None,
            path: None,
            status: None,
            bytes_in,
            bytes_out,
            duration: self.start.elapsed(),
            decision: self.verdict.decision(),
            layer: self.verdict.layer.map(|l| l.as_str()),
            policy: self.verdict.policy.as_deref(),
            reason: reason.as_deref(),
        });
    }
}
