//! One request through the firewall: connection and request line, headers (phase 1), the
//! body held back up to the limit (phase 2), optionally the response headers and body
//! (phases 3 and 4), and logging (phase 5), as libmodsecurity's connectors feed it.
//!
//! What is not inspected: the bodies of gRPC requests and of requests that upgrade (both
//! stream, and holding them back would break them); response bodies of other types than
//! [`RESPONSE_MIME_TYPES`]; anything past the body limits (Blocking refuses a request body
//! over the limit with 413; DetectionOnly inspects the first part and passes the rest).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_resources::WafMode;
use bulkhead_waf::{Intervention, RuleSet, Transaction};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Response, StatusCode, request};

use super::Waf;
use super::body::{Replay, buffer};
use super::config::RESPONSE_MIME_TYPES;
use super::event::{WafAction, WafEvent, family, records};
use crate::forward::headers::ORIG_PROTO;
use crate::forward::{Body, boxed};
use crate::metrics::Metrics;

/// Why the firewall answers instead of the app.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// The status to answer with.
    pub(crate) status: StatusCode,
    /// The rule behind it (none for the body limit).
    rule: Option<u32>,
    /// Its message, or the limit that was passed.
    message: String,
}

/// The request's side of the exchange, as the firewall reads it.
pub(crate) struct RequestInfo<'a> {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// Method, target and version (the headers are not read from here).
    pub(crate) head: &'a request::Parts,
    /// The headers as the client sent them (before hop-by-hop headers are removed).
    pub(crate) headers: &'a HeaderMap,
    /// The body streams (gRPC, upgrades) and is passed on uninspected.
    pub(crate) streaming: bool,
}

/// A transaction in progress.
pub(crate) struct Inspection {
    waf: Arc<Waf>,
    tx: Transaction,
    spent: Duration,
    refusal: Option<Refusal>,
}

impl Inspection {
    /// Runs the request phases with `rules` (`waf`'s): the body to forward, or why the
    /// request is refused.
    pub(crate) async fn request(
        waf: &Arc<Waf>,
        rules: Arc<RuleSet>,
        info: RequestInfo<'_>,
        body: Body,
    ) -> (Inspection, Result<Body, Refusal>) {
        let mut this = Inspection {
            waf: Arc::clone(waf),
            tx: Transaction::new(rules),
            spent: Duration::ZERO,
            refusal: None,
        };
        let outcome = this.request_phases(&info, body).await;
        if let Err(refusal) = &outcome {
            this.refusal = Some(refusal.clone());
        }
        (this, outcome)
    }

    async fn request_phases(
        &mut self,
        info: &RequestInfo<'_>,
        mut body: Body,
    ) -> Result<Body, Refusal> {
        let start = Instant::now();
        self.head(info);
        let phase1 = self.tx.process_request_headers();
        self.spent += start.elapsed();
        refuse(phase1)?;
        if info.streaming {
            refuse(self.timed(Transaction::process_request_body))?;
            return Ok(body);
        }
        let limit = self.waf.spec().request_body_limit();
        let blocking = self.waf.spec().mode == WafMode::Blocking;
        if blocking && content_length(info.headers).is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let held = buffer(&mut body, limit).await;
        if let Some(e) = &held.error {
            tracing::debug!(error = %e, "the request body failed while the firewall read it");
        }
        if blocking && held.bytes > limit {
            return Err(too_large(limit));
        }
        let start = Instant::now();
        for chunk in held.data(limit) {
            self.tx.append_request_body(chunk);
        }
        let phase2 = self.tx.process_request_body();
        self.spent += start.elapsed();
        refuse(phase2)?;
        Ok(boxed(Replay::new(held, body)))
    }

    /// Connection, request line and headers.
    fn head(&mut self, info: &RequestInfo<'_>) {
        let (peer, local) = (info.peer, info.local);
        let tx = &mut self.tx;
        tx.process_connection(peer.ip(), peer.port(), local.ip(), local.port());
        let head = info.head;
        let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
        // The protocol on this hop: between sidecars that is HTTP/2 even for an app's
        // HTTP/1 request (its HTTP/1 framing was checked by the sending sidecar).
        let version: &[u8] = match head.version {
            http::Version::HTTP_2 => b"2.0",
            http::Version::HTTP_10 => b"1.0",
            _ => b"1.1",
        };
        tx.process_uri(target.as_bytes(), head.method.as_str().as_bytes(), version);
        // HTTP/2 carries the host in `:authority`; rules expect a Host header.
        if !info.headers.contains_key(HOST)
            && let Some(authority) = head.uri.authority()
        {
            tx.add_request_header(b"Host", authority.as_str().as_bytes());
        }
        for (name, value) in info.headers {
            // The marker between sidecars, not something the client sent.
            if name != ORIG_PROTO {
                tx.add_request_header(name.as_str().as_bytes(), value.as_bytes());
            }
        }
    }

