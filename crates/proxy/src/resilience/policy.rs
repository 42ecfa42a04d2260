//! The runtime traffic policy of one upstream: what the balancer, timeouts, retries,
//! circuit breakers and outlier detector obey. `Default` is the documented defaults
//! (docs/resilience.md); configuration only overrides fields.

use std::time::Duration;

/// Everything that shapes how requests to one upstream are sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficPolicy {
    /// How an endpoint is picked.
    pub load_balancer: LoadBalancer,
    /// Connect, request and idle timeouts.
    pub timeouts: Timeouts,
    /// When and how often a failed request is tried again.
    pub retries: Retries,
    /// Circuit-breaker limits.
    pub limits: Limits,
    /// When endpoints are ejected from the balancer.
    pub outlier: Outlier,
}

/// The endpoint selection algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalancer {
    /// Power of two choices over peak-EWMA latency weighted by in-flight requests.
    #[default]
    PeakEwma,
    /// Each endpoint in turn.
    RoundRobin,
    /// Power of two choices over in-flight requests.
    LeastRequest,
}

/// Timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// Establishing the TCP connection to an endpoint (the mTLS handshake that follows
    /// has its own limit). Default 1 s.
    pub connect: Duration,
    /// The whole request, retries and backoff included, until response headers.
    /// Default `Some(15 s)`; `None` means no limit.
    pub request: Option<Duration>,
    /// A TCP connection or upgraded stream with no bytes either way. Default 1 h.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Some(Duration::from_secs(15)),
            idle: Duration::from_secs(3600),
        }
    }
}

/// Retry behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Retries {
    /// Retries after the first try. Default 2.
    pub attempts: u32,
    /// Limit on each try until response headers. Default `None` (only the request
    /// timeout applies).
    pub per_try_timeout: Option<Duration>,
    /// Which failures are retried.
    pub on: RetryOn,
    /// Whether non-idempotent methods (POST, PATCH, ...) are retried. Default false.
    pub non_idempotent: bool,
    /// Largest request body buffered for replay; larger bodies are streamed and never
    /// retried. Default 64 KiB.
    pub buffer_bytes: usize,
    /// First backoff ceiling (full jitter below it). Default 25 ms.
    pub backoff_base: Duration,
    /// Largest backoff ceiling. Default 250 ms.
    pub backoff_max: Duration,
    /// Caps retries relative to requests.
    pub budget: Budget,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: None,
            on: RetryOn::default(),
            non_idempotent: false,
            buffer_bytes: 64 * 1024,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            budget: Budget::default(),
        }
    }
}

/// Retry conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryOn {
    /// The connection could not be established. Default true.
    pub connect_failure: bool,
    /// The connection or stream broke before response headers. Default true.
    pub reset: bool,
    /// HTTP response statuses that are retried. Default `[503]`.
    pub statuses: Vec<u16>,
    /// gRPC statuses (in trailers-only responses) that are retried. Default `[14]`
    /// (UNAVAILABLE).
    pub grpc_statuses: Vec<u32>,
}

impl Default for RetryOn {
    fn default() -> Self {
        Self {
            connect_failure: true,
            reset: true,
            statuses: vec![503],
            grpc_statuses: vec![14],
        }
    }
}

/// The retry budget: over a sliding `window`, retries are allowed while
/// `retries <= ratio * requests + min_per_second * window_secs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Retries allowed per request. Default 0.2.
    pub ratio: f64,
    /// Retries always allowed per second. Default 10.
    pub min_per_second: u32,
    /// How far back requests and retries count. Default 10 s.
    pub window: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// Circuit-breaker limits; overflow gets a fast 503.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open connections to the upstream (all endpoints). Default 1024.
    pub max_connections: u32,
    /// Requests waiting for a connection or stream. Default 1024.
    pub max_pending_requests: u32,
    /// Requests in flight. Default 1024.
    pub max_requests: u32,
    /// Retries in flight at once. Default 3.
    pub max_retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// Outlier detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    /// Consecutive 5xx responses (or resets) that eject an endpoint. Default 5.
    pub consecutive_5xx: u32,
    /// Consecutive connect failures that eject an endpoint. Default 5.
    pub consecutive_connect_failures: u32,
    /// The first ejection's length; each further ejection doubles it. Default 30 s.
    pub base_ejection: Duration,
    /// The longest ejection. Default 300 s.
    pub max_ejection: Duration,
    /// Most endpoints ejected at once, in percent. Default 50. At least one endpoint
    /// may be ejected when there are two or more; the last one never is.
    pub max_ejected_percent: u8,
}

impl Default for Outlier {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            consecutive_connect_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}
