//! One outbound HTTP request under its upstream's traffic policy: the `max_requests`
//! breaker, endpoint choice, per-try and request timeouts, retries (conditions, attempts,
//! budget, `max_retries` breaker, backoff with full jitter) and outlier reports.
//!
//! A retry happens only before response headers reach the client: a try either yields
//! headers (final unless the status or `grpc-status` is a retry condition) or fails.
//!
//! The loop reaches the network only through [`Transport`] (the endpoints, and one try
//! on one of them); the data path's is [`Mesh`]. Unit tests (`retry/tests.rs`) drive the
//! loop with a scripted transport under paused tokio time, so every timeout and backoff
//! is checked to the millisecond.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};

use super::replay::Replay;
use super::{no_endpoints, open, report};
use crate::error::ProxyError;
use crate::forward::http::from_upstream;
use crate::forward::{Body, alpn};
use crate::metrics::Metrics;
use crate::resilience::breaker::Permit;
use crate::resilience::endpoint::EndpointState;
use crate::resilience::outlier::Outcome;
use crate::resilience::upstream::EndpointSet;
use crate::resilience::{Limit, TimeoutKind, TrafficPolicy, Upstream, backoff};
use crate::run::Context;
use crate::snapshot::{Outbound, Snapshot};

/// What happened to a request, for the response and the log line.
pub(super) struct Sent {
    /// The endpoint of the last try.
    pub(super) endpoint: Option<Arc<EndpointState>>,
    /// Retries sent.
    pub(super) retries: u32,
    /// The response to pass on, or why there is none.
    pub(super) result: Result<Response<Body>, ProxyError>,
}

/// Progress the request timeout must not lose when it cancels the tries.
#[derive(Default)]
struct Progress {
    endpoint: Option<Arc<EndpointState>>,
    retries: u32,
    /// The `max_retries` slot of the retry under way.
    retry: Option<Permit>,
}

/// One try's result.
pub(super) enum Tried {
    Response(Response<Body>),
    /// Not sent (no connection): the request came back untouched.
    NotSent(ProxyError, Request<Body>),
    Failed(ProxyError),
}

impl Tried {
    fn into_result(self) -> Result<Response<Body>, ProxyError> {
        match self {
            Tried::Response(resp) => Ok(resp),
            Tried::NotSent(e, _) | Tried::Failed(e) => Err(e),
        }
    }
}

/// What the retry loop needs of the world: the endpoints, and one try on one of them.
pub(super) trait Transport {
    /// The endpoints to pick from (asked once per request).
    fn endpoints(&self) -> Arc<EndpointSet>;

    /// One try on `endpoint` (the loop applies the per-try timeout around it).
    async fn attempt(&self, endpoint: &EndpointState, req: Request<Body>) -> Tried;
}

/// The data path's transport: pooled HTTP/2 connections over mTLS.
struct Mesh<'a> {
    ctx: &'a Context,
    up: &'a Upstream,
    snapshot: &'a Arc<Snapshot>,
    outbound: &'a Outbound,
}

impl Transport for Mesh<'_> {
    fn endpoints(&self) -> Arc<EndpointSet> {
        self.up.endpoints(self.snapshot, &self.outbound.endpoints)
    }

    async fn attempt(&self, endpoint: &EndpointState, req: Request<Body>) -> Tried {
        let policy = &*self.outbound.traffic;
        attempt(self.ctx, self.up, self.snapshot, endpoint, policy, req).await
    }
}

/// Sends `req` to an endpoint of `outbound` (already prepared for HTTP/2).
pub(super) async fn send(
    ctx: &Context,
    up: &Upstream,
    snapshot: &Arc<Snapshot>,
    outbound: &Outbound,
    req: Request<Body>,
) -> Sent {
    let mesh = Mesh {
        ctx,
        up,
        snapshot,
        outbound,
    };
    send_via(&mesh, &ctx.sinks.metrics, up, outbound, req).await
}

