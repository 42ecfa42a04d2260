//! Inbound HTTP: each request is cleaned, stamped with the verified peer identity,
//! authorized, inspected by the web application firewall when the snapshot has one, and
//! forwarded to the app in the app's protocol.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::header::EXPECT;
use http::{HeaderMap, Request, Response};
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
use crate::waf::inspect::{Inspection, Refusal, RequestInfo};

/// What every request of one inbound connection shares.
pub(super) struct Conn {
    ctx: Arc<Context>,
    key: ListenerKey,
    peer: Peer,
    /// The local end of the connection (the firewall's server address).
    local: SocketAddr,
    local_id: Arc<str>,
}

impl Conn {
    pub(super) fn new(
        ctx: Arc<Context>,
        key: ListenerKey,
        peer: Peer,
        local: SocketAddr,
        snapshot: &Snapshot,
    ) -> Arc<Conn> {
        Arc::new(Conn {
            ctx,
            key,
            peer,
            local,
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
    // The firewall reads the headers as the client sent them, before the cleaning below.
    let received = snapshot
        .waf
        .as_ref()
        .and_then(|w| w.rules())
        .map(|_| req.headers().clone());
    let (upgrade, orig_h1) = clean(&mut req, &conn.peer);
    if let Ok(id) = request_id.to_str() {
        tracing::Span::current().record("request_id", id);
    }
    let (parts, body) = req.into_parts();
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
        waf: None,
    };
    if !log.verdict.allowed {
        let resp = respond::denied(&log.verdict, &request_id, grpc);
        return log.respond(resp);
    }
    let shape = Shape {
        upgrade,
        orig_h1,
        grpc,
    };
    let req = Request::from_parts(parts, log.count_request(boxed(body)));
    to_app(&conn, &snapshot, inbound, req, received, shape, log).await
}

/// An allowed request on its way to the app: through the firewall when the snapshot has
/// one, converted to the app's protocol, forwarded, and its answer (the app's, the
/// firewall's or the proxy's own) logged.
async fn to_app(
    conn: &Conn,
    snapshot: &Snapshot,
    inbound: &Inbound,
    req: Request<Body>,
    received: Option<HeaderMap>,
    shape: Shape,
    mut log: HttpLog,
) -> Response<Body> {
    let request_id = log.request_id.clone();
    let metrics = &conn.ctx.sinks.metrics;
    let (mut parts, body) = req.into_parts();
    let inspected = match &received {
        Some(headers) => firewall_request(conn, snapshot, &parts, headers, body, shape).await,
        None => Ok((body, None)),
    };
    let (body, inspection) = match inspected {
        Ok(passed) => passed,
        Err((inspection, refusal)) => {
            log.waf = inspection.finish(metrics).map(Box::new);
            return log.respond(respond::waf_refused(
                refusal.status,
                &request_id,
                shape.grpc,
            ));
        }
    };
    let version = app_version(
        inbound.protocol,
        parts.version,
        shape.orig_h1,
        shape.upgrade,
    );
    let on_upgrade = shape
        .upgrade
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    match version {
        Version::Http1 => to_h1(&mut parts),
        Version::Http2 => to_h2(&mut parts, &inbound.forward_to.to_string()),
    }
    let req = Request::from_parts(parts, body);
    let (resp, from_app) = match forward(&conn.ctx, inbound, req, version, on_upgrade, &log).await {
        Ok(resp) => (resp, true),
        Err(e) => {
            tracing::warn!(error = %e, "request to the app failed");
            (respond::error(&e, &request_id, shape.grpc), false)
        }
    };
    let Some(mut inspection) = inspection else {
        return log.respond(resp);
    };
    // The app's answers only: not the proxy's own errors, not a switch of protocols
    // (whose stream is already bridged).
    let resp = match from_app && !shape.upgrade {
        false => resp,
        true => match inspection.response(resp, shape.grpc).await {
            Ok(resp) => resp,
            Err(refusal) => respond::waf_refused(refusal.status, &request_id, shape.grpc),
        },
    };
    log.waf = inspection.finish(metrics).map(Box::new);
    log.respond(resp)
}

/// What forwarding and the firewall need to know about a request.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// It asks to switch protocols (HTTP/1.1 `Upgrade`).
    upgrade: bool,
    /// An HTTP/1 request carried over HTTP/2 between sidecars.
    orig_h1: bool,
    /// A gRPC call.
    grpc: bool,
}

/// The firewall's request phases, when the snapshot has a firewall that runs: the body
/// to forward (held back and replayed) with the inspection to finish after the
/// response, or the refusal to answer with.
async fn firewall_request(
    conn: &Conn,
    snapshot: &Snapshot,
    head: &http::request::Parts,
    received: &HeaderMap,
    body: Body,
    shape: Shape,
) -> Result<(Body, Option<Inspection>), (Inspection, Refusal)> {
    let Some((waf, rules)) = snapshot
        .waf
        .as_ref()
        .and_then(|w| Some((w, Arc::clone(w.rules()?))))
    else {
        return Ok((body, None));
    };
    let info = RequestInfo {
        peer: conn.peer.addr,
        local: conn.local,
        head,
        headers: received,
        // Streams are passed on as they come: holding them back would break them.
        streaming: shape.upgrade || shape.grpc,
    };
    let (inspection, outcome) = Inspection::request(waf, rules, info, body).await;
    match outcome {
        Ok(body) => Ok((body, Some(inspection))),
        Err(refusal) => Err((inspection, refusal)),
    }
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
