//! The configured traffic policy ([`TrafficPolicySpec`], from a `ProxyConfig`'s
//! `spec.outbound[].trafficPolicy` or a control plane's TrafficPolicy) turned into the
//! runtime [`TrafficPolicy`]: every absent field takes the default.
//!
//! The spec must have passed `bulkhead_resources::validate::traffic_policy_spec`; the
//! conversion itself cannot fail. Where one end of a pair is set and the other is left at
//! its default (backoff `base`/`max`, `baseEjectionTime`/`maxEjectionTime`), the default
//! end follows the set one so that the pair stays ordered.

use std::time::Duration;

use bulkhead_resources::duration::GatewayDuration;
use bulkhead_resources::{
    BudgetSpec, ConnectionPoolSpec, LoadBalancerSpec, OutlierDetectionSpec, RetriesSpec,
    RetryOnSpec, TimeoutsSpec, TrafficPolicySpec,
};

use super::TrafficPolicy;
use super::policy::{Budget, Limits, LoadBalancer, Outlier, Retries, RetryOn, Timeouts};

impl From<&TrafficPolicySpec> for TrafficPolicy {
    fn from(spec: &TrafficPolicySpec) -> Self {
        let mut policy = TrafficPolicy::default();
        if let Some(lb) = spec.load_balancer {
            policy.load_balancer = match lb {
                LoadBalancerSpec::PeakEwma => LoadBalancer::PeakEwma,
                LoadBalancerSpec::RoundRobin => LoadBalancer::RoundRobin,
                LoadBalancerSpec::LeastRequest => LoadBalancer::LeastRequest,
            };
        }
        if let Some(t) = &spec.timeouts {
            timeouts(&mut policy.timeouts, t);
        }
        if let Some(r) = &spec.retries {
            retries(&mut policy.retries, r);
        }
        if let Some(p) = &spec.connection_pool {
            limits(&mut policy.limits, p);
        }
        if let Some(o) = &spec.outlier_detection {
            outlier(&mut policy.outlier, o);
        }
        policy
    }
}

fn set(target: &mut Duration, value: Option<GatewayDuration>) {
    if let Some(v) = value {
        *target = v.get();
    }
}

fn timeouts(t: &mut Timeouts, spec: &TimeoutsSpec) {
    set(&mut t.connect, spec.connect);
    set(&mut t.idle, spec.idle);
    if let Some(request) = spec.request {
        t.request = Some(request.get()).filter(|d| !d.is_zero());
    }
}

/// Sets an ordered pair `(low, high)`; an end left unset follows the set one.
fn ordered(
    low: &mut Duration,
    high: &mut Duration,
    spec_low: Option<GatewayDuration>,
    spec_high: Option<GatewayDuration>,
) {
    set(low, spec_low);
    set(high, spec_high);
    match (spec_low, spec_high) {
        (Some(_), None) if *low > *high => *high = *low,
        (None, Some(_)) if *low > *high => *low = *high,
        _ => {}
    }
}

