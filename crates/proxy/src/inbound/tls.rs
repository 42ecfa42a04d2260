//! Inbound authentication: the port's mutual TLS mode decides whether the connection
//! must, may or must not be TLS; a TLS handshake yields the peer's verified SPIFFE ID.
//!
//! STRICT: TLS only; anything else is refused with an authentication-layer deny in the
//! log. PERMISSIVE (and the built-in default): the first bytes tell a ClientHello from
//! plaintext. DISABLE: plaintext only, nothing is read ahead.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bulkhead_identity::SpiffeId;
use bulkhead_identity::verify::{peer_id, server_config};
use bulkhead_resources::MtlsMode;
use rustls::server::ResolvesServerCert;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::authorize;
use crate::detect::{self, Protocol, Rewind};
use crate::error::ProxyError;
use crate::forward::{BoxIo, alpn, handshake_failure_reason};
use crate::metrics::Direction;
use crate::run::Context;
use crate::snapshot::{Inbound, Snapshot};

/// The TLS server configuration of the snapshot in force, built once per snapshot
/// version (the certificate and bundle inside rotate in place without a rebuild).
#[derive(Default)]
pub(crate) struct ServerTls {
    cache: Mutex<Option<(u64, TlsAcceptor)>>,
}

impl ServerTls {
    fn acceptor(&self, snapshot: &Snapshot) -> Result<TlsAcceptor, ProxyError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((version, acceptor)) = cache.as_ref()
            && *version == snapshot.version
        {
            return Ok(acceptor.clone());
        }
        let certs: Arc<dyn ResolvesServerCert> = snapshot.svid.clone();
        let mut config =
            server_config(snapshot.bundle.clone(), certs).map_err(ProxyError::TlsConfig)?;
        config.alpn_protocols = alpn::ALL.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        *cache = Some((snapshot.version, acceptor.clone()));
        Ok(acceptor)
    }
}

/// A connection past the authentication phase.
pub(crate) struct Accepted {
    /// The stream (TLS, or plaintext with any bytes read ahead replayed).
    pub(crate) io: BoxIo,
    /// The verified peer identity; `None` for plaintext.
    pub(crate) peer_id: Option<SpiffeId>,
    /// The ALPN protocol the peer sidecar chose.
    pub(crate) alpn: Option<Vec<u8>>,
    /// What detection saw on a plaintext connection.
    pub(crate) detected: Option<Protocol>,
}

/// Runs the authentication phase; `None` when the connection was refused or failed (it
/// has been logged and counted).
pub(crate) async fn accept(
    ctx: &Context,
    snapshot: &Snapshot,
    inbound: &Inbound,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Option<Accepted> {
    let (mode, _) = snapshot.engine.mtls_mode(snapshot.endpoint, inbound.port);
    if mode == MtlsMode::Disable {
        return Some(plaintext(Box::new(tcp), None));
    }
    // Under STRICT only TLS-or-not matters, and a TLS client always speaks first, so it
    // may take as long as a handshake; elsewhere a silent client is plaintext after the
    // detection timeout.
    let wait = match mode {
        MtlsMode::Strict => ctx.settings.handshake_timeout,
        _ => ctx.settings.detect_timeout,
    };
    let (protocol, prefix) = match detect::detect(&mut tcp, wait).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, "connection failed before its first bytes");
            return None;
        }
    };
    let io = Rewind::new(prefix, tcp);
    if protocol != Protocol::Tls {
        if mode == MtlsMode::Strict {
            authorize::plaintext_refused(ctx, snapshot, inbound, peer);
            crate::respond::close(Box::new(io)).await;
            return None;
        }
        return Some(plaintext(Box::new(io), Some(protocol)));
    }
    handshake(ctx, snapshot, io).await
}

fn plaintext(io: BoxIo, detected: Option<Protocol>) -> Accepted {
    Accepted {
        io,
        peer_id: None,
        alpn: None,
        detected,
    }
}

async fn handshake(ctx: &Context, snapshot: &Snapshot, io: Rewind<TcpStream>) -> Option<Accepted> {
    let acceptor = match ctx.server_tls.acceptor(snapshot) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "inbound TLS unavailable");
            return None;
        }
    };
    let metrics = &ctx.sinks.metrics;
    match tokio::time::timeout(ctx.settings.handshake_timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => {
            let (_, conn) = tls.get_ref();
            let peer_id = peer_id(conn);
            let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            Some(Accepted {
                io: Box::new(tls),
                peer_id,
                alpn,
                detected: None,
            })
        }
        Ok(Err(e)) => {
            let reason = handshake_failure_reason(&e);
            metrics.tls_handshake_failure(Direction::Inbound, reason);
            tracing::info!(reason, error = %e, "inbound mTLS handshake failed");
            None
        }
        Err(_) => {
            metrics.tls_handshake_failure(Direction::Inbound, "timeout");
            tracing::info!("inbound mTLS handshake timed out");
            None
        }
    }
}
