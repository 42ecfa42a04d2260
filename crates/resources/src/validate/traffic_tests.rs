//! TrafficPolicy loading and validation: the full shape, defaults, schema errors and every
//! semantic rule, each reported at its field path; at most one policy per Service.

use std::time::Duration;

use crate::error::DiagnosticKind::{Duplicate, Invalid, Schema};
use crate::kinds::traffic::{GrpcStatusSpec, LoadBalancerSpec, RetryOnSpec, TrafficPolicySpec};
use crate::testutil::{Expect, check, diagnostics, load, only};

const TP: &str = "TrafficPolicy/shop/api";

/// A TrafficPolicy `api` in namespace `shop` for Service `api` with more `spec` lines
/// (indented by two spaces). The spec starts on line 7.
fn tp(spec: &str) -> String {
    format!(
        "apiVersion: bulkhead.dev/v1alpha1\nkind: TrafficPolicy\nmetadata:\n  name: api\n  \
         namespace: shop\nspec:\n  service: api\n{spec}"
    )
}

/// Asserts that `text` fails with one diagnostic of `kind` at `line`/`field` saying `message`.
fn fails(text: &str, kind: crate::DiagnosticKind, line: usize, field: &str, message: &str) {
    check(
        &only(text, "tp.yaml"),
        Expect {
            kind,
            file: "tp.yaml",
            document: 1,
            line,
            object: Some(TP),
            field,
            message,
        },
    );
}

const FULL: &str = "  loadBalancer: leastRequest
  timeouts: {connect: 1s, request: 15s, idle: 1h}
  retries:
    attempts: 2
    perTryTimeout: 5s
    retryOn: [connect-failure, reset, \"503\", 504, gateway-error]
    grpcStatuses: [unavailable, cancelled, 8]
    retryNonIdempotent: false
    bufferBytes: 65536
    backoff: {base: 25ms, max: 250ms}
    budget: {percent: 20, minPerSecond: 10, window: 10s}
  connectionPool: {maxConnections: 1024, maxPendingRequests: 0, maxRequests: 1024, maxRetries: 3}
  outlierDetection: {consecutive5xxErrors: 5, consecutiveConnectFailures: 5, baseEjectionTime: 30s, maxEjectionTime: 300s, maxEjectionPercent: 50}
";

#[test]
fn full_policy_loads_and_round_trips_as_json() {
    let set = load(&tp(FULL), "tp.yaml").unwrap();
    assert_eq!(set.traffic_policies.len(), 1);
    let spec = &set.traffic_policies[0].spec;
    assert_eq!(spec.service, "api");
    let policy = spec.policy();
    assert_eq!(policy.load_balancer, Some(LoadBalancerSpec::LeastRequest));
    let timeouts = policy.timeouts.clone().unwrap();
    assert_eq!(timeouts.idle.unwrap().get(), Duration::from_secs(3600));
    let retries = policy.retries.clone().unwrap();
    assert_eq!(
        retries.retry_on.unwrap(),
        [
            RetryOnSpec::ConnectFailure,
            RetryOnSpec::Reset,
            RetryOnSpec::Status(503),
            RetryOnSpec::Status(504),
            RetryOnSpec::GatewayError
        ]
    );
    let grpc = retries.grpc_statuses.unwrap();
    assert_eq!(
        grpc,
        [GrpcStatusSpec(14), GrpcStatusSpec(1), GrpcStatusSpec(8)]
    );
    // The control plane ships the spec as JSON; the proxy decodes the same value.
    let json = serde_json::to_string(&policy).unwrap();
    assert!(json.contains("\"request\":\"15s\""), "{json}");
    assert!(
        json.contains("\"grpcStatuses\":[\"unavailable\",\"cancelled\",\"resource-exhausted\"]"),
        "{json}"
    );
    let back: TrafficPolicySpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, policy);
}

#[test]
fn every_field_is_optional() {
    let set = load(&tp(""), "tp.yaml").unwrap();
    assert_eq!(
        set.traffic_policies[0].spec.policy(),
        TrafficPolicySpec::default()
    );
    assert_eq!(
        serde_json::to_string(&TrafficPolicySpec::default()).unwrap(),
        "{}"
    );
}

#[test]
fn service_is_required_and_a_name_in_the_namespace() {
    let text = tp("").replace("  service: api\n", "  loadBalancer: roundRobin\n");
    fails(
        &text,
        Schema,
        6,
        "spec.service",
        "required field is missing",
    );
    let text = tp("").replace("service: api", "service: api.shop");
    fails(&text, Invalid, 7, "spec.service", "not `api.shop`");
}

