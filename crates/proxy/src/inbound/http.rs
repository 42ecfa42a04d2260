//! Inbound HTTP: each request is cleaned, stamped with the verified peer identity,
//! authorized, and forwarded to the app in the app's protocol.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::header::EXPECT;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tracing::Instrument;

use super::authorize::{self, Peer};
use crate::config::AppProtocol;
use crate::error::ProxyError;
use crate::forward::headers::{self, ORIG_PROTO, ORIG_PROTO_HTTP1};
use crate::forward::http::{HttpLog, from_upstream, to_h1, to_h2};
use crate::forward::server::{self, Version};
use crate::forward::{Body, BoxIo, boxed, dial, upgrade};
use crate::metrics::Direction;
use crate::respond;
use crate::run::{Context, Drain, ListenerKey};
use crate::snapshot::{Inbound, Snapshot};

/// What every request of one inbound connection shares.
pub(super) struct Conn {
    ctx: Arc<Context>,
    key: ListenerKey,
    peer: Peer,
    local_id: Arc<str>,
}

impl Conn {
    pub(super) fn new(
        ctx: Arc<Context>,
        key: ListenerKey,
        peer: Peer,
        snapshot: &Snapshot,
    ) -> Arc<Conn> {
        Arc::new(Conn {
            ctx,
            key,
            peer,
            local_id: snapshot.identity.as_str().into(),
        })
    }
}

/// Serves HTTP on an authenticated inbound connection.
pub(super) async fn serve(conn: Arc<Conn>, io: BoxIo, version: Version, drain: Drain) {
    let ctx = conn.ctx.clone();
    let service = service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(conn, req).await) }
    });
    server::serve(io, version, service, &ctx.settings, drain).await;
}

async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<Body> {
    let span = tracing::debug_span!(
        "request",
        method = %req.method(),
        request_id = tracing::field::Empty,
    );
    authorize_and_forward(conn, req).instrument(span).await
}

async fn authorize_and_forward(conn: Arc<Conn>, mut req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let snapshot = conn.ctx.snapshot();
    let request_id = headers::ensure_request_id(req.headers_mut());
    let grpc = respond::is_grpc(req.headers());
    let Some(inbound) = conn.key.inbound(&snapshot) else {
        let gone = ProxyError::ListenerRemoved(conn.key.listen);
        return respond::error(&gone, &request_id, grpc);
    };
    let (upgrade, orig_h1) = clean(&mut req, &conn.peer);
    if let Ok(id) = request_id.to_str() {
        tracing::Span::current().record("request_id", id);
    }
    let (mut parts, body) = req.into_parts();
    let attributes = authorize::http_request(&parts);
    let verdict = authorize::decide(
        &conn.ctx,
        &snapshot,
        inbound.port,
        &conn.peer,
        Some(&attributes),
    );
    let log = HttpLog {
        resilience: crate::forward::http::Resilience::default(),
        sinks: conn.ctx.sinks.clone(),
        direction: Direction::Inbound,
        request_id: request_id.clone(),
        source: conn.peer.id.clone(),
        source_addr: conn.peer.addr,
        destination: Some(conn.local_id.clone()),
        upstream: Some(inbound.forward_to),
        method: parts.method.clone(),
        path: parts.uri.path_and_query().cloned(),
        start,
        bytes_in: Arc::new(AtomicU64::new(0)),
        verdict,
    };
    if !log.verdict.allowed {
        let resp = respond::denied(&log.verdict, &request_id, grpc);
        return log.respond(resp);
    }
    let version = app_version(inbound.protocol, parts.version, orig_h1, upgrade);
    let on_upgrade = upgrade
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    match version {
        Version::Http1 => to_h1(&mut parts),
        Version::Http2 => to_h2(&mut parts, &inbound.forward_to.to_string()),
    }
    let req = Request::from_parts(parts, log.count_request(boxed(body)));
    let resp = match forward(&conn.ctx, inbound, req, version, on_upgrade, &log).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::warn!(error = %e, "request to the app failed");
            respond::error(&e, &request_id, grpc)
        }
    };
    log.respond(resp)
}

/// Request hygiene for the app; returns whether the request upgrades and whether the
/// outbound sidecar marked it as HTTP/1 carried over HTTP/2.
fn clean(req: &mut Request<Incoming>, peer: &Peer) -> (bool, bool) {
    let upgrade = req.version() < http::Version::HTTP_2 && headers::is_upgrade(req.headers());
    let h = req.headers_mut();
    let orig_h1 = h.remove(ORIG_PROTO).as_ref() == Some(&ORIG_PROTO_HTTP1);
    headers::strip_keeping_upgrade(h, upgrade);
    // The 100-continue exchange belongs to the previous hop, which has answered it.
    h.remove(EXPECT);
    headers::set_peer_identity(h, peer.id.as_deref());
    (upgrade, orig_h1)
}

/// The protocol to speak to the app: upgrades need HTTP/1.1; a declared protocol wins;
/// otherwise the client's (HTTP/1 carried over HTTP/2 between sidecars is marked).
fn app_version(
    declared: AppProtocol,
    incoming: http::Version,
    orig_h1: bool,
    upgrade: bool,
) -> Version {
    match declared {
        _ if upgrade => Version::Http1,
        AppProtocol::Http => Version::Http1,
        AppProtocol::Http2 | AppProtocol::Grpc => Version::Http2,
        _ if incoming == http::Version::HTTP_2 && !orig_h1 => Version::Http2,
        _ => Version::Http1,
    }
}

/// Sends `req` to the app; an upgrade goes on its own connection and, once switched, is
/// spliced with its own log line.
async fn forward(
    ctx: &Context,
    inbound: &Inbound,
    req: Request<Body>,
    version: Version,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    log: &HttpLog,
) -> Result<Response<Body>, ProxyError> {
    let addr = inbound.forward_to;
    let Some(downstream) = on_upgrade else {
        let resp = ctx
            .app
            .send(addr, version, req, ctx.settings.connect_timeout)
            .await?;
        return Ok(from_upstream(resp, false));
    };
    let app = dial(addr, ctx.settings.connect_timeout).await?;
    let mut resp = upgrade::send(Box::new(app), addr, req).await?;
    let switch = upgrade::switch(downstream, &mut resp);
    let switched = switch.is_some();
    if let Some(switch) = switch {
        upgrade::bridge(switch, log.upgraded(), ctx.settings.idle_timeout);
    }
    Ok(from_upstream(resp, switched))
}
