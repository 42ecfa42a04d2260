//! Connecting to an upstream sidecar: TCP, then mTLS 1.3 checking that the peer presents
//! exactly the SPIFFE ID the snapshot expects for that endpoint, with the ALPN protocol
//! that tells it what follows.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bulkhead_identity::SpiffeId;
use bulkhead_identity::verify::client_config;
use rustls::client::ResolvesClientCert;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;

use crate::error::ProxyError;
use crate::forward::{BoxIo, alpn, dial, handshake_failure_reason};
use crate::metrics::Direction;
use crate::resilience::breaker::Permit;
use crate::run::Context;
use crate::snapshot::{Endpoint, Snapshot};

/// One client configuration per expected identity and ALPN protocol, rebuilt when the
/// snapshot version changes (the certificate and bundle inside rotate in place).
#[derive(Default)]
pub(crate) struct Connector {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    version: u64,
    configs: HashMap<SpiffeId, [Option<TlsConnector>; 3]>,
}

impl Cache {
    fn reset_for(&mut self, version: u64) {
        if self.version != version {
            self.configs.clear();
            self.version = version;
        }
    }
}

fn slot(protocol: &'static [u8]) -> usize {
    alpn::ALL.iter().position(|p| *p == protocol).unwrap_or(0)
}

impl Connector {
    /// Drops the configurations of older snapshots.
    pub(crate) fn invalidate(&self, version: u64) {
        self.lock().reset_for(version);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connector(
        &self,
        snapshot: &Snapshot,
        expected: &SpiffeId,
        protocol: &'static [u8],
    ) -> Result<TlsConnector, ProxyError> {
        let mut cache = self.lock();
        cache.reset_for(snapshot.version);
        if let Some(c) = cache
            .configs
            .get(expected)
            .and_then(|s| s[slot(protocol)].clone())
        {
            return Ok(c);
        }
        let certs: Arc<dyn ResolvesClientCert> = snapshot.svid.clone();
        let mut config = client_config(snapshot.bundle.clone(), Some(expected.clone()), certs)
            .map_err(ProxyError::TlsConfig)?;
        config.alpn_protocols = vec![protocol.to_vec()];
        let connector = TlsConnector::from(Arc::new(config));
        cache.configs.entry(expected.clone()).or_default()[slot(protocol)] =
            Some(connector.clone());
        Ok(connector)
    }

    /// Dials `endpoint` (within `connect_timeout`) and completes the mTLS handshake for
    /// `protocol`.
    pub(crate) async fn connect(
        &self,
        ctx: &Context,
        snapshot: &Snapshot,
        endpoint: &Endpoint,
        protocol: &'static [u8],
        connect_timeout: Duration,
    ) -> Result<BoxIo, ProxyError> {
        let addr = endpoint.address;
        let connector = self.connector(snapshot, &endpoint.identity, protocol)?;
        let tcp = dial(addr, connect_timeout).await?;
        // SPIFFE peers are named by their ID, not DNS; an IP address as the server name
        // keeps rustls from sending SNI that would only leak the service name.
        let name = ServerName::IpAddress(addr.ip().into());
        let handshake = connector.connect(name, tcp);
        let failed = |reason: &'static str, message: String| {
            ctx.sinks
                .metrics
                .tls_handshake_failure(Direction::Outbound, reason);
            tracing::warn!(%addr, expected = %endpoint.identity, reason, %message,
                "outbound mTLS handshake failed");
            ProxyError::Handshake {
                addr,
                reason,
                message,
            }
        };
        match tokio::time::timeout(ctx.settings.handshake_timeout, handshake).await {
            Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() == Some(protocol) => Ok(Box::new(tls)),
            Ok(Ok(_)) => Err(failed(
                "alpn",
                "the peer did not accept the protocol".into(),
            )),
            Ok(Err(e)) => Err(failed(handshake_failure_reason(&e), e.to_string())),
            Err(_) => Err(failed("timeout", "handshake timed out".into())),
        }
    }
}

/// A connection holding its `max_connections` slot until it is dropped (for a pooled
/// HTTP/2 connection: when its connection task ends).
struct Counted {
    io: BoxIo,
    _slot: Permit,
}

/// `io` counted against the upstream's connection limit while it lives.
pub(crate) fn counted(io: BoxIo, slot: Permit) -> BoxIo {
    Box::new(Counted { io, _slot: slot })
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