/// [`send`] over any [`Transport`].
async fn send_via<T: Transport>(
    transport: &T,
    metrics: &Arc<Metrics>,
    up: &Upstream,
    outbound: &Outbound,
    req: Request<Body>,
) -> Sent {
    let policy = &*outbound.traffic;
    let mut progress = Progress::default();
    let result = match up.acquire(Limit::Requests, policy.limits.max_requests) {
        None => Err(overflow(metrics, Limit::Requests)),
        Some(_request) => {
            up.budget
                .record_request(up.now_ns(), &policy.retries.budget);
            let set = transport.endpoints();
            let tries = tries(transport, metrics, up, &set, outbound, req, &mut progress);
            match policy.timeouts.request {
                Some(limit) => match tokio::time::timeout(limit, tries).await {
                    Ok(result) => result,
                    Err(_) => Err(timed_out(metrics, TimeoutKind::Request, limit)),
                },
                None => tries.await,
            }
        }
    };
    Sent {
        endpoint: progress.endpoint,
        retries: progress.retries,
        result,
    }
}

/// Tries until one answers for good, or retrying is not allowed.
async fn tries<T: Transport>(
    transport: &T,
    metrics: &Arc<Metrics>,
    up: &Upstream,
    set: &EndpointSet,
    outbound: &Outbound,
    req: Request<Body>,
    progress: &mut Progress,
) -> Result<Response<Body>, ProxyError> {
    let policy = &*outbound.traffic;
    let (replay, mut req) = Replay::new(req, &policy.retries);
    let mut avoid = None;
    loop {
        let now = up.now_ns();
        let Some(i) = up
            .balancer
            .pick(&set.endpoints, policy.load_balancer, avoid, now)
        else {
            return Err(no_endpoints(outbound));
        };
        let endpoint = &set.endpoints[i];
        progress.endpoint = Some(Arc::clone(endpoint));
        let tried = try_once(transport, metrics, up, endpoint, policy, req).await;
        let (outcome, mut retryable) = judge(&tried, policy);
        if replay.grpc_only() && !matches!(tried, Tried::NotSent(..)) {
            retryable &= listed_grpc_status(&tried, policy);
        }
        if progress.retries > 0 {
            metrics.retry(!retryable);
        }
        if let Some(outcome) = outcome {
            report(metrics, up, set, i, outcome, policy);
        }
        progress.retry = None;
        let replayable = matches!(tried, Tried::NotSent(..)) || replay.ready();
        if !retryable || !replayable || progress.retries >= policy.retries.attempts {
            return tried.into_result();
        }
        let Some(slot) = may_retry(metrics, up, policy, outcome) else {
            return tried.into_result();
        };
        req = match tried {
            Tried::NotSent(_, req) => req,
            other => match replay.again() {
                Some(req) => req,
                None => return other.into_result(),
            },
        };
        progress.retry = slot;
        progress.retries += 1;
        let r = &policy.retries;
        let wait = backoff::backoff(
            progress.retries,
            r.backoff_base,
            r.backoff_max,
            up.balancer.rng(),
        );
        tokio::time::sleep(wait).await;
        avoid = Some(i);
    }
}

/// Whether another try may go out now: a retry from the budget and, unless the last try
/// failed to connect (no load on the endpoint), a `max_retries` slot. `Some(slot)` to
/// retry; each refusal is counted.
fn may_retry(
    metrics: &Metrics,
    up: &Upstream,
    policy: &TrafficPolicy,
    outcome: Option<Outcome>,
) -> Option<Option<Permit>> {
    if !up.budget.try_retry(up.now_ns(), &policy.retries.budget) {
        metrics.retry_budget_exhausted();
        return None;
    }
    if outcome == Some(Outcome::ConnectFailure) {
        return Some(None);
    }
    match up.acquire(Limit::Retries, policy.limits.max_retries) {
        Some(slot) => Some(Some(slot)),
        None => {
            metrics.overflow(Limit::Retries);
            None
        }
    }
}

