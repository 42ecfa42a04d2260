//! One proxy's snapshot, built from the mesh view exactly as docs/control-plane.md ("What
//! a snapshot holds") lists it.
//!
//! Resources come in a fixed order: Namespaces, the root namespace's policies and
//! Services, the proxy's namespace's, the addressed Workloads and Pods (all shared by
//! every proxy of the namespace), then the proxy's own Workload or Pod unless it is
//! already among the addressed ones. Because the shared part comes first in the prost
//! encoding, its SHA-256 state is computed once per namespace and view and cloned for each
//! proxy, so a proxy's hash costs only its own part.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use aws_lc_rs::digest::{Context, SHA256};
use bulkhead_api::proxy::{Endpoint, InboundPort, Snapshot, Upstream, UpstreamRef, Waf};
use bulkhead_identity::TrustDomain;
use bulkhead_resources::{PortRef, ServicePort};
use prost::encoding::{WireType, encode_key, encode_varint};

use crate::mesh::{MeshView, WorkloadInfo};

/// Prost field numbers of `Snapshot` that the incremental digest writes.
const FIELD_BUNDLE: u32 = 3;
const FIELD_RESOURCES: u32 = 4;
const FIELD_UPSTREAMS: u32 = 5;
const FIELD_TRUST_DOMAIN: u32 = 6;
const FIELD_WAF: u32 = 7;

/// What a proxy subscribed with, checked and normalized (sorted, deduplicated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The workload's namespace (the SVID's).
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// The service account of the proxy's SVID.
    pub service_account: String,
    /// The proxy's own labels (used only when the store declares no such workload).
    pub labels: BTreeMap<String, String>,
    /// Inbound ports, sorted by port and address.
    pub inbound: Vec<InboundPort>,
    /// Upstream services, sorted and deduplicated.
    pub upstreams: Vec<UpstreamRef>,
    /// The Workload made from the above, as JSON (built once per stream).
    synthesized: String,
}

impl Subscription {
    /// A subscription; sorts `inbound` and `upstreams` so equal requests build equal snapshots.
    pub fn new(
        namespace: &str,
        name: &str,
        service_account: &str,
        labels: BTreeMap<String, String>,
        mut inbound: Vec<InboundPort>,
        mut upstreams: Vec<UpstreamRef>,
    ) -> Subscription {
        inbound.sort_by(|a, b| {
            (a.port, &a.address, &a.protocol).cmp(&(b.port, &b.address, &b.protocol))
        });
        inbound.dedup();
        upstreams.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
        upstreams.dedup();
        let mut sub = Subscription {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            service_account: service_account.to_owned(),
            labels,
            inbound,
            upstreams,
            synthesized: String::new(),
        };
        sub.synthesized = synthesize(&sub);
        sub
    }

    /// `ns/name`.
    pub fn workload_key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The Workload JSON sent when the store declares none (what file mode's proxy would
    /// add for itself: labels, service account, inbound ports with their appProtocol).
    pub fn synthesized_workload(&self) -> &str {
        &self.synthesized
    }
}

fn synthesize(sub: &Subscription) -> String {
    let mut ports: BTreeMap<u32, Option<&'static str>> = BTreeMap::new();
    for i in &sub.inbound {
        ports.entry(i.port).or_insert(app_protocol(&i.protocol));
    }
    let ports: Vec<serde_json::Value> = ports
        .into_iter()
        .map(|(port, app)| match app {
            Some(app) => serde_json::json!({ "port": port, "appProtocol": app }),
            None => serde_json::json!({ "port": port }),
        })
        .collect();
    serde_json::json!({
        "apiVersion": bulkhead_api::API_VERSION,
        "kind": "Workload",
        "metadata": { "name": sub.name, "namespace": sub.namespace, "labels": sub.labels },
        "spec": { "serviceAccount": sub.service_account, "ports": ports },
    })
    .to_string()
}

/// The Kubernetes `appProtocol` of a proxy protocol, as the proxy's file mode maps it.
pub fn app_protocol(protocol: &str) -> Option<&'static str> {
    match protocol {
        "http" => Some("http"),
        "http2" => Some("http2"),
        "grpc" => Some("grpc"),
        "tcp" | "opaque" => Some("tcp"),
        _ => None,
    }
}

