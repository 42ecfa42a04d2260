//! Serving HTTP on an accepted connection (either side), with the limits of
//! [`Settings`] and graceful shutdown when the listener drains.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::{Body, BoxIo};
use crate::run::{Drain, Settings};

/// HTTP/2 pings on quiet connections, so that a peer that vanished (host down, network
/// partition) is noticed and its streams fail instead of hanging.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper refuses HTTP/1 buffers below this size.
const MIN_H1_BUFFER: usize = 8192;

/// The HTTP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// HTTP/1.x, with upgrades.
    Http1,
    /// HTTP/2.
    Http2,
}

/// Serves `service` on `io` until the client is done or the listener drains.
pub(crate) async fn serve<S>(
    io: BoxIo,
    version: Version,
    service: S,
    settings: &Settings,
    drain: Drain,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let io = TokioIo::new(io);
    let result = match version {
        Version::Http1 => {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_read_timeout)
                .max_buf_size(settings.max_header_bytes.max(MIN_H1_BUFFER))
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(conn);
            let mut drain = drain;
            tokio::select! {
                r = conn.as_mut() => r,
                () = crate::run::drained(&mut drain) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
        Version::Http2 => {
            let conn = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(settings.max_concurrent_streams)
                .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
                .serve_connection(io, service);
            tokio::pin!(conn);
            let mut drain = drain;
            tokio::select! {
                r = conn.as_mut() => r,
                () = crate::run::drained(&mut drain) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(e) = result {
        connection_error(&e);
    }
}

/// Malformed requests were already answered by hyper (400, or 431 for a head over the
/// limit); they are logged, rate-limited to powers of two so a scanner cannot flood the
/// log.
fn connection_error(e: &hyper::Error) {
    static MALFORMED: AtomicU64 = AtomicU64::new(0);
    if e.is_parse() || e.is_parse_too_large() || e.is_timeout() {
        let n = MALFORMED.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(error = %e, total = n, "malformed or slow HTTP request refused");
        }
    } else {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}