    /// Runs the response phases when the firewall inspects responses: the response to
    /// send, or why it is replaced. `streaming` responses (upgrades, gRPC) keep their body.
    pub(crate) async fn response(
        &mut self,
        resp: Response<Body>,
        streaming: bool,
    ) -> Result<Response<Body>, Refusal> {
        if !self.waf.spec().inspects_responses() || self.refusal.is_some() {
            return Ok(resp);
        }
        let outcome = self.response_phases(resp, streaming).await;
        if let Err(refusal) = &outcome {
            self.refusal = Some(refusal.clone());
        }
        outcome
    }

    async fn response_phases(
        &mut self,
        resp: Response<Body>,
        streaming: bool,
    ) -> Result<Response<Body>, Refusal> {
        let start = Instant::now();
        for (name, value) in resp.headers() {
            self.tx
                .add_response_header(name.as_str().as_bytes(), value.as_bytes());
        }
        let version: &[u8] = if resp.version() == http::Version::HTTP_2 {
            b"2.0"
        } else {
            b"1.1"
        };
        let phase3 = self
            .tx
            .process_response_headers(resp.status().as_u16(), version);
        self.spent += start.elapsed();
        refuse(phase3)?;
        if streaming || !inspected_type(resp.headers()) {
            return Ok(resp);
        }
        let limit = self.waf.spec().response_body_limit();
        let (parts, mut body) = resp.into_parts();
        let held = buffer(&mut body, limit).await;
        let start = Instant::now();
        for chunk in held.data(limit) {
            self.tx.append_response_body(chunk);
        }
        let phase4 = self.tx.process_response_body();
        self.spent += start.elapsed();
        refuse(phase4)?;
        Ok(Response::from_parts(parts, boxed(Replay::new(held, body))))
    }

    /// Phase 5, the metrics, and the access log's `waf` object (`None` when nothing was
    /// logged and nothing refused).
    pub(crate) fn finish(mut self, metrics: &Metrics) -> Option<WafEvent> {
        self.timed(|tx| {
            tx.process_logging();
            None
        });
        let mode = self.waf.spec().mode;
        let matches = self.tx.matches();
        let action = match (&self.refusal, mode) {
            (Some(_), _) => WafAction::Block,
            (None, WafMode::DetectionOnly) if matches.iter().any(|m| m.disruptive) => {
                WafAction::Detect
            }
            _ => WafAction::Pass,
        };
        metrics.waf_request(mode, action, self.spent);
        for m in matches.iter().filter(|m| m.logged) {
            metrics.waf_rule_match(family(m.id));
        }
        let (records, omitted) = records(matches);
        if records.is_empty() && self.refusal.is_none() {
            return None;
        }
        let would_block = matches.iter().find(|m| m.disruptive);
        let (status, rule, message) = match &self.refusal {
            Some(r) => (Some(r.status.as_u16()), r.rule, Some(r.message.clone())),
            None => (
                None,
                would_block.map(|m| m.id),
                would_block.map(|m| m.msg.clone()),
            ),
        };
        Some(WafEvent {
            firewall: self.waf.source().to_owned(),
            mode,
            action,
            status,
            rule,
            message,
            inbound_score: self.tx.inbound_anomaly_score(),
            outbound_score: self.tx.outbound_anomaly_score(),
            matches: records,
            omitted,
        })
    }

    fn timed(
        &mut self,
        f: impl FnOnce(&mut Transaction) -> Option<Intervention>,
    ) -> Option<Intervention> {
        let start = Instant::now();
        let out = f(&mut self.tx);
        self.spent += start.elapsed();
        out
    }
}

/// An intervention as a refusal; `Ok` when there is none.
fn refuse(intervention: Option<Intervention>) -> Result<(), Refusal> {
    match intervention {
        None => Ok(()),
        Some(iv) => Err(Refusal {
            status: StatusCode::from_u16(iv.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::FORBIDDEN),
            rule: (iv.rule_id != 0).then_some(iv.rule_id),
            message: iv.message,
        }),
    }
}

fn too_large(limit: u64) -> Refusal {
    Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        rule: None,
        message: format!("request body larger than the firewall's limit of {limit} bytes"),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a response's body is of a type the firewall reads.
fn inspected_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    RESPONSE_MIME_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
}