fn retries(r: &mut Retries, spec: &RetriesSpec) {
    if let Some(attempts) = spec.attempts {
        r.attempts = attempts;
    }
    if let Some(per_try) = spec.per_try_timeout {
        r.per_try_timeout = Some(per_try.get());
    }
    if let Some(on) = &spec.retry_on {
        r.on = retry_on(on, std::mem::take(&mut r.on.grpc_statuses));
    }
    if let Some(grpc) = &spec.grpc_statuses {
        r.on.grpc_statuses = grpc.iter().map(|s| s.0).collect();
        r.on.grpc_statuses.sort_unstable();
        r.on.grpc_statuses.dedup();
    }
    if let Some(non_idempotent) = spec.retry_non_idempotent {
        r.non_idempotent = non_idempotent;
    }
    if let Some(bytes) = spec.buffer_bytes {
        r.buffer_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(b) = &spec.backoff {
        ordered(&mut r.backoff_base, &mut r.backoff_max, b.base, b.max);
    }
    if let Some(b) = &spec.budget {
        budget(&mut r.budget, b);
    }
}

/// The conditions of a `retryOn` list; only what it names is retried.
fn retry_on(list: &[RetryOnSpec], grpc_statuses: Vec<u32>) -> RetryOn {
    let mut on = RetryOn {
        connect_failure: false,
        reset: false,
        statuses: Vec::new(),
        grpc_statuses,
    };
    for entry in list {
        match entry {
            RetryOnSpec::ConnectFailure => on.connect_failure = true,
            RetryOnSpec::Reset => on.reset = true,
            RetryOnSpec::GatewayError => on.statuses.extend([502, 503, 504]),
            RetryOnSpec::Status(code) => on.statuses.push(*code),
        }
    }
    on.statuses.sort_unstable();
    on.statuses.dedup();
    on
}

fn budget(b: &mut Budget, spec: &BudgetSpec) {
    if let Some(percent) = spec.percent {
        b.ratio = percent / 100.0;
    }
    if let Some(min) = spec.min_per_second {
        b.min_per_second = min;
    }
    set(&mut b.window, spec.window);
}

fn limits(l: &mut Limits, spec: &ConnectionPoolSpec) {
    let fields = [
        (&mut l.max_connections, spec.max_connections),
        (&mut l.max_pending_requests, spec.max_pending_requests),
        (&mut l.max_requests, spec.max_requests),
        (&mut l.max_retries, spec.max_retries),
    ];
    for (target, value) in fields {
        if let Some(v) = value {
            *target = v;
        }
    }
}

fn outlier(o: &mut Outlier, spec: &OutlierDetectionSpec) {
    if let Some(n) = spec.consecutive_5xx_errors {
        o.consecutive_5xx = n;
    }
    if let Some(n) = spec.consecutive_connect_failures {
        o.consecutive_connect_failures = n;
    }
    ordered(
        &mut o.base_ejection,
        &mut o.max_ejection,
        spec.base_ejection_time,
        spec.max_ejection_time,
    );
    if let Some(p) = spec.max_ejection_percent {
        o.max_ejected_percent = u8::try_from(p.min(100)).unwrap_or(100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> TrafficPolicy {
        let spec: TrafficPolicySpec = serde_json::from_str(json).unwrap();
        TrafficPolicy::from(&spec)
    }

    #[test]
    fn empty_spec_is_the_default() {
        assert_eq!(spec("{}"), TrafficPolicy::default());
    }

    #[test]
    fn every_field_is_carried() {
        let p = spec(
            r#"{"loadBalancer":"roundRobin",
                "timeouts":{"connect":"250ms","request":"0s","idle":"5m"},
                "retries":{"attempts":4,"perTryTimeout":"2s","retryOn":["reset","gateway-error","500"],
                  "grpcStatuses":["cancelled",14],"retryNonIdempotent":true,"bufferBytes":1024,
                  "backoff":{"base":"10ms","max":"1s"},
                  "budget":{"percent":12.5,"minPerSecond":3,"window":"30s"}},
                "connectionPool":{"maxConnections":10,"maxPendingRequests":0,"maxRequests":20,"maxRetries":1},
                "outlierDetection":{"consecutive5xxErrors":0,"consecutiveConnectFailures":2,
                  "baseEjectionTime":"1s","maxEjectionTime":"10s","maxEjectionPercent":100}}"#,
        );
        let ms = Duration::from_millis;
        assert_eq!(p.load_balancer, LoadBalancer::RoundRobin);
        assert_eq!(
            (p.timeouts.connect, p.timeouts.request, p.timeouts.idle),
            (ms(250), None, ms(300_000))
        );
        let r = &p.retries;
        assert_eq!((r.attempts, r.per_try_timeout), (4, Some(ms(2_000))));
        assert!(!r.on.connect_failure && r.on.reset);
        assert_eq!(r.on.statuses, [500, 502, 503, 504]);
        assert_eq!(r.on.grpc_statuses, [1, 14]);
        assert!(r.non_idempotent);
        assert_eq!(r.buffer_bytes, 1024);
        assert_eq!((r.backoff_base, r.backoff_max), (ms(10), ms(1_000)));
        assert_eq!((r.budget.ratio, r.budget.min_per_second), (0.125, 3));
        assert_eq!(r.budget.window, ms(30_000));
        let l = &p.limits;
        assert_eq!(
            (
                l.max_connections,
                l.max_pending_requests,
                l.max_requests,
                l.max_retries
            ),
            (10, 0, 20, 1)
        );
        let o = &p.outlier;
        assert_eq!((o.consecutive_5xx, o.consecutive_connect_failures), (0, 2));
        assert_eq!((o.base_ejection, o.max_ejection), (ms(1_000), ms(10_000)));
        assert_eq!(o.max_ejected_percent, 100);
    }

    #[test]
    fn retry_on_alone_keeps_the_default_grpc_statuses() {
        let p = spec(r#"{"retries":{"retryOn":["connect-failure"]}}"#);
        assert!(p.retries.on.connect_failure && !p.retries.on.reset);
        assert!(p.retries.on.statuses.is_empty());
        assert_eq!(p.retries.on.grpc_statuses, RetryOn::default().grpc_statuses);
    }

    #[test]
    fn the_unset_end_of_a_pair_follows_the_set_one() {
        let p = spec(r#"{"retries":{"backoff":{"base":"1s"}}}"#);
        assert_eq!(p.retries.backoff_max, Duration::from_secs(1));
        let p = spec(r#"{"retries":{"backoff":{"max":"5ms"}}}"#);
        assert_eq!(p.retries.backoff_base, Duration::from_millis(5));
        let p = spec(r#"{"outlierDetection":{"maxEjectionTime":"10s"}}"#);
        assert_eq!(p.outlier.base_ejection, Duration::from_secs(10));
        let p = spec(r#"{"outlierDetection":{"baseEjectionTime":"10m"}}"#);
        assert_eq!(p.outlier.max_ejection, Duration::from_secs(600));
    }
}
