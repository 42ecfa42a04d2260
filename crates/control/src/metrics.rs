//! The control plane's Prometheus metrics (`GET /metrics`). Names follow
//! `bulkhead_control_<name>_<unit>[_total]`; labels take a small fixed set of values
//! (route templates, status classes, reasons), never object names or addresses.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(&'static str, String)>;

/// Push latency: 1 ms to 10 s.
const PUSH_BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0,
    5.0, 10.0,
];
/// Snapshot and view builds: 10 µs to 5 s.
const BUILD_BUCKETS: [f64; 15] = [
    0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0,
];

/// Every control-plane metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    api_requests: Family<Labels, Counter>,
    auth_failures: Family<Labels, Counter>,
    proxies_connected: Gauge,
    push_latency: Histogram,
    snapshot_build: Histogram,
    view_build: Histogram,
    snapshots_sent: Counter,
    nacks: Counter,
    certificates: Family<Labels, Counter>,
    certify_refused: Family<Labels, Counter>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("bulkhead_control");
        let api_requests = Family::<Labels, Counter>::default();
        registry.register(
            "api_requests",
            "REST and gRPC requests by route template, method and status class",
            api_requests.clone(),
        );
        let auth_failures = Family::<Labels, Counter>::default();
        registry.register(
            "auth_failures",
            "Refused operator requests by reason (missing, malformed, unknown, revoked, forbidden)",
            auth_failures.clone(),
        );
        let proxies_connected = Gauge::default();
        registry.register(
            "proxies_connected",
            "Proxies with an open watch stream",
            proxies_connected.clone(),
        );
        let push_latency = Histogram::new(PUSH_BUCKETS);
        registry.register_with_unit(
            "push_latency",
            "Time from a committed change to the proxy's ACK of the snapshot it caused",
            Unit::Seconds,
            push_latency.clone(),
        );
        let snapshot_build = Histogram::new(BUILD_BUCKETS);
        registry.register_with_unit(
            "snapshot_build",
            "Time to build one proxy's snapshot",
            Unit::Seconds,
            snapshot_build.clone(),
        );
        let view_build = Histogram::new(BUILD_BUCKETS);
        registry.register_with_unit(
            "view_build",
            "Time to rebuild the mesh view after a change",
            Unit::Seconds,
            view_build.clone(),
        );
        let snapshots_sent = Counter::default();
        registry.register(
            "snapshots_sent",
            "Snapshots sent to proxies",
            snapshots_sent.clone(),
        );
        let nacks = Counter::default();
        registry.register(
            "snapshot_nacks",
            "Snapshots proxies refused (NACK)",
            nacks.clone(),
        );
        let certificates = Family::<Labels, Counter>::default();
        registry.register(
            "certificates_issued",
            "SVIDs issued, by credential (join_token, renewal)",
            certificates.clone(),
        );
        let certify_refused = Family::<Labels, Counter>::default();
        registry.register(
            "certify_refused",
            "Refused certificate requests by reason",
            certify_refused.clone(),
        );
        Arc::new(Metrics {
            registry,
            api_requests,
            auth_failures,
            proxies_connected,
            push_latency,
            snapshot_build,
            view_build,
            snapshots_sent,
            nacks,
            certificates,
            certify_refused,
        })
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts an API request; `route` must be a template, not a raw path.
    pub fn api_request(&self, route: &str, method: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        self.api_requests
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("method", method.to_owned()),
                ("code", class.to_owned()),
            ])
            .inc();
    }

    /// Counts a refused operator request.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Sets the number of connected proxies.
    pub fn set_proxies_connected(&self, n: i64) {
        self.proxies_connected.set(n);
    }

    /// Records a change-to-ACK time.
    pub fn observe_push(&self, latency: Duration) {
        self.push_latency.observe(latency.as_secs_f64());
    }

    /// Records one snapshot build.
    pub fn observe_snapshot_build(&self, took: Duration) {
        self.snapshot_build.observe(took.as_secs_f64());
    }

    /// Records one mesh view rebuild.
    pub fn observe_view_build(&self, took: Duration) {
        self.view_build.observe(took.as_secs_f64());
    }

    /// Counts a snapshot sent.
    pub fn snapshot_sent(&self) {
        self.snapshots_sent.inc();
    }

    /// Counts a NACK.
    pub fn nack(&self) {
        self.nacks.inc();
    }

    /// Counts an issued SVID; `credential` is `join_token` or `renewal`.
    pub fn certificate_issued(&self, credential: &'static str) {
        self.certificates
            .get_or_create(&vec![("credential", credential.to_owned())])
            .inc();
    }

    /// Counts a refused certificate request.
    pub fn certify_refused(&self, reason: &'static str) {
        self.certify_refused
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }
}
