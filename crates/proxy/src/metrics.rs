//! The proxy's Prometheus metrics (`/metrics` on the admin listener): `bulkhead_proxy_*`
//! and the web application firewall's `bulkhead_waf_*` ([`waf`]).
//!
//! Names follow `bulkhead_<subsystem>_<name>_<unit>[_total]` and every label has a small,
//! fixed set of values (direction, status class, layer, decision, reason, result): never
//! paths, addresses or anything a client sends. The label combinations the data path
//! touches per request are resolved once in [`Metrics::new`], so recording is an array
//! index and an atomic add, with no hashing or locking of label sets on the hot path.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_policy::Layer;
use bulkhead_resources::WafMode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::resilience::outlier::Reason;
use crate::resilience::{Limit, Registry as Registry_, TimeoutKind};
use crate::waf::WafAction;

mod waf;

/// Which listener a connection or request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a peer sidecar, towards the local app.
    Inbound,
    /// From the local app, towards an upstream service.
    Outbound,
}

impl Direction {
    /// The label value: `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::Inbound => 0,
            Direction::Outbound => 1,
        }
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::Inbound, Direction::Outbound];
/// Status classes; anything outside 100..=599 counts as `other`.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
const LAYERS: [Layer; 3] = [Layer::Network, Layer::Authentication, Layer::Authorization];

/// Request latencies: 0.5 ms to 10 s, dense where a sidecar hop lives.
const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Connection lifetimes: 10 ms to an hour.
const CONNECTION_BUCKETS: [f64; 9] = [0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type HistogramFamily = Family<Labels1, Histogram, fn() -> Histogram>;

/// Per-direction TCP handles.
#[derive(Debug, Clone)]
struct TcpHandles {
    opened: Counter,
    closed: Counter,
    open: Gauge,
    received: Counter,
    sent: Counter,
    duration: Histogram,
    idle_timeouts: Counter,
}

/// Every metric the proxy exports. Cheap to share: hand out the `Arc` from [`Metrics::new`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `[direction][status class]`.
    requests: [[Counter; 6]; 2],
    request_duration: [Histogram; 2],
    tcp: [TcpHandles; 2],
    /// `[layer][allowed]`.
    decisions: [[Counter; 2]; 3],
    tls_failures: Family<Labels2, Counter>,
    control: ControlHandles,
    resilience: ResilienceHandles,
    waf: waf::WafHandles,
    /// Endpoint health of every running upstream: not a metric, but the data path and
    /// the admin listener (`/config`) share exactly this handle, so it lives here.
    upstreams: Registry_,
}

/// Outbound resilience events (labels from fixed sets only, never addresses).
#[derive(Debug)]
struct ResilienceHandles {
    /// `[success]`.
    retries: [Counter; 2],
    budget_exhausted: Counter,
    /// By [`Limit::ALL`].
    overflow: [Counter; 4],
    /// By [`Reason::ALL`].
    ejections: [Counter; 2],
    /// By [`TimeoutKind::ALL`].
    timeouts: [Counter; 3],
    ejected: Gauge,
}

/// The proxy's own state: certificate, configuration, access log.
#[derive(Debug)]
struct ControlHandles {
    certificate_expiry: Gauge,
    config_version: Gauge,
    /// `[accepted]`.
    config_reloads: [Counter; 2],
    access_log_dropped: Counter,
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Arc<Metrics> {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("bulkhead_proxy");
        let (requests, request_duration) = register_http(r);
        let tcp = register_tcp(r);
        let decisions: Family<Labels2, Counter> = add(
            r,
            "policy_decisions",
            "Policy decisions, by deciding layer and decision (allow/deny)",
            None,
        );
        let tls_failures = add(
            r,
            "tls_handshake_failures",
            "Failed TLS handshakes, by direction and reason",
            None,
        );
        let control = register_control(r);
        let resilience = register_resilience(r);
        let waf = waf::register(root.sub_registry_with_prefix("bulkhead_waf"));
        Arc::new(Metrics {
            registry: root,
            requests,
            request_duration,
            tcp,
            decisions: LAYERS.map(|layer| {
                ["allow", "deny"].map(|decision| {
                    let labels = [("layer", layer.as_str()), ("decision", decision)];
                    decisions.get_or_create(&labels).clone()
                })
            }),
            tls_failures,
            control,
            resilience,
            waf,
            upstreams: Registry_::default(),
        })
    }

