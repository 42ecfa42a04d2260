//! One typed, validated configuration snapshot: everything the data path reads. A new
//! snapshot replaces the old one atomically; an invalid one never replaces a good one.

use std::net::SocketAddr;
use std::sync::Arc;

use bulkhead_identity::SpiffeId;
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::verify::BundleHandle;
use bulkhead_policy::{EndpointId, Engine};

use crate::config::AppProtocol;
use crate::resilience::TrafficPolicy;
use crate::waf::Waf;

/// The proxy's whole configuration at one version.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every accepted snapshot.
    pub version: u64,
    /// This workload's SPIFFE ID.
    pub identity: SpiffeId,
    /// This workload's current SVID (rotates in place).
    pub svid: Arc<SvidSource>,
    /// The trust bundle (swappable in place).
    pub bundle: BundleHandle,
    /// Compiled policies, including this workload as an endpoint.
    pub engine: Arc<Engine>,
    /// This workload in `engine`: the destination of every inbound decision.
    pub endpoint: EndpointId,
    /// Inbound ports.
    pub inbound: Vec<Inbound>,
    /// Upstreams.
    pub outbound: Vec<Outbound>,
    /// Whether access log lines are written.
    pub access_log: bool,
    /// The web application firewall in front of the inbound HTTP ports, if any.
    pub waf: Option<Arc<Waf>>,
}

/// One inbound port.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Where peers connect.
    pub listen: SocketAddr,
    /// The workload port policies refer to.
    pub port: u16,
    /// The app's address.
    pub forward_to: SocketAddr,
    /// The app's protocol.
    pub protocol: AppProtocol,
}

/// One upstream service.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Where the app connects.
    pub listen: SocketAddr,
    /// `name.namespace`.
    pub service: String,
    /// The app's protocol.
    pub protocol: AppProtocol,
    /// Endpoints with the identity each must present.
    pub endpoints: Vec<Endpoint>,
    /// Load balancing, timeouts, retries, limits and outlier ejection for this upstream.
    pub traffic: Arc<TrafficPolicy>,
}

/// One upstream endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The peer sidecar's inbound address.
    pub address: SocketAddr,
    /// The SPIFFE ID it must present.
    pub identity: SpiffeId,
}
