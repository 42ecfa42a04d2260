//! Inbound authorization: the policy engine decides every TCP connection and every HTTP
//! request, with the peer as the mTLS handshake (or the socket) revealed it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bulkhead_policy::{Destination, HttpRequest, RawPeer, Request, Source};
use bulkhead_resources::Protocol;

use crate::forward::http::Verdict;
use crate::forward::tcp::TcpLog;
use crate::metrics::Direction;
use crate::run::Context;
use crate::snapshot::{Inbound, Snapshot};

/// The peer of an inbound connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// Its verified SPIFFE ID (`spiffe://...`); `None` for plaintext.
    pub(crate) id: Option<Arc<str>>,
}

impl Peer {
    /// The mTLS principal as policies write it: the SPIFFE ID without its scheme.
    fn principal(&self) -> Option<&str> {
        self.id
            .as_deref()
            .map(|id| id.strip_prefix("spiffe://").unwrap_or(id))
    }
}

/// Decides a connection (`http: None`) or a request on the snapshot's engine, and
/// counts the decision.
pub(crate) fn decide(
    ctx: &Context,
    snapshot: &Snapshot,
    port: u16,
    peer: &Peer,
    http: Option<&HttpRequest>,
) -> Verdict {
    let request = Request {
        source: Source::Raw(RawPeer {
            ip: Some(peer.addr.ip()),
            principal: peer.principal(),
            ..RawPeer::default()
        }),
        destination: Destination::Endpoint(snapshot.endpoint),
        port,
        protocol: Protocol::Tcp,
        http,
        jwt: None,
        sni: None,
    };
    let decision = snapshot.engine.evaluate(&request);
    ctx.sinks.metrics.decision(decision.layer, decision.allowed);
    if !decision.allowed {
        tracing::info!(
            layer = decision.layer.as_str(),
            policy = decision.policy,
            reason = %decision.reason,
            "denied"
        );
    }
    Verdict::from_decision(&decision)
}

/// The request attributes authorization policies match on.
pub(crate) fn http_request(req: &http::request::Parts) -> HttpRequest {
    let host = req
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    HttpRequest {
        method: req.method.as_str().to_owned(),
        path: req
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        host,
        headers: req
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
    }
}

/// Refuses a plaintext connection on a STRICT port: the engine names the
/// PeerAuthentication (or an earlier network deny) for the log line.
pub(crate) fn plaintext_refused(
    ctx: &Context,
    snapshot: &Snapshot,
    inbound: &Inbound,
    addr: SocketAddr,
) {
    let peer = Peer { addr, id: None };
    let mut verdict = decide(ctx, snapshot, inbound.port, &peer, None);
    // The engine agrees with `mtls_mode` by construction; refusing regardless keeps the
    // port STRICT even if it ever did not.
    verdict.allowed = false;
    TcpLog {
        resilience: crate::forward::http::Resilience::default(),
        sinks: ctx.sinks.clone(),
        direction: Direction::Inbound,
        source: None,
        source_addr: addr,
        destination: Some(snapshot.identity.as_str().into()),
        upstream: None,
        start: Instant::now(),
        verdict,
        upgraded: None,
    }
    .refused();
}