    /// Records one completed HTTP request: its status class and its duration.
    pub fn http_request(&self, direction: Direction, status: u16, duration: Duration) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.requests[direction.index()][class].inc();
        self.request_duration[direction.index()].observe(duration.as_secs_f64());
    }

    /// Records a TCP connection accepted (inbound) or dialled for the app (outbound), or an
    /// HTTP connection that switched protocols (an upgraded stream is opaque TCP from then on).
    pub fn tcp_opened(&self, direction: Direction) {
        let tcp = &self.tcp[direction.index()];
        tcp.opened.inc();
        tcp.open.inc();
    }

    /// Records a TCP connection closed, with the bytes received from and sent to the
    /// downstream side and its lifetime. Pair every call with one [`Metrics::tcp_opened`].
    pub fn tcp_closed(
        &self,
        direction: Direction,
        bytes_in: u64,
        bytes_out: u64,
        duration: Duration,
    ) {
        let tcp = &self.tcp[direction.index()];
        tcp.closed.inc();
        tcp.open.dec();
        tcp.received.inc_by(bytes_in);
        tcp.sent.inc_by(bytes_out);
        tcp.duration.observe(duration.as_secs_f64());
    }

    /// Records a TCP connection (or upgraded stream) closed by the proxy because it carried
    /// no bytes for the idle timeout; counted in addition to [`Metrics::tcp_closed`].
    pub fn tcp_idle_timeout(&self, direction: Direction) {
        self.tcp[direction.index()].idle_timeouts.inc();
    }

    /// Records one policy decision by the layer that decided it.
    pub fn decision(&self, layer: Layer, allowed: bool) {
        let layer = match layer {
            Layer::Network => 0,
            Layer::Authentication => 1,
            Layer::Authorization => 2,
        };
        self.decisions[layer][usize::from(!allowed)].inc();
    }

    /// Records a failed TLS handshake. `reason` must come from a fixed set of constants in
    /// the caller (never an error's text), because every distinct value is a new series.
    pub fn tls_handshake_failure(&self, direction: Direction, reason: &'static str) {
        self.tls_failures
            .get_or_create(&[dir(direction), ("reason", reason)])
            .inc();
    }

    /// Sets the expiry of the current SVID (seconds since the Unix epoch).
    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.control.certificate_expiry.set(unix_seconds);
    }

    /// Sets the version of the snapshot in force.
    pub fn set_config_version(&self, version: u64) {
        self.control
            .config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// Records a configuration reload attempt: accepted, or rejected (old snapshot kept).
    pub fn config_reload(&self, accepted: bool) {
        self.control.config_reloads[usize::from(accepted)].inc();
    }

    /// Records `lines` access log lines that could not be written.
    pub fn access_log_dropped(&self, lines: u64) {
        self.control.access_log_dropped.inc_by(lines);
    }

    /// Records one retry sent, by whether it produced a usable answer.
    pub fn retry(&self, success: bool) {
        self.resilience.retries[usize::from(success)].inc();
    }

    /// Records a retry not sent because the retry budget was spent.
    pub fn retry_budget_exhausted(&self) {
        self.resilience.budget_exhausted.inc();
    }

    /// Records a request or connection refused by a full circuit breaker.
    pub fn overflow(&self, limit: Limit) {
        let i = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        self.resilience.overflow[i].inc();
    }

    /// Records an endpoint ejection; the gauge of ejected endpoints goes up until
    /// [`Metrics::readmitted`].
    pub fn ejection(&self, reason: Reason) {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.resilience.ejections[i].inc();
        self.resilience.ejected.inc();
    }

    /// Records an ejected endpoint taking traffic again.
    pub fn readmitted(&self) {
        self.resilience.ejected.dec();
    }

    /// Records a timeout that fired.
    pub fn timeout(&self, kind: TimeoutKind) {
        let i = TimeoutKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.resilience.timeouts[i].inc();
    }

    /// Records one request the firewall inspected: what it did and the engine time.
    pub fn waf_request(&self, mode: WafMode, action: WafAction, engine: Duration) {
        self.waf
            .request(mode == WafMode::Blocking, action, engine.as_secs_f64());
    }

    /// Records one logged rule match of a CRS rule `family` (`crate::waf::event::family`).
    pub fn waf_rule_match(&self, family: &str) {
        self.waf.rule_match(family);
    }

    /// The endpoint health of every running upstream (shown in `/config`).
    pub fn upstreams(&self) -> &Registry_ {
        &self.upstreams
    }

    /// Every metric in the OpenMetrics text format (which Prometheus scrapes as text).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; an encoder error would only mean a metric
        // refused to render, and a partial page beats a panicking admin listener.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn dir(direction: Direction) -> (&'static str, &'static str) {
    ("direction", direction.as_str())
}

/// Registers a new metric of type `M` and returns a handle to it.
fn add<M: Metric + Clone + Default>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> M {
    let metric = M::default();
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, metric.clone()),
        None => registry.register(name, help, metric.clone()),
    }
    metric
}

/// Registers a histogram family (in seconds) whose histograms `make` builds.
fn add_histograms(
    registry: &mut Registry,
    name: &str,
    help: &str,
    make: fn() -> Histogram,
) -> HistogramFamily {
    let family: HistogramFamily = Family::new_with_constructor(make);
    registry.register_with_unit(name, help, Unit::Seconds, family.clone());
    family
}

