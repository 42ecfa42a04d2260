//! HTTP version conversion between hops, and the per-request record that becomes one
//! access log line and the request metrics once the response has been sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bulkhead_policy::{Decision, Layer, Reason};
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Method, Response, Version, request};
use hyper::body::Incoming;

use super::Body;
use super::body::{Counting, Tracked};
use super::tcp::{TcpLog, UpgradedRequest};
use crate::accesslog::{AccessLog, Entry};
use crate::metrics::{Direction, Metrics};
use crate::waf::{WafAction, WafEvent};

/// Prepares a request head to travel over HTTP/2: absolute URI (scheme and authority
/// from the URI, else the `Host` header, else `fallback`), no `Host` header.
pub(crate) fn to_h2(parts: &mut request::Parts, fallback: &str) {
    let authority = parts
        .uri
        .authority()
        .cloned()
        .or_else(|| host_authority(parts))
        .or_else(|| fallback.parse::<Authority>().ok());
    let scheme = parts.uri.scheme().cloned().unwrap_or(Scheme::HTTP);
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut builder = Uri::builder().scheme(scheme).path_and_query(path);
    if let Some(authority) = authority {
        builder = builder.authority(authority);
    }
    if let Ok(uri) = builder.build() {
        parts.uri = uri;
    }
    parts.headers.remove(header::HOST);
    parts.version = Version::HTTP_2;
}

/// Prepares a request head to travel over HTTP/1.1: origin-form target and a `Host`
/// header (from the URI's authority when the request came over HTTP/2).
pub(crate) fn to_h1(parts: &mut request::Parts) {
    if !parts.headers.contains_key(header::HOST)
        && let Some(value) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, value);
    }
    if parts.uri.authority().is_some() && parts.method != Method::CONNECT {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
    }
    parts.version = Version::HTTP_11;
}

/// An upstream response as it goes back downstream: hop-by-hop headers stripped (except
/// those of a 101 that switches protocols), body boxed.
pub(crate) fn from_upstream(resp: Response<Incoming>, switched: bool) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    super::headers::strip_keeping_upgrade(&mut parts.headers, switched);
    Response::from_parts(parts, super::boxed(body))
}

fn host_authority(parts: &request::Parts) -> Option<Authority> {
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    host.parse().ok()
}

/// A policy verdict as it is logged: owned, so that it outlives the snapshot's engine.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Allowed (or not checked, on the outbound side).
    pub(crate) allowed: bool,
    /// The deciding layer; `None` when no policy was evaluated (the outbound side).
    pub(crate) layer: Option<Layer>,
    /// `Kind/ns/name` of the deciding policy.
    pub(crate) policy: Option<Box<str>>,
    /// Why.
    pub(crate) reason: Option<Reason>,
}

impl Verdict {
    /// Traffic no policy was evaluated for (the outbound side enforces nothing yet; the
    /// destination's sidecar decides).
    pub(crate) fn unchecked() -> Self {
        Verdict {
            allowed: true,
            layer: None,
            policy: None,
            reason: None,
        }
    }

    /// The loggable part of an engine decision.
    pub(crate) fn from_decision(d: &Decision<'_>) -> Self {
        Verdict {
            allowed: d.allowed,
            layer: Some(d.layer),
            policy: d.policy.map(Into::into),
            reason: Some(d.reason.clone()),
        }
    }

    /// `allow` / `deny`, or `unchecked` where this sidecar made no decision (outbound: the
    /// destination's sidecar decides, and its own log line names the policy).
    pub(crate) fn decision(&self) -> &'static str {
        match (self.layer, self.allowed) {
            (None, _) => "unchecked",
            (Some(_), true) => "allow",
            (Some(_), false) => "deny",
        }
    }
}

/// What the outbound resilience layer adds to a log line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resilience {
    /// Retries sent.
    pub(crate) retries: u32,
    /// The endpoint of the last try or connection attempt.
    pub(crate) endpoint: Option<SocketAddr>,
    /// The circuit breaker that refused the request.
    pub(crate) overflow: Option<&'static str>,
    /// The timeout that fired.
    pub(crate) timeout: Option<&'static str>,
}

