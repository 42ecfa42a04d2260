//! `bulkhead.dev/v1alpha1/TrafficPolicy`: how callers treat one Service (load balancing,
//! timeouts, retries, connection limits, outlier detection). The policy fields are
//! [`TrafficPolicySpec`], which a `ProxyConfig`'s `spec.outbound[].trafficPolicy` uses too.
//!
//! Every field is optional; an absent field takes the data path's default
//! (docs/proxy.md, "Traffic policy"). Semantic rules live in
//! [`crate::validate::traffic_policy_spec`].

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::GatewayDuration;
use crate::meta::ObjectMeta;

/// A TrafficPolicy: the policy for calls to `spec.service`, a Service of the same
/// namespace. At most one per Service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// `bulkhead.dev/v1alpha1`.
    pub api_version: String,
    /// `TrafficPolicy`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The Service and the policy.
    pub spec: ServiceTrafficPolicySpec,
}

/// `TrafficPolicy.spec`: the target Service and the [`TrafficPolicySpec`] fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceTrafficPolicySpec {
    /// The Service's name, in the TrafficPolicy's namespace.
    pub service: String,
    /// See [`TrafficPolicySpec::load_balancer`].
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerSpec>,
    /// See [`TrafficPolicySpec::timeouts`].
    #[serde(default)]
    pub timeouts: Option<TimeoutsSpec>,
    /// See [`TrafficPolicySpec::retries`].
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
    /// See [`TrafficPolicySpec::connection_pool`].
    #[serde(default)]
    pub connection_pool: Option<ConnectionPoolSpec>,
    /// See [`TrafficPolicySpec::outlier_detection`].
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetectionSpec>,
}

impl ServiceTrafficPolicySpec {
    /// The policy fields, without the Service.
    pub fn policy(&self) -> TrafficPolicySpec {
        TrafficPolicySpec {
            load_balancer: self.load_balancer,
            timeouts: self.timeouts.clone(),
            retries: self.retries.clone(),
            connection_pool: self.connection_pool.clone(),
            outlier_detection: self.outlier_detection.clone(),
        }
    }
}

/// The traffic policy fields, shared by the TrafficPolicy kind and `ProxyConfig`'s
/// `spec.outbound[].trafficPolicy`. Serializes back to the same JSON shape (absent fields
/// left out), which is how the control plane ships it to proxies.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicySpec {
    /// How a request picks an endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSpec>,
    /// Connect, request and idle timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsSpec>,
    /// Retries of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetriesSpec>,
    /// Limits on connections, queued and concurrent requests, concurrent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSpec>,
    /// Ejection of failing endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetectionSpec>,
}

/// `loadBalancer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadBalancerSpec {
    /// Power of two choices by peak-EWMA latency times outstanding requests.
    PeakEwma,
    /// Each endpoint in turn.
    RoundRobin,
    /// Power of two choices by outstanding requests.
    LeastRequest,
}

/// `timeouts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutsSpec {
    /// Establishing a connection to an endpoint (TCP and mTLS handshake); > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<GatewayDuration>,
    /// A whole request, retries included; `0s` disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<GatewayDuration>,
    /// An idle connection or stream; > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<GatewayDuration>,
}

/// `retries`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetriesSpec {
    /// Retries after the first try; 0 disables retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Each try's own timeout; > 0, not above `timeouts.request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<GatewayDuration>,
    /// Which failures are retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<RetryOnSpec>>,
    /// gRPC statuses that are retried (names or numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_statuses: Option<Vec<GrpcStatusSpec>>,
    /// Whether requests with non-idempotent methods (POST, PATCH) are retried after they
    /// may have reached the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_non_idempotent: Option<bool>,
    /// The most request body bytes kept for a retry; at most 16 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_bytes: Option<u64>,
    /// Delay between tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    /// The share of requests that may be retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
}

/// `retries.backoff`: exponential with jitter, from `base` up to `max`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackoffSpec {
    /// The first delay; > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<GatewayDuration>,
    /// The largest delay; ≥ `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<GatewayDuration>,
}

/// `retries.budget`: retries may add at most `percent` % of the requests over `window`,
/// plus `minPerSecond`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetSpec {
    /// 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Retries always allowed per second, whatever the ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_per_second: Option<u32>,
    /// The window requests are counted over; > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<GatewayDuration>,
}