/// Registers the HTTP families and resolves their per-direction (and status class) handles.
fn register_http(r: &mut Registry) -> ([[Counter; 6]; 2], [Histogram; 2]) {
    let requests: Family<Labels2, Counter> = add(
        r,
        "http_requests",
        "HTTP requests completed, by direction and response status class",
        None,
    );
    let duration = add_histograms(
        r,
        "http_request_duration",
        "Time from request head to response end, by direction",
        || Histogram::new(REQUEST_BUCKETS),
    );
    let requests = DIRECTIONS.map(|d| {
        STATUS_CLASSES.map(|class| {
            let labels = [dir(d), ("status_class", class)];
            requests.get_or_create(&labels).clone()
        })
    });
    (
        requests,
        DIRECTIONS.map(|d| duration.get_or_create(&[dir(d)]).clone()),
    )
}

/// Registers the certificate, configuration and access log metrics.
fn register_control(r: &mut Registry) -> ControlHandles {
    let reloads: Family<Labels1, Counter> = add(
        r,
        "config_reloads",
        "Configuration reload attempts, by result (accepted/rejected)",
        None,
    );
    ControlHandles {
        certificate_expiry: add(
            r,
            "certificate_expiry_timestamp",
            "Expiry of the current SVID, in seconds since the Unix epoch",
            Some(Unit::Seconds),
        ),
        config_version: add(
            r,
            "config_version",
            "Version of the configuration snapshot in force",
            None,
        ),
        config_reloads: ["rejected", "accepted"]
            .map(|result| reloads.get_or_create(&[("result", result)]).clone()),
        access_log_dropped: add(
            r,
            "access_log_dropped_lines",
            "Access log lines dropped because the writer was behind or failing",
            None,
        ),
    }
}

/// Registers the outbound resilience families and resolves their handles.
fn register_resilience(r: &mut Registry) -> ResilienceHandles {
    let retries: Family<Labels1, Counter> = add(
        r,
        "outbound_retries",
        "Retries sent to upstreams, by result (success: a usable answer; failure)",
        None,
    );
    let overflow: Family<Labels1, Counter> = add(
        r,
        "outbound_overflow",
        "Requests and connections refused by a full circuit breaker, by limit",
        None,
    );
    let ejections: Family<Labels1, Counter> = add(
        r,
        "outbound_ejections",
        "Upstream endpoints ejected by outlier detection, by reason",
        None,
    );
    let timeouts: Family<Labels1, Counter> = add(
        r,
        "outbound_timeouts",
        "Outbound timeouts that fired, by kind (connect, request, per_try)",
        None,
    );
    ResilienceHandles {
        retries: ["failure", "success"]
            .map(|result| retries.get_or_create(&[("result", result)]).clone()),
        budget_exhausted: add(
            r,
            "outbound_retry_budget_exhausted",
            "Retries not sent because the upstream's retry budget was spent",
            None,
        ),
        overflow: Limit::ALL.map(|l| overflow.get_or_create(&[("limit", l.as_str())]).clone()),
        ejections: Reason::ALL.map(|reason| {
            ejections
                .get_or_create(&[("reason", reason.as_str())])
                .clone()
        }),
        timeouts: TimeoutKind::ALL.map(|k| timeouts.get_or_create(&[("kind", k.as_str())]).clone()),
        ejected: add(
            r,
            "outbound_endpoints_ejected",
            "Upstream endpoints ejected now",
            None,
        ),
    }
}

/// Registers the TCP families and resolves their per-direction handles.
fn register_tcp(r: &mut Registry) -> [TcpHandles; 2] {
    let opened: Family<Labels1, Counter> = add(
        r,
        "tcp_connections_opened",
        "TCP connections and upgraded HTTP streams opened, by direction",
        None,
    );
    let closed: Family<Labels1, Counter> = add(
        r,
        "tcp_connections_closed",
        "TCP connections and upgraded HTTP streams closed, by direction",
        None,
    );
    let open: Family<Labels1, Gauge> = add(
        r,
        "tcp_open_connections",
        "TCP connections and upgraded HTTP streams open now, by direction",
        None,
    );
    let received: Family<Labels1, Counter> = add(
        r,
        "tcp_received",
        "Bytes received from the downstream side of closed TCP connections and upgraded streams",
        Some(Unit::Bytes),
    );
    let sent: Family<Labels1, Counter> = add(
        r,
        "tcp_sent",
        "Bytes sent to the downstream side of closed TCP connections and upgraded streams",
        Some(Unit::Bytes),
    );
    let idle: Family<Labels1, Counter> = add(
        r,
        "tcp_idle_timeouts",
        "TCP connections and upgraded streams closed after carrying no bytes for the idle timeout",
        None,
    );
    let duration = add_histograms(
        r,
        "tcp_connection_duration",
        "Lifetime of closed TCP connections and upgraded streams, by direction",
        || Histogram::new(CONNECTION_BUCKETS),
    );
    DIRECTIONS.map(|d| {
        let labels = [dir(d)];
        TcpHandles {
            opened: opened.get_or_create(&labels).clone(),
            closed: closed.get_or_create(&labels).clone(),
            open: open.get_or_create(&labels).clone(),
            received: received.get_or_create(&labels).clone(),
            sent: sent.get_or_create(&labels).clone(),
            duration: duration.get_or_create(&labels).clone(),
            idle_timeouts: idle.get_or_create(&labels).clone(),
        }
    })
}

#[cfg(test)]
mod tests;
