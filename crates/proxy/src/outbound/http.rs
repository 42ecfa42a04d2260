//! Outbound HTTP: each request from the app is cleaned and sent to an endpoint of the
//! upstream service, over the pooled HTTP/2 connection to it (HTTP/1 requests marked so
//! that the far side speaks HTTP/1.1 to its app), or for an upgrade over a dedicated
//! HTTP/1.1 connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::header::EXPECT;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tracing::Instrument;

use super::{connect_any, idle_timeout, retry};
use crate::error::ProxyError;
use crate::forward::headers::{self, ORIG_PROTO, ORIG_PROTO_HTTP1, PEER_IDENTITY};
use crate::forward::http::{HttpLog, Verdict, from_upstream, to_h2};
use crate::forward::server::{self, Version};
use crate::forward::{Body, BoxIo, alpn, boxed, upgrade};
use crate::metrics::Direction;
use crate::resilience::Upstream;
use crate::resilience::endpoint::EndpointState;
use crate::respond;
use crate::run::{Context, Drain, ListenerKey};
use crate::snapshot::{Outbound, Snapshot};

/// What every request of one app connection shares.
pub(super) struct Conn {
    ctx: Arc<Context>,
    key: ListenerKey,
    upstream: Arc<Upstream>,
    client: SocketAddr,
    local_id: Arc<str>,
}

impl Conn {
    pub(super) fn new(
        ctx: Arc<Context>,
        key: ListenerKey,
        upstream: Arc<Upstream>,
        client: SocketAddr,
        snapshot: &Snapshot,
    ) -> Arc<Conn> {
        Arc::new(Conn {
            ctx,
            key,
            upstream,
            client,
            local_id: snapshot.identity.as_str().into(),
        })
    }
}

/// Serves HTTP from the app.
pub(super) async fn serve(conn: Arc<Conn>, io: BoxIo, version: Version, drain: Drain) {
    let ctx = conn.ctx.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let conn = conn.clone();
        let span = tracing::debug_span!(
            "request",
            method = %req.method(),
            request_id = tracing::field::Empty,
        );
        async move { Ok::<_, Infallible>(handle(conn, req).instrument(span).await) }
    });
    server::serve(io, version, service, &ctx.settings, drain).await;
}

async fn handle(conn: Arc<Conn>, mut req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let snapshot = conn.ctx.snapshot();
    let request_id = headers::ensure_request_id(req.headers_mut());
    if let Ok(id) = request_id.to_str() {
        tracing::Span::current().record("request_id", id);
    }
    let grpc = respond::is_grpc(req.headers());
    let Some(outbound) = conn.key.outbound(&snapshot) else {
        let gone = ProxyError::ListenerRemoved(conn.key.listen);
        return respond::error(&gone, &request_id, grpc);
    };
    let upgrade = req.version() < http::Version::HTTP_2 && headers::is_upgrade(req.headers());
    let h = req.headers_mut();
    headers::strip_keeping_upgrade(h, upgrade);
    // Sidecar-to-sidecar headers are never taken from the app.
    h.remove(PEER_IDENTITY);
    h.remove(ORIG_PROTO);
    // This hop answered `Expect: 100-continue` by reading the body; the next must not wait.
    h.remove(EXPECT);
    let mut log = HttpLog {
        resilience: crate::forward::http::Resilience::default(),
        sinks: conn.ctx.sinks.clone(),
        direction: Direction::Outbound,
        request_id: request_id.clone(),
        source: Some(conn.local_id.clone()),
        source_addr: conn.client,
        destination: None,
        upstream: None,
        method: req.method().clone(),
        path: req.uri().path_and_query().cloned(),
        start,
        bytes_in: Arc::new(AtomicU64::new(0)),
        verdict: Verdict::unchecked(),
        waf: None,
    };
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, log.count_request(boxed(body)));
    let sent = if upgrade {
        forward_upgrade(&conn, &snapshot, outbound, req, &log).await
    } else {
        forward(&conn, &snapshot, outbound, req).await
    };
    log.resilience.retries = sent.retries;
    log.resilience.endpoint = sent.endpoint.as_ref().map(|e| e.endpoint.address);
    let resp = match sent.result {
        Ok(resp) => {
            let endpoint = sent.endpoint.as_ref().map(|e| &e.endpoint);
            log.destination = endpoint.map(|e| e.identity.as_str().into());
            log.upstream = endpoint.map(|e| e.address);
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, service = %outbound.service, "request not forwarded");
            log.resilience.note(&e);
            respond::error(&e, &request_id, grpc)
        }
    };
    log.respond(resp)
}

/// Sends a request over the pooled HTTP/2 connection to an endpoint, with the
/// upstream's timeouts and retries.
async fn forward(
    conn: &Conn,
    snapshot: &Arc<Snapshot>,
    outbound: &Outbound,
    req: Request<Body>,
) -> retry::Sent {
    let (mut parts, body) = req.into_parts();
    if parts.version < http::Version::HTTP_2 {
        parts.headers.insert(ORIG_PROTO, ORIG_PROTO_HTTP1);
    }
    to_h2(&mut parts, &outbound.service);
    let req = Request::from_parts(parts, body);
    retry::send(&conn.ctx, &conn.upstream, snapshot, outbound, req).await
}

/// Sends an upgrade request on its own HTTP/1.1 connection and, once the endpoint
/// switches protocols, splices the two connections (the stream gets its own log line).
async fn forward_upgrade(
    conn: &Conn,
    snapshot: &Arc<Snapshot>,
    outbound: &Outbound,
    mut req: Request<Body>,
    log: &HttpLog,
) -> retry::Sent {
    let downstream = hyper::upgrade::on(&mut req);
    let (endpoint, connected) =
        connect_any(&conn.ctx, snapshot, outbound, &conn.upstream, alpn::HTTP1).await;
    let result = match connected {
        Ok(io) => {
            upgrade(
                conn,
                outbound,
                endpoint.as_deref(),
                io,
                req,
                downstream,
                log,
            )
            .await
        }
        Err(e) => Err(e),
    };
    retry::Sent {
        endpoint,
        retries: 0,
        result,
    }
}

async fn upgrade(
    conn: &Conn,
    outbound: &Outbound,
    endpoint: Option<&EndpointState>,
    io: BoxIo,
    req: Request<Body>,
    downstream: hyper::upgrade::OnUpgrade,
    log: &HttpLog,
) -> Result<Response<Body>, ProxyError> {
    let Some(endpoint) = endpoint.map(|e| &e.endpoint) else {
        return Err(super::no_endpoints(outbound));
    };
    let mut resp = upgrade::send(io, endpoint.address, req).await?;
    let switch = upgrade::switch(downstream, &mut resp);
    let switched = switch.is_some();
    if let Some(switch) = switch {
        let mut stream = log.upgraded();
        stream.destination = Some(endpoint.identity.as_str().into());
        stream.upstream = Some(endpoint.address);
        upgrade::bridge(switch, stream, idle_timeout(&conn.ctx, outbound));
    }
    Ok(from_upstream(resp, switched))
}