/// `connectionPool` (Istio DestinationRule `connectionPool`, flattened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPoolSpec {
    /// Connections to the Service's endpoints (`tcp.maxConnections`); ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection (`http.http1MaxPendingRequests`); 0 = no queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    /// Concurrent requests (`http.http2MaxRequests`); ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Concurrent retries (`http.maxRetries`); 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// `outlierDetection` (Istio DestinationRule `outlierDetection`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetectionSpec {
    /// Consecutive 5xx answers (or gRPC failures) that eject an endpoint; 0 disables.
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// Consecutive connect failures that eject an endpoint; 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_connect_failures: Option<u32>,
    /// The first ejection's length (doubled per repeated ejection); > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<GatewayDuration>,
    /// The longest ejection; ≥ `baseEjectionTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_time: Option<GatewayDuration>,
    /// The most endpoints ejected at once, in percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// One `retries.retryOn` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOnSpec {
    /// `connect-failure`: the connection (or its mTLS handshake) could not be made.
    ConnectFailure,
    /// `reset`: the connection or stream was reset before a response head arrived.
    Reset,
    /// `gateway-error`: 502, 503 and 504.
    GatewayError,
    /// A response status, written `"503"` or `503`; must be 500–599.
    Status(u16),
}

impl fmt::Display for RetryOnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryOnSpec::ConnectFailure => f.write_str("connect-failure"),
            RetryOnSpec::Reset => f.write_str("reset"),
            RetryOnSpec::GatewayError => f.write_str("gateway-error"),
            RetryOnSpec::Status(code) => write!(f, "{code}"),
        }
    }
}

const RETRY_ON_EXPECTED: &str =
    "`connect-failure`, `reset`, `gateway-error` or a 5xx status code such as \"503\"";

impl<'de> Deserialize<'de> for RetryOnSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RetryOnVisitor;
        impl Visitor<'_> for RetryOnVisitor {
            type Value = RetryOnSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RETRY_ON_EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RetryOnSpec, E> {
                u16::try_from(v)
                    .map(RetryOnSpec::Status)
                    .map_err(|_| E::custom(format!("`{v}` is not an HTTP status code")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RetryOnSpec, E> {
                Err(E::custom(format!("`{v}` is not an HTTP status code")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RetryOnSpec, E> {
                match v {
                    "connect-failure" => Ok(RetryOnSpec::ConnectFailure),
                    "reset" => Ok(RetryOnSpec::Reset),
                    "gateway-error" => Ok(RetryOnSpec::GatewayError),
                    "5xx" => Err(E::custom(
                        "`5xx` is not accepted: it would retry 500 and 501, which usually \
                         repeat an application error; list the codes to retry, e.g. \
                         `gateway-error` or \"503\"",
                    )),
                    digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                        digits.parse::<u64>().map_or_else(
                            |_| Err(E::custom(format!("`{v}` is not an HTTP status code"))),
                            |n| self.visit_u64(n),
                        )
                    }
                    other => Err(E::custom(format!(
                        "unknown retry condition `{other}`, expected {RETRY_ON_EXPECTED}"
                    ))),
                }
            }
        }
        d.deserialize_any(RetryOnVisitor)
    }
}

impl Serialize for RetryOnSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One `retries.grpcStatuses` entry: a gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcStatusSpec(pub u32);

/// The gRPC statuses that may be written by name (Istio/Envoy `retryOn` spelling).
pub const GRPC_STATUS_NAMES: [(&str, u32); 5] = [
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

impl fmt::Display for GrpcStatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match GRPC_STATUS_NAMES.iter().find(|(_, code)| *code == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for GrpcStatusSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct GrpcVisitor;
        impl Visitor<'_> for GrpcVisitor {
            type Value = GrpcStatusSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a gRPC status: `cancelled`, `deadline-exceeded`, `resource-exhausted`, \
                     `internal`, `unavailable` or a number 1-16",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GrpcStatusSpec, E> {
                u32::try_from(v)
                    .map(GrpcStatusSpec)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GrpcStatusSpec, E> {
                Err(E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GrpcStatusSpec, E> {
                if let Some((_, code)) = GRPC_STATUS_NAMES.iter().find(|(name, _)| *name == v) {
                    return Ok(GrpcStatusSpec(*code));
                }
                match v.parse::<u32>() {
                    Ok(code) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(GrpcStatusSpec(code)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(GrpcVisitor)
    }
}

impl Serialize for GrpcStatusSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match GRPC_STATUS_NAMES.iter().find(|(_, code)| *code == self.0) {
            Some((name, _)) => s.serialize_str(name),
            None => s.serialize_u32(self.0),
        }
    }
}