/// `address` with an unspecified IP (`0.0.0.0`, `::`) replaced by `fixed`, else by
/// `peer`; unchanged when it is not unspecified or nothing replaces it.
pub fn resolve_address(address: &str, fixed: Option<IpAddr>, peer: Option<IpAddr>) -> String {
    match address.parse::<SocketAddr>() {
        Ok(sa) if sa.ip().is_unspecified() => match fixed.or(peer) {
            Some(ip) => SocketAddr::new(ip, sa.port()).to_string(),
            None => address.to_owned(),
        },
        _ => address.to_owned(),
    }
}

/// The digest state after the part of a snapshot every proxy of one namespace shares.
pub(crate) struct Prefix {
    bundle_pem: String,
    digest: Context,
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefix").finish_non_exhaustive()
    }
}

impl Prefix {
    fn compute(view: &MeshView, bundle_pem: &str, namespace: &str) -> Prefix {
        let mut digest = Context::new(&SHA256);
        let mut buf = Vec::new();
        if !bundle_pem.is_empty() {
            encode_str(FIELD_BUNDLE, bundle_pem, &mut buf);
        }
        for json in view.shared_resources(namespace) {
            encode_str(FIELD_RESOURCES, json, &mut buf);
            // Digest in chunks: the shared part can be megabytes.
            if buf.len() > 64 * 1024 {
                digest.update(&buf);
                buf.clear();
            }
        }
        digest.update(&buf);
        Prefix {
            bundle_pem: bundle_pem.to_owned(),
            digest,
        }
    }
}

/// Prost's encoding of a string field (what `prost::encoding::string::encode` writes).
fn encode_str(tag: u32, value: &str, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value.as_bytes());
}

/// The digest state after the shared part, from the view's cache when it has it.
fn shared_digest(view: &MeshView, bundle_pem: &str, namespace: &str) -> Context {
    if let Some(slot) = view.prefix_slot(namespace) {
        let prefix = slot.get_or_init(|| Arc::new(Prefix::compute(view, bundle_pem, namespace)));
        if prefix.bundle_pem == bundle_pem {
            return prefix.digest.clone();
        }
    }
    Prefix::compute(view, bundle_pem, namespace).digest
}

/// The snapshot for the proxy that subscribed with `sub`, at the view's revision.
pub fn build(
    view: &MeshView,
    trust_domain: &TrustDomain,
    bundle_pem: &str,
    sub: &Subscription,
) -> Snapshot {
    let parts = Parts::new(view, trust_domain, bundle_pem, sub);
    parts.into_snapshot(view, bundle_pem, sub)
}

/// [`build`], or `None` when the snapshot's hash is `known` (what the proxy has). The
/// hash is computed before the shared resources are copied, so a change that does not
/// concern this proxy costs no copies.
pub fn build_unless(
    view: &MeshView,
    trust_domain: &TrustDomain,
    bundle_pem: &str,
    sub: &Subscription,
    known: &str,
) -> Option<Snapshot> {
    let parts = Parts::new(view, trust_domain, bundle_pem, sub);
    (parts.hash != known).then(|| parts.into_snapshot(view, bundle_pem, sub))
}

/// What is particular to one proxy, and the hash of the whole snapshot.
struct Parts {
    hash: String,
    own: Vec<String>,
    upstreams: Vec<Upstream>,
    trust_domain: String,
    waf: Option<Waf>,
}

impl Parts {
    fn new(view: &MeshView, td: &TrustDomain, bundle_pem: &str, sub: &Subscription) -> Parts {
        let own = own_resources(view, sub);
        let upstreams: Vec<Upstream> = sub
            .upstreams
            .iter()
            .map(|r| upstream(view, td, sub, r))
            .collect();
        let trust_domain = td.as_str().to_owned();
        let waf = own_waf(view, sub);
        // Continue the shared part's digest with the fields that follow it, in field order.
        let mut digest = shared_digest(view, bundle_pem, &sub.namespace);
        let mut buf = Vec::new();
        for json in &own {
            encode_str(FIELD_RESOURCES, json, &mut buf);
        }
        for up in &upstreams {
            prost::encoding::message::encode(FIELD_UPSTREAMS, up, &mut buf);
        }
        if !trust_domain.is_empty() {
            encode_str(FIELD_TRUST_DOMAIN, &trust_domain, &mut buf);
        }
        if let Some(waf) = &waf {
            prost::encoding::message::encode(FIELD_WAF, waf, &mut buf);
        }
        digest.update(&buf);
        Parts {
            hash: hex(digest.finish().as_ref()),
            own,
            upstreams,
            trust_domain,
            waf,
        }
    }

