//! Traffic resilience for upstreams (docs/resilience.md): the policy, load balancing
//! (power of two choices over peak-EWMA), the retry budget, circuit breakers, outlier
//! ejection and backoff. Everything here is synchronous state and arithmetic; the
//! outbound data path (`crate::outbound`) drives it.

pub mod backoff;
pub mod balancer;
pub mod breaker;
pub mod budget;
pub mod endpoint;
mod from_spec;
pub mod outlier;
pub mod policy;
pub mod rng;
pub mod upstream;

pub use breaker::Limit;
pub use policy::TrafficPolicy;
pub use upstream::{Registry, Upstream};

/// Which timeout fired; the metric label and the name in 504 bodies and log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Establishing the TCP connection.
    Connect,
    /// The whole request, retries included.
    Request,
    /// One try.
    PerTry,
}

impl TimeoutKind {
    /// Every kind, in label order.
    pub const ALL: [TimeoutKind; 3] = [
        TimeoutKind::Connect,
        TimeoutKind::Request,
        TimeoutKind::PerTry,
    ];

    /// `connect`, `request`, `per_try`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Request => "request",
            TimeoutKind::PerTry => "per_try",
        }
    }

    /// What timed out: `connect` for the connect timeout, else `request`.
    pub fn phase(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Request | TimeoutKind::PerTry => "request",
        }
    }

    /// How 504 bodies name it: `per-try timeout`.
    pub fn describe(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect timeout",
            TimeoutKind::Request => "request timeout",
            TimeoutKind::PerTry => "per-try timeout",
        }
    }
}
