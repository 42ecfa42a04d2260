//! The inbound side: peers (other sidecars, or plaintext clients where the mode allows)
//! connect here; the connection is authenticated, then every TCP connection or HTTP
//! request is authorized and forwarded to the app.
//!
//! ```text
//! accept → tls (mTLS mode, handshake, peer identity) → protocol (ALPN, or the port's
//! protocol, or detection) → authorize (per connection for TCP, per request for HTTP)
//! → forward to `forward_to` (app client) → respond / log
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::Instrument;

use crate::config::AppProtocol;
use crate::detect::{self, Protocol, Rewind};
use crate::forward::server::Version;
use crate::forward::tcp::{TcpLog, splice};
use crate::forward::{BoxIo, alpn, dial};
use crate::metrics::Direction;
use crate::run::{Context, Drain, ListenerKey};
use crate::snapshot::{Inbound, Snapshot};

pub(crate) mod app;
pub(crate) mod authorize;
mod http;
pub(crate) mod tls;

use authorize::Peer;

/// Serves one accepted inbound connection to its end.
pub(crate) async fn serve(
    ctx: Arc<Context>,
    key: ListenerKey,
    tcp: TcpStream,
    addr: SocketAddr,
    drain: Drain,
) {
    let start = Instant::now();
    let snapshot = ctx.snapshot();
    let Some(inbound) = key.inbound(&snapshot).cloned() else {
        return;
    };
    let span = tracing::info_span!(
        "inbound",
        peer.addr = %addr,
        port = inbound.port,
        peer.id = tracing::field::Empty,
        protocol = tracing::field::Empty,
    );
    // The firewall reads the server's side of the connection (SERVER_ADDR, SERVER_PORT).
    let local = tcp.local_addr().unwrap_or(inbound.listen);
    async move {
        let accepted = tls::accept(&ctx, &snapshot, &inbound, tcp, addr).await?;
        let peer = Peer {
            addr,
            id: accepted.peer_id.as_ref().map(|id| Arc::from(id.as_str())),
        };
        if let Some(id) = &peer.id {
            tracing::Span::current().record("peer.id", &**id);
        }
        let (version, io) = protocol(&ctx, &inbound, accepted).await?;
        tracing::Span::current().record("protocol", version.map_or("tcp", version_name));
        match version {
            Some(version) => {
                let conn = http::Conn::new(ctx, key, peer, local, &snapshot);
                http::serve(conn, io, version, drain).await;
            }
            None => forward_tcp(&ctx, &snapshot, &inbound, &peer, io, start).await,
        }
        Some(())
    }
    .instrument(span)
    .await;
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::Http1 => "http/1",
        Version::Http2 => "http/2",
    }
}

/// What the connection carries (`None`: opaque TCP): the peer sidecar's ALPN choice,
/// else the port's declared protocol, else detection.
async fn protocol(
    ctx: &Context,
    inbound: &Inbound,
    accepted: tls::Accepted,
) -> Option<(Option<Version>, BoxIo)> {
    let mut io = accepted.io;
    let chosen = match accepted.alpn.as_deref() {
        Some(alpn::H2) => Some(Some(Version::Http2)),
        Some(alpn::HTTP1) => Some(Some(Version::Http1)),
        Some(alpn::TCP) => Some(None),
        // No sidecar on the other end: what the client was seen to speak decides how
        // to serve it (the app's declared protocol decides how to talk to the app);
        // without a look at its bytes (DISABLE, or TLS without ALPN) the declaration does.
        _ => match (inbound.protocol, accepted.detected) {
            (AppProtocol::Tcp | AppProtocol::Opaque, _) => Some(None),
            (_, Some(seen)) => Some(from_detected(seen)),
            (AppProtocol::Http, None) => Some(Some(Version::Http1)),
            (AppProtocol::Http2 | AppProtocol::Grpc, None) => Some(Some(Version::Http2)),
            (AppProtocol::Auto, None) => None,
        },
    };
    if let Some(version) = chosen {
        return Some((version, io));
    }
    // Nothing seen yet on an `auto` port (DISABLE, or TLS without ALPN): detect now.
    match detect::detect(&mut io, ctx.settings.detect_timeout).await {
        Ok((p, prefix)) => Some((from_detected(p), Box::new(Rewind::new(prefix, io)))),
        Err(e) => {
            tracing::debug!(error = %e, "connection failed during detection");
            None
        }
    }
}

fn from_detected(p: Protocol) -> Option<Version> {
    match p {
        Protocol::Http1 => Some(Version::Http1),
        Protocol::Http2 => Some(Version::Http2),
        Protocol::Tls | Protocol::Tcp => None,
    }
}

/// Authorizes an opaque TCP connection and splices it to the app, or closes it.
async fn forward_tcp(
    ctx: &Context,
    snapshot: &Snapshot,
    inbound: &Inbound,
    peer: &Peer,
    io: BoxIo,
    start: Instant,
) {
    let verdict = authorize::decide(ctx, snapshot, inbound.port, peer, None);
    let log = TcpLog {
        resilience: crate::forward::http::Resilience::default(),
        sinks: ctx.sinks.clone(),
        direction: Direction::Inbound,
        source: peer.id.clone(),
        source_addr: peer.addr,
        destination: Some(snapshot.identity.as_str().into()),
        upstream: Some(inbound.forward_to),
        start,
        verdict,
        upgraded: None,
    };
    if !log.verdict.allowed {
        log.refused();
        crate::respond::close(io).await;
        return;
    }
    let app = match dial(inbound.forward_to, ctx.settings.connect_timeout).await {
        Ok(app) => app,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the app");
            log.refused();
            crate::respond::close(io).await;
            return;
        }
    };
    log.opened();
    log.closed(splice(io, Box::new(app), ctx.settings.idle_timeout).await);
}