    fn into_snapshot(self, view: &MeshView, bundle_pem: &str, sub: &Subscription) -> Snapshot {
        let mut resources_json: Vec<String> = view
            .shared_resources(&sub.namespace)
            .map(str::to_owned)
            .collect();
        resources_json.extend(self.own);
        Snapshot {
            version: view.revision,
            hash: self.hash,
            trust_bundle_pem: bundle_pem.to_owned(),
            resources_json,
            upstreams: self.upstreams,
            trust_domain: self.trust_domain,
            waf: self.waf,
        }
    }
}

/// The proxy's own Workload or Pod when not already among the shipped addressed ones, or the
/// synthesized Workload when the store declares none.
fn own_resources(view: &MeshView, sub: &Subscription) -> Vec<String> {
    let declared = view.workloads(&sub.workload_key());
    if declared.is_empty() {
        return vec![sub.synthesized.clone()];
    }
    let shipped = view.ships_addressed(&sub.namespace);
    declared
        .iter()
        .filter(|w| w.address.is_none() || !shipped)
        .map(|w| w.json.clone())
        .collect()
}

/// The WebApplicationFirewall for the proxy's workload, selected by the labels of its
/// declared Workload or Pod (the Workload when both exist), else of its `Subscribe`.
fn own_waf(view: &MeshView, sub: &Subscription) -> Option<Waf> {
    let declared = view.workloads(&sub.workload_key());
    let labels = declared.first().map_or(&sub.labels, |w| &w.labels);
    view.waf(&sub.namespace, labels)
}

/// One upstream: the Service port, the registered endpoints behind it and the Service's
/// TrafficPolicy. An unknown
/// service or port is logged and sent without endpoints, so one bad reference does not
/// keep the rest of the configuration from the proxy.
fn upstream(view: &MeshView, td: &TrustDomain, sub: &Subscription, r: &UpstreamRef) -> Upstream {
    let mut up = Upstream {
        service: r.service.clone(),
        port: r.port,
        endpoints: Vec::new(),
        traffic_policy_json: view
            .traffic_policy(&r.service)
            .unwrap_or_default()
            .to_owned(),
    };
    let Some(service) = view.service(&r.service) else {
        tracing::warn!(workload = %sub.workload_key(), service = %r.service, port = r.port,
            "upstream names an unknown Service; sending it without endpoints");
        return up;
    };
    let Some(port) = service_port(&service.ports, r.port) else {
        tracing::warn!(workload = %sub.workload_key(), service = %r.service, port = r.port,
            ports = ?service.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
            "upstream names no port of the Service (0 needs a single-port Service); \
             sending it without endpoints");
        return up;
    };
    up.port = u32::from(port.port);
    let mut endpoints = BTreeSet::new();
    for workload in &service.selected {
        let Some(target) = target_port(port, workload) else {
            continue;
        };
        let identity = format!(
            "spiffe://{td}/ns/{}/sa/{}",
            workload.namespace, workload.service_account
        );
        for reg in view.registrations(&workload.key()) {
            for (port, address, _) in reg.inbound.iter().filter(|(p, _, _)| *p == target) {
                match endpoint_address(address, workload.address) {
                    Some(address) => endpoints.insert((address, identity.clone())),
                    None => {
                        tracing::debug!(instance = %reg.instance, port, address = %address,
                            "registered address has an unspecified IP and nothing replaces it");
                        false
                    }
                };
            }
        }
    }
    up.endpoints = endpoints
        .into_iter()
        .map(|(address, identity)| Endpoint { address, identity })
        .collect();
    up
}

/// The Service port a reference names: by number, or the only one for 0.
fn service_port(ports: &[ServicePort], requested: u32) -> Option<&ServicePort> {
    match (requested, ports) {
        (0, [only]) => Some(only),
        (0, _) => None,
        (port, _) => ports.iter().find(|p| u32::from(p.port) == port),
    }
}

/// The workload port behind a Service port: its `targetPort` number, the workload's port
/// of that name, or the Service port itself.
fn target_port(port: &ServicePort, workload: &WorkloadInfo) -> Option<u16> {
    match &port.target_port {
        None => Some(port.port),
        Some(PortRef::Number(n)) => Some(*n),
        Some(PortRef::Name(name)) => workload.named_port(name),
    }
}

/// A registered address as peers dial it; `None` when its IP is unspecified and the
/// workload has no fixed address (registrations normally store a resolved one).
fn endpoint_address(address: &str, fixed: Option<IpAddr>) -> Option<String> {
    let resolved = resolve_address(address, fixed, None);
    match resolved.parse::<SocketAddr>() {
        Ok(sa) if sa.ip().is_unspecified() => None,
        _ => Some(resolved),
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