/// One try on `endpoint`, within the per-try timeout; feeds the latency estimate.
async fn try_once<T: Transport>(
    transport: &T,
    metrics: &Metrics,
    up: &Upstream,
    endpoint: &Arc<EndpointState>,
    policy: &TrafficPolicy,
    req: Request<Body>,
) -> Tried {
    let _in_flight = endpoint.start();
    let started = up.now_ns();
    let attempt = transport.attempt(endpoint, req);
    let tried = match policy.retries.per_try_timeout {
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(tried) => tried,
            Err(_) => Tried::Failed(timed_out(metrics, TimeoutKind::PerTry, limit)),
        },
        None => attempt.await,
    };
    let timed_out = matches!(
        tried,
        Tried::Failed(ProxyError::Timeout {
            kind: TimeoutKind::PerTry,
            ..
        })
    );
    if matches!(tried, Tried::Response(_)) || timed_out {
        let now = up.now_ns();
        endpoint.observe(now, Duration::from_nanos(now.saturating_sub(started)));
    }
    tried
}

/// Sends on the pooled HTTP/2 connection to `endpoint`, holding a `max_pending_requests`
/// slot while waiting for the connection.
async fn attempt(
    ctx: &Context,
    up: &Upstream,
    snapshot: &Snapshot,
    endpoint: &EndpointState,
    policy: &TrafficPolicy,
    req: Request<Body>,
) -> Tried {
    let address = endpoint.endpoint.address;
    let key = (address, endpoint.endpoint.identity.clone());
    let connect = || open(ctx, up, snapshot, endpoint, alpn::H2, policy);
    let Some(pending) = up.acquire(Limit::PendingRequests, policy.limits.max_pending_requests)
    else {
        return Tried::NotSent(overflow(&ctx.sinks.metrics, Limit::PendingRequests), req);
    };
    let sender = ctx.mesh.sender(&key, address, &connect, false).await;
    drop(pending);
    match sender {
        Ok(sender) => match ctx.mesh.send_on(sender, &key, address, &connect, req).await {
            Ok(resp) => Tried::Response(from_upstream(resp, false)),
            Err(e) => Tried::Failed(e),
        },
        Err(e) => Tried::NotSent(e, req),
    }
}

/// What a try tells the outlier detector (`None`: nothing about the endpoint), and
/// whether its retry conditions match.
fn judge(tried: &Tried, policy: &TrafficPolicy) -> (Option<Outcome>, bool) {
    let on = &policy.retries.on;
    match tried {
        Tried::Response(resp) => {
            let status = resp.status().as_u16();
            let grpc = listed_grpc_status(tried, policy);
            let failed = status >= 500 || grpc;
            let outcome = if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            (Some(outcome), on.statuses.contains(&status) || grpc)
        }
        Tried::NotSent(e, _) | Tried::Failed(e) => match e {
            ProxyError::Overflow { .. } | ProxyError::NoEndpoints { .. } => (None, false),
            e if e.is_connect() => (Some(Outcome::ConnectFailure), on.connect_failure),
            ProxyError::Timeout {
                kind: TimeoutKind::PerTry,
                ..
            } => (Some(Outcome::Failure), true),
            ProxyError::Upstream { .. } => (Some(Outcome::Failure), on.reset),
            _ => (Some(Outcome::Failure), false),
        },
    }
}

/// Whether the try answered with a trailers-only `grpc-status` the policy lists.
fn listed_grpc_status(tried: &Tried, policy: &TrafficPolicy) -> bool {
    let Tried::Response(resp) = tried else {
        return false;
    };
    resp.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse::<u32>().ok())
        .is_some_and(|code| policy.retries.on.grpc_statuses.contains(&code))
}

/// The error for a full breaker, counted.
pub(super) fn overflow(metrics: &Metrics, limit: Limit) -> ProxyError {
    metrics.overflow(limit);
    ProxyError::Overflow { limit }
}

/// The error for a timeout that fired, counted.
pub(super) fn timed_out(metrics: &Metrics, kind: TimeoutKind, after: Duration) -> ProxyError {
    metrics.timeout(kind);
    ProxyError::Timeout { kind, after }
}

#[cfg(test)]
mod tests;
