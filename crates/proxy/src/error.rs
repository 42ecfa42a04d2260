//! Errors of the data path. Each variant says who is at fault (our configuration, the
//! upstream, the app) so that [`crate::respond`] can map it to one status and reason.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::resilience::{Limit, TimeoutKind};

/// Why the proxy could not start, or could not carry one connection or request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The TLS configuration could not be built from the snapshot's identity.
    #[error("cannot build the TLS configuration: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// The upstream service has no endpoints in the current snapshot.
    #[error("service {service} has no endpoints")]
    NoEndpoints {
        /// `name.namespace`.
        service: String,
    },
    /// The listener a connection arrived on is no longer in the snapshot.
    #[error("listener {0} was removed from the configuration")]
    ListenerRemoved(SocketAddr),
    /// A TCP connection to an upstream sidecar or to the app failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where we dialled.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A TCP connection did not complete in time.
    #[error("connecting to {addr} timed out")]
    ConnectTimeout {
        /// Where we dialled.
        addr: SocketAddr,
    },
    /// The mTLS handshake with an upstream sidecar failed (e.g. it presented another
    /// identity than the one expected for the endpoint).
    #[error("mTLS handshake with {addr} failed: {message}")]
    Handshake {
        /// The peer's address.
        addr: SocketAddr,
        /// Bounded reason label (as counted in metrics).
        reason: &'static str,
        /// The full explanation.
        message: String,
    },
    /// The upstream connection failed while carrying the request.
    #[error("upstream {addr} failed: {source}")]
    Upstream {
        /// The upstream's address.
        addr: SocketAddr,
        /// hyper's reason.
        #[source]
        source: hyper::Error,
    },
    /// The HTTP upgrade (e.g. WebSocket) could not be completed.
    #[error("upgrade failed: {0}")]
    Upgrade(String),
    /// A timeout of the upstream's traffic policy fired.
    #[error("upstream {} timeout ({} {after:?} fired)", kind.phase(), kind.describe())]
    Timeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// Its configured length.
        after: Duration,
    },
    /// A circuit breaker of the upstream is full; the request was not sent.
    #[error("upstream overflow: the {} circuit breaker is full", limit.as_str())]
    Overflow {
        /// Which limit.
        limit: Limit,
    },
}

impl ProxyError {
    /// A short, stable name for the error, sent in `x-bulkhead-error`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Bind { .. } => "bind",
            ProxyError::TlsConfig(_) => "tls-config",
            ProxyError::NoEndpoints { .. } => "no-endpoints",
            ProxyError::ListenerRemoved(_) => "listener-removed",
            ProxyError::Connect { .. } => "connect",
            ProxyError::ConnectTimeout { .. } => "connect-timeout",
            ProxyError::Handshake { .. } => "tls-handshake",
            ProxyError::Upstream { .. } => "upstream",
            ProxyError::Upgrade(_) => "upgrade",
            ProxyError::Timeout { .. } => "timeout",
            ProxyError::Overflow { .. } => "overflow",
        }
    }

    /// True when the request never reached an upstream, so it is safe to retry.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ProxyError::Connect { .. }
                | ProxyError::ConnectTimeout { .. }
                | ProxyError::Handshake { .. }
                | ProxyError::NoEndpoints { .. }
                | ProxyError::Timeout {
                    kind: TimeoutKind::Connect,
                    ..
                }
        )
    }
}
