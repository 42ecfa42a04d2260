//! The outbound side: the app dials a local listener in plaintext; the connection's
//! protocol is declared or detected, then each HTTP request (or the TCP stream) goes to
//! an endpoint of the upstream service over mTLS, checked against the endpoint's expected
//! SPIFFE ID.
//!
//! ```text
//! accept → detect (auto: h2 preface / HTTP/1 method / else TCP, bounded wait;
//! opaque: none) → balance (P2C peak-EWMA by default, `resilience::balancer`) → connect
//! (pooled HTTP/2 for requests, dedicated connections for upgrades and TCP) → forward
//! (HTTP: timeouts and retries, `retry.rs`) → respond / log
//! ```
//!
//! Every upstream's state (endpoint health, budget, breakers) is a
//! [`crate::resilience::Upstream`] kept for the listener's lifetime, across snapshots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tracing::Instrument;

use crate::config::AppProtocol;
use crate::detect::{self, Protocol, Rewind};
use crate::error::ProxyError;
use crate::forward::http::Verdict;
use crate::forward::server::Version;
use crate::forward::tcp::{TcpLog, splice};
use crate::forward::{BoxIo, alpn};
use crate::metrics::{Direction, Metrics};
use crate::resilience::endpoint::EndpointState;
use crate::resilience::outlier::Outcome;
use crate::resilience::upstream::EndpointSet;
use crate::resilience::{Limit, TimeoutKind, TrafficPolicy, Upstream};
use crate::run::{Context, Drain, ListenerKey};
use crate::snapshot::{Outbound, Snapshot};

pub(crate) mod connect;
mod http;
mod replay;
mod retry;

/// How many endpoints a request or connection tries when connecting fails.
const CONNECT_ATTEMPTS: usize = 2;

/// Serves one connection from the app to its end.
pub(crate) async fn serve(
    ctx: Arc<Context>,
    key: ListenerKey,
    upstream: Arc<Upstream>,
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
                let conn = http::Conn::new(ctx.clone(), key, upstream, client, &snapshot);
                http::serve(conn, io, version, drain).await;
            }
            None => forward_tcp(&ctx, key, &upstream, io, client, start).await,
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

/// Connects to the first of up to [`CONNECT_ATTEMPTS`] endpoints that accepts (nothing
/// has been sent yet, so trying another is always safe); reports each attempt to the
/// outlier detector. On failure the endpoint tried last comes with the error.
pub(crate) async fn connect_any(
    ctx: &Context,
    snapshot: &Arc<Snapshot>,
    outbound: &Outbound,
    up: &Upstream,
    protocol: &'static [u8],
) -> (Option<Arc<EndpointState>>, Result<BoxIo, ProxyError>) {
    let policy = &*outbound.traffic;
    let set = up.endpoints(snapshot, &outbound.endpoints);
    let mut last = (None, Err(no_endpoints(outbound)));
    let mut avoid = None;
    for _ in 0..CONNECT_ATTEMPTS.min(set.endpoints.len()) {
        let now = up.now_ns();
        let Some(i) = up
            .balancer
            .pick(&set.endpoints, policy.load_balancer, avoid, now)
        else {
            break;
        };
        let endpoint = &set.endpoints[i];
        match open(ctx, up, snapshot, endpoint, protocol, policy).await {
            Ok(io) => {
                report(&ctx.sinks.metrics, up, &set, i, Outcome::Success, policy);
                return (Some(Arc::clone(endpoint)), Ok(io));
            }
            Err(e) if e.is_connect() => {
                report(
                    &ctx.sinks.metrics,
                    up,
                    &set,
                    i,
                    Outcome::ConnectFailure,
                    policy,
                );
                last = (Some(Arc::clone(endpoint)), Err(e));
                avoid = Some(i);
            }
            Err(e) => return (Some(Arc::clone(endpoint)), Err(e)),
        }
    }
    last
}

/// Opens a connection to `endpoint` within the connect timeout, holding a
/// `max_connections` slot for as long as the connection lives.
pub(crate) async fn open(
    ctx: &Context,
    up: &Upstream,
    snapshot: &Snapshot,
    endpoint: &EndpointState,
    protocol: &'static [u8],
    policy: &TrafficPolicy,
) -> Result<BoxIo, ProxyError> {
    let Some(slot) = up.acquire(Limit::Connections, policy.limits.max_connections) else {
        return Err(retry::overflow(&ctx.sinks.metrics, Limit::Connections));
    };
    let limit = ctx.settings.connect_timeout.min(policy.timeouts.connect);
    let connected = ctx
        .connector
        .connect(ctx, snapshot, &endpoint.endpoint, protocol, limit)
        .await;
    match connected {
        Ok(io) => Ok(connect::counted(io, slot)),
        Err(ProxyError::ConnectTimeout { .. }) => Err(retry::timed_out(
            &ctx.sinks.metrics,
            TimeoutKind::Connect,
            limit,
        )),
        Err(e) => Err(e),
    }
}

/// Feeds one outcome to the outlier detector; an ejection is counted, logged, and its
/// end (re-admission) logged and counted when it comes.
pub(crate) fn report(
    metrics: &Arc<Metrics>,
    up: &Upstream,
    set: &EndpointSet,
    index: usize,
    outcome: Outcome,
    policy: &TrafficPolicy,
) {
    let Some(ejection) = up.record(set, index, outcome, &policy.outlier) else {
        return;
    };
    let address = set.endpoints[index].endpoint.address;
    let metrics = Arc::clone(metrics);
    metrics.ejection(ejection.reason);
    tracing::warn!(endpoint = %address, reason = ejection.reason.as_str(),
        duration = ?ejection.duration, ejections = ejection.ejections,
        "upstream endpoint ejected");
    tokio::spawn(async move {
        tokio::time::sleep(ejection.duration).await;
        metrics.readmitted();
        tracing::info!(endpoint = %address, "ejected upstream endpoint re-admitted");
    });
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
    up: &Upstream,
    io: BoxIo,
    client: SocketAddr,
    start: Instant,
) {
    let snapshot = ctx.snapshot();
    let Some(outbound) = key.outbound(&snapshot) else {
        return crate::respond::close(io).await;
    };
    let mut log = TcpLog {
        resilience: crate::forward::http::Resilience::default(),
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
    let (endpoint, connected) = connect_any(ctx, &snapshot, outbound, up, alpn::TCP).await;
    log.resilience.endpoint = endpoint.as_ref().map(|e| e.endpoint.address);
    match connected {
        Ok(upstream) => {
            let endpoint = endpoint.as_ref().map(|e| &e.endpoint);
            log.destination = endpoint.map(|e| e.identity.as_str().into());
            log.upstream = endpoint.map(|e| e.address);
            log.opened();
            let idle = idle_timeout(ctx, outbound);
            log.closed(splice(io, upstream, idle).await);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no upstream for the TCP connection");
            log.resilience.note(&e);
            log.refused();
            crate::respond::close(io).await;
        }
    }
}

/// The idle timeout of TCP and upgraded streams to `outbound`: the policy's, or the
/// proxy-wide setting when that is shorter.
pub(crate) fn idle_timeout(ctx: &Context, outbound: &Outbound) -> Option<Duration> {
    let policy = outbound.traffic.timeouts.idle;
    Some(ctx.settings.idle_timeout.map_or(policy, |s| s.min(policy)))
}