impl Resilience {
    /// The overflow or timeout `err` names, if any.
    pub(crate) fn note(&mut self, err: &crate::error::ProxyError) {
        use crate::error::ProxyError;
        match err {
            ProxyError::Overflow { limit } => self.overflow = Some(limit.as_str()),
            ProxyError::Timeout { kind, .. } => self.timeout = Some(kind.as_str()),
            ProxyError::ConnectTimeout { .. } => self.timeout = Some("connect"),
            _ => {}
        }
    }
}

/// Where a request's log line and metrics go.
#[derive(Clone)]
pub(crate) struct Sinks {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) access_log: Arc<AccessLog>,
}

/// Everything one access log line needs about a request, gathered as it passes.
pub(crate) struct HttpLog {
    pub(crate) sinks: Sinks,
    pub(crate) direction: Direction,
    pub(crate) request_id: HeaderValue,
    pub(crate) source: Option<Arc<str>>,
    pub(crate) source_addr: SocketAddr,
    pub(crate) destination: Option<Arc<str>>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) method: Method,
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) start: Instant,
    pub(crate) bytes_in: Arc<AtomicU64>,
    pub(crate) verdict: Verdict,
    pub(crate) resilience: Resilience,
    /// The firewall's record of the request (inbound), when it logged or refused.
    pub(crate) waf: Option<Box<WafEvent>>,
}

impl HttpLog {
    /// Wraps the request body so that its bytes are counted for this line.
    pub(crate) fn count_request(&self, body: Body) -> Body {
        super::boxed(Counting::new(body, Arc::clone(&self.bytes_in)))
    }

    /// The log of the stream this request upgrades to (its line follows the 101's line
    /// when the stream ends, with the same request id and verdict).
    pub(crate) fn upgraded(&self) -> TcpLog {
        TcpLog {
            resilience: crate::forward::http::Resilience::default(),
            sinks: self.sinks.clone(),
            direction: self.direction,
            source: self.source.clone(),
            source_addr: self.source_addr,
            destination: self.destination.clone(),
            upstream: self.upstream,
            start: Instant::now(),
            verdict: self.verdict.clone(),
            upgraded: Some(UpgradedRequest {
                request_id: self.request_id.clone(),
                method: self.method.clone(),
                path: self.path.clone(),
            }),
        }
    }

    /// Hands `resp` back with a body that writes this line once it has been sent.
    pub(crate) fn respond(self, resp: Response<Body>) -> Response<Body> {
        let status = resp.status().as_u16();
        resp.map(|body| {
            super::boxed(Tracked::new(
                body,
                Box::new(move |sent| self.finish(status, sent)),
            ))
        })
    }

    /// Records the metrics and writes the line.
    fn finish(self, status: u16, bytes_out: u64) {
        let duration = self.start.elapsed();
        self.sinks
            .metrics
            .http_request(self.direction, status, duration);
        if !self.sinks.access_log.is_enabled() {
            return;
        }
        let reason = self.verdict.reason.as_ref().map(ToString::to_string);
        // A request the firewall refused is a deny of the `waf` layer, by that firewall.
        let blocked = self.waf.as_deref().filter(|e| e.action == WafAction::Block);
        let decision = match blocked {
            Some(_) => "deny",
            None => self.verdict.decision(),
        };
        let layer = match blocked {
            Some(_) => Some("waf"),
            None => self.verdict.layer.map(Layer::as_str),
        };
        let policy = blocked.map_or(self.verdict.policy.as_deref(), |e| Some(&e.firewall));
        let reason = blocked.map_or(reason.as_deref(), |e| e.message.as_deref());
        self.sinks.access_log.write(&Entry {
            kind: "http",
            direction: self.direction,
            request_id: self.request_id.to_str().ok(),
            source: self.source.as_deref(),
            source_addr: self.source_addr,
            destination: self.destination.as_deref(),
            upstream: self.upstream,
            method: Some(self.method.as_str()),
            path: self.path.as_ref().map(PathAndQuery::as_str),
            status: Some(status),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out,
            duration,
            decision,
            layer,
            policy,
            reason,
            retries: self.resilience.retries,
            endpoint: self.resilience.endpoint,
            overflow: self.resilience.overflow,
            timeout: self.resilience.timeout,
            waf: self.waf.as_deref(),
        });
    }
}
