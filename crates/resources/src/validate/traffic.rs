//! TrafficPolicy rules, shared with `ProxyConfig`'s `spec.outbound[].trafficPolicy`.

use super::Problems;
use crate::duration::GatewayDuration;
use crate::field::{FieldError, FieldPath};
use crate::kinds::traffic::{
    BackoffSpec, BudgetSpec, ConnectionPoolSpec, OutlierDetectionSpec, RetriesSpec, RetryOnSpec,
    TimeoutsSpec, TrafficPolicy, TrafficPolicySpec,
};

/// The largest `retries.bufferBytes`: 16 MiB.
pub const MAX_BUFFER_BYTES: u64 = 16 * 1024 * 1024;

/// Checks a TrafficPolicy resource (`spec` is its path).
pub(super) fn validate(v: &mut Problems, tp: &TrafficPolicy, spec: &FieldPath) {
    let service = &tp.spec.service;
    if !is_dns_label(service) {
        v.add(
            spec.key("service"),
            format!(
                "`{service}` is not a Service name; expected the name of a Service in the \
                 TrafficPolicy's namespace (a DNS label such as `api`, not `api.shop`)"
            ),
        );
    }
    v.0.extend(traffic_policy_spec(&tp.spec.policy(), spec));
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Every problem of a traffic policy whose fields sit under `at` (`spec` of a
/// TrafficPolicy, `spec.outbound[0].trafficPolicy` of a ProxyConfig).
pub fn traffic_policy_spec(spec: &TrafficPolicySpec, at: &FieldPath) -> Vec<FieldError> {
    let mut v = Problems::default();
    if let Some(t) = &spec.timeouts {
        timeouts(&mut v, t, &at.key("timeouts"));
    }
    if let Some(r) = &spec.retries {
        let request = spec.timeouts.as_ref().and_then(|t| t.request);
        retries(&mut v, r, request, at);
    }
    if let Some(p) = &spec.connection_pool {
        connection_pool(&mut v, p, &at.key("connectionPool"));
    }
    if let Some(o) = &spec.outlier_detection {
        outlier(&mut v, o, &at.key("outlierDetection"));
    }
    v.0
}

/// A duration that must not be zero.
fn positive(v: &mut Problems, d: Option<GatewayDuration>, at: FieldPath, what: &str) {
    if d.is_some_and(|d| d.get().is_zero()) {
        v.add(at, format!("must be greater than 0s ({what})"));
    }
}

fn timeouts(v: &mut Problems, t: &TimeoutsSpec, at: &FieldPath) {
    positive(
        v,
        t.connect,
        at.key("connect"),
        "a connection needs time to be made",
    );
    positive(
        v,
        t.idle,
        at.key("idle"),
        "every connection would be idle at once",
    );
}

fn retries(v: &mut Problems, r: &RetriesSpec, request: Option<GatewayDuration>, at: &FieldPath) {
    let at_r = at.key("retries");
    positive(
        v,
        r.per_try_timeout,
        at_r.key("perTryTimeout"),
        "leave it out to have only the request timeout apply",
    );
    let limited = request.filter(|d| !d.get().is_zero());
    if let (Some(per_try), Some(request)) = (r.per_try_timeout, limited)
        && per_try > request
    {
        v.add(
            at_r.key("perTryTimeout"),
            format!(
                "{per_try} is longer than {} ({request}), which covers all tries \
                 together; expected at most {request}",
                at.key("timeouts").key("request")
            ),
        );
    }
    retry_conditions(v, r, &at_r);
    if let Some(bytes) = r.buffer_bytes.filter(|b| *b > MAX_BUFFER_BYTES) {
        v.add(
            at_r.key("bufferBytes"),
            format!("{bytes} is more than the limit of {MAX_BUFFER_BYTES} (16 MiB)"),
        );
    }
    if let Some(b) = &r.backoff {
        backoff(v, b, &at_r.key("backoff"));
    }
    if let Some(b) = &r.budget {
        budget(v, b, &at_r.key("budget"));
    }
}

/// `retryOn` status codes and `grpcStatuses` (the names were checked when decoding).
fn retry_conditions(v: &mut Problems, r: &RetriesSpec, at_r: &FieldPath) {
    for (i, entry) in r.retry_on.iter().flatten().enumerate() {
        if let RetryOnSpec::Status(code) = entry
            && !(500..=599).contains(code)
        {
            v.add(
                at_r.key("retryOn").index(i),
                format!(
                    "status {code} is not retried; expected a 5xx status code (500-599), \
                     `gateway-error`, `connect-failure` or `reset`"
                ),
            );
        }
    }
    for (i, status) in r.grpc_statuses.iter().flatten().enumerate() {
        if !(1..=16).contains(&status.0) {
            v.add(
                at_r.key("grpcStatuses").index(i),
                format!(
                    "{} is not a retryable gRPC status; expected a name (`unavailable`, …) or \
                     a number 1-16",
                    status.0
                ),
            );
        }
    }
}

fn backoff(v: &mut Problems, b: &BackoffSpec, at: &FieldPath) {
    positive(v, b.base, at.key("base"), "retries would not back off");
    positive(v, b.max, at.key("max"), "retries would not back off");
    if let (Some(base), Some(max)) = (b.base, b.max)
        && base > max
    {
        v.add(
            at.key("base"),
            format!("{base} is longer than backoff.max ({max}); expected base ≤ max"),
        );
    }
}

fn budget(v: &mut Problems, b: &BudgetSpec, at: &FieldPath) {
    if let Some(p) = b.percent.filter(|p| !(0.0..=100.0).contains(p)) {
        v.add(
            at.key("percent"),
            format!("{p} is not a percentage; expected 0-100"),
        );
    }
    positive(
        v,
        b.window,
        at.key("window"),
        "requests are counted over it",
    );
}

fn connection_pool(v: &mut Problems, p: &ConnectionPoolSpec, at: &FieldPath) {
    let fields = [
        ("maxConnections", p.max_connections),
        ("maxRequests", p.max_requests),
    ];
    for (field, value) in fields {
        if value == Some(0) {
            v.add(
                at.key(field),
                "must be at least 1 (0 would refuse every request)",
            );
        }
    }
}

fn outlier(v: &mut Problems, o: &OutlierDetectionSpec, at: &FieldPath) {
    positive(
        v,
        o.base_ejection_time,
        at.key("baseEjectionTime"),
        "an ejection would end at once",
    );
    positive(
        v,
        o.max_ejection_time,
        at.key("maxEjectionTime"),
        "an ejection would end at once",
    );
    if let (Some(base), Some(max)) = (o.base_ejection_time, o.max_ejection_time)
        && base > max
    {
        v.add(
            at.key("baseEjectionTime"),
            format!("{base} is longer than maxEjectionTime ({max}); expected base ≤ max"),
        );
    }
    if let Some(p) = o.max_ejection_percent.filter(|p| *p > 100) {
        v.add(
            at.key("maxEjectionPercent"),
            format!("{p} is not a percentage; expected 0-100"),
        );
    }
}