#[test]
fn schema_errors_name_the_field() {
    let cases = [
        (
            "  retries: {attempts: 2, tries: 3}\n",
            "spec.retries.tries",
            "unknown field `tries`",
        ),
        (
            "  loadBalancer: random\n",
            "spec.loadBalancer",
            "unknown variant `random`",
        ),
        (
            "  timeouts: {connect: 1.5s}\n",
            "spec.timeouts.connect",
            "`1.5s` is not a duration; expected",
        ),
        (
            "  timeouts: {request: 15}\n",
            "spec.timeouts.request",
            "expected a duration such as `250ms`",
        ),
        (
            "  retries: {retryOn: [5xx]}\n",
            "spec.retries.retryOn[0]",
            "`5xx` is not accepted",
        ),
        (
            "  retries: {retryOn: [reset, refused-stream]}\n",
            "spec.retries.retryOn[1]",
            "unknown retry condition `refused-stream`",
        ),
        (
            "  retries: {grpcStatuses: [unknown]}\n",
            "spec.retries.grpcStatuses[0]",
            "a gRPC status",
        ),
        (
            "  connectionPool: {maxConnections: -1}\n",
            "spec.connectionPool.maxConnections",
            "expected u32",
        ),
    ];
    for (spec, field, message) in cases {
        fails(&tp(spec), Schema, 8, field, message);
    }
}

/// `(spec lines, field, message)` of semantic errors, each alone in a policy.
const SEMANTIC: [(&str, &str, &str); 12] = [
    (
        "  timeouts: {connect: 0s}\n",
        "spec.timeouts.connect",
        "must be greater than 0s",
    ),
    (
        "  timeouts: {idle: 0ms}\n",
        "spec.timeouts.idle",
        "must be greater than 0s",
    ),
    (
        "  retries: {perTryTimeout: 0s}\n",
        "spec.retries.perTryTimeout",
        "greater than 0s",
    ),
    (
        "  retries: {retryOn: [\"404\"]}\n",
        "spec.retries.retryOn[0]",
        "status 404 is not retried",
    ),
    (
        "  retries: {grpcStatuses: [0]}\n",
        "spec.retries.grpcStatuses[0]",
        "0 is not a retryable gRPC status",
    ),
    (
        "  retries: {bufferBytes: 16777217}\n",
        "spec.retries.bufferBytes",
        "16 MiB",
    ),
    (
        "  retries: {backoff: {base: 1s, max: 250ms}}\n",
        "spec.retries.backoff.base",
        "1s is longer than backoff.max (250ms)",
    ),
    (
        "  retries: {budget: {percent: 120}}\n",
        "spec.retries.budget.percent",
        "expected 0-100",
    ),
    (
        "  retries: {budget: {window: 0s}}\n",
        "spec.retries.budget.window",
        "greater than 0s",
    ),
    (
        "  connectionPool: {maxRequests: 0}\n",
        "spec.connectionPool.maxRequests",
        "at least 1",
    ),
    (
        "  outlierDetection: {maxEjectionPercent: 101}\n",
        "spec.outlierDetection.maxEjectionPercent",
        "expected 0-100",
    ),
    (
        "  outlierDetection: {baseEjectionTime: 10m, maxEjectionTime: 5m}\n",
        "spec.outlierDetection.baseEjectionTime",
        "10m is longer than maxEjectionTime (5m)",
    ),
];

#[test]
fn semantic_rules_name_the_field() {
    for (spec, field, message) in SEMANTIC {
        fails(&tp(spec), Invalid, 8, field, message);
    }
    // Zero is meaningful where documented: no request timeout, no retries, no queue.
    let zeros = "  timeouts: {request: 0s}\n  retries: {attempts: 0, perTryTimeout: 1h}\n  \
                 connectionPool: {maxPendingRequests: 0, maxRetries: 0}\n  \
                 outlierDetection: {consecutive5xxErrors: 0, maxEjectionPercent: 0}\n";
    load(&tp(zeros), "tp.yaml").unwrap();
}

#[test]
fn per_try_timeout_must_fit_in_the_request_timeout() {
    let text = tp("  timeouts: {request: 2s}\n  retries: {perTryTimeout: 5s}\n");
    fails(
        &text,
        Invalid,
        9,
        "spec.retries.perTryTimeout",
        "5s is longer than spec.timeouts.request",
    );
    load(
        &tp("  timeouts: {request: 5s}\n  retries: {perTryTimeout: 5s}\n"),
        "tp.yaml",
    )
    .unwrap();
}

#[test]
fn every_problem_of_a_policy_is_reported() {
    let text =
        tp("  timeouts: {connect: 0s, idle: 0s}\n  outlierDetection: {maxEjectionPercent: 200}\n");
    assert_eq!(diagnostics(&text, "tp.yaml").len(), 3);
}

#[test]
fn one_traffic_policy_per_service() {
    let second = tp("").replace("name: api", "name: api-2");
    let other_ns = tp("").replace("namespace: shop", "namespace: other");
    let text = format!("{}---\n{other_ns}---\n{second}", tp(""));
    check(
        &only(&text, "tp.yaml"),
        Expect {
            kind: Duplicate,
            file: "tp.yaml",
            document: 3,
            line: 17,
            object: Some("TrafficPolicy/shop/api-2"),
            field: "spec.service",
            message: "Service `api` in namespace `shop` already has a TrafficPolicy: \
                      TrafficPolicy/shop/api (at tp.yaml: document 1 (line 1))",
        },
    );
}

#[test]
fn wrong_api_version_is_refused() {
    let text = tp("").replace("bulkhead.dev/v1alpha1", "networking.istio.io/v1");
    let d = only(&text, "tp.yaml");
    assert_eq!(d.field.unwrap().to_string(), "apiVersion");
    assert!(
        d.message.contains("`bulkhead.dev/v1alpha1`"),
        "{}",
        d.message
    );
}
