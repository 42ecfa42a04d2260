//! The outbound side: the app dials a local listener in plaintext; the connection's
//! protocol is declared or detected, then each HTTP request (or the TCP stream) goes to
//! an endpoint of the upstream service over mTLS, checked against the endpoint's expected
//! SPIFFE ID.
//!
//! ```text
//! accept → detect (auto: h2 preface / HTTP/1 method / else TCP, bounded wait;
//! opaque: none) → balance (round-robin) → connect (pooled HTTP/2 for requests,
//! dedicated connections for upgrades and TCP) → forward → respond / log
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::Instrument;

use crate::config::AppProtocol;
use crate::detect::{self, Protocol, Rewind};
use crate::error::ProxyError;
use crate::forward::http::Verdict;
use crate::forward::server::Version;
use crate::forward::tcp::{TcpLog, splice};
use crate::forward::{BoxIo, alpn};
use crate::metrics::Direction;
use crate::run::{Context, Drain, ListenerKey};
use crate::snapshot::{Endpoint, Outbound, Snapshot};

pub(crate) mod balance;
pub(crate) mod connect;
mod http;

use balance::Balancer;

/// How many endpoints a request or connection tries when connecting fails.
const CONNECT_ATTEMPTS: usize = 2;

/// Serves one connection from the app to its end.
pub(crate) async fn serve(
    ctx: Arc<Context>,
    key: ListenerKey,
    balancer: Arc<Balancer>,
    tcp: TcpStream,
    client: SocketAddr,
    drain: Drain,
) {
    let start = Instant::now();
    let snapshot = ctx.snapshot();
    let Some(outbound) = key.outbound(&snapshot) else {
        return;
    };
    let protocol = outbound.protocol;
    let span = tracing::info_span!(
        "outbound",
        service = %outbound.service,
        client = %client,
        protocol = tracing::field::Empty,
    );
    async move {
        let Some((version, io)) = classify(&ctx, protocol, tcp).await else {
            return;
        };
        tracing::Span::current().record("protocol", if version.is_some() { "http" } else { "tcp" });
        match version {
            Some(version) => {
                let conn = http::Conn::new(ctx.clone(), key, balancer, client, &snapshot);
                http::serve(conn, io, version, drain).await;
            }
            None => forward_tcp(&ctx, key, &balancer, io, client, start).await,
        }
    }
    .instrument(span)
    .await;
}

/// The connection's protocol (`None`: opaque TCP), detecting it for `auto`.
async fn classify(
    ctx: &Context,
    declared: AppProtocol,
    mut tcp: TcpStream,
) -> Option<(Option<Version>, BoxIo)> {
    let version = match declared {
        AppProtocol::Tcp | AppProtocol::Opaque => None,
        AppProtocol::Http => Some(Version::Http1),
        AppProtocol::Http2 | AppProtocol::Grpc => Some(Version::Http2),
        AppProtocol::Auto => {
            let (p, prefix) = match detect::detect(&mut tcp, ctx.settings.detect_timeout).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(error = %e, "connection failed during detection");
                    return None;
                }
            };
            let version = match p {
                Protocol::Http1 => Some(Version::Http1),
                Protocol::Http2 => Some(Version::Http2),
                Protocol::Tls | Protocol::Tcp => None,
            };
            return Some((version, Box::new(Rewind::new(prefix, tcp))));
        }
    };
    Some((version, Box::new(tcp)))
}

/// Connects to the first of up to [`CONNECT_ATTEMPTS`] endpoints that accepts.
pub(crate) async fn connect_any<'s>(
    ctx: &Context,
    snapshot: &'s Snapshot,
    outbound: &'s Outbound,
    balancer: &Balancer,
    protocol: &'static [u8],
) -> Result<(&'s Endpoint, BoxIo), ProxyError> {
    let mut last = no_endpoints(outbound);
    for endpoint in balancer.candidates(&outbound.endpoints, CONNECT_ATTEMPTS) {
        match ctx
            .connector
            .connect(ctx, snapshot, endpoint, protocol)
            .await
        {
            Ok(io) => return Ok((endpoint, io)),
            Err(e) if e.is_connect() => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn no_endpoints(outbound: &Outbound) -> ProxyError {
    ProxyError::NoEndpoints {
        service: outbound.service.clone(),
    }
}

/// Splices an opaque TCP connection to an endpoint, or closes it.
async fn forward_tcp(
    ctx: &Context,
    key: ListenerKey,
    balancer: &Balancer,
    io: BoxIo,
    client: SocketAddr,
    start: Instant,
) {
    let snapshot = ctx.snapshot();
    let Some(outbound) = key.outbound(&snapshot) else {
        return crate::respond::close(io).await;
    };
    let mut log = TcpLog {
        sinks: ctx.sinks.clone(),
        direction: Direction::Outbound,
        source: Some(snapshot.identity.as_str().into()),
        source_addr: client,
        destination: None,
        upstream: None,
        start,
        verdict: Verdict::unchecked(),
        upgraded: None,
    };
    match connect_any(ctx, &snapshot, outbound, balancer, alpn::TCP).await {
        Ok((endpoint, upstream)) => {
            log.destination = Some(endpoint.identity.as_str().into());
            log.upstream = Some(endpoint.address);
            log.opened();
            log.closed(splice(io, upstream, ctx.settings.idle_timeout).await);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no upstream for the TCP connection");
            log.refused();
            crate::respond::close(io).await;
        }
    }
}
