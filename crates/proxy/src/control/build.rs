//! A control plane `Snapshot` message in, the data path's typed [`Snapshot`] out, through
//! the same loader, `add_self`, engine and inbound/outbound code as file mode
//! ([`crate::load`]). Nothing running is touched here: a bundle to install is handed back,
//! so that a snapshot refused at any step changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use bulkhead_api::proxy;
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::verify::BundleHandle;
use bulkhead_identity::{SpiffeId, TrustBundle};
use bulkhead_resources::validate::{traffic_policy_spec, waf_spec};
use bulkhead_resources::{FieldPath, Format, Loader, TrafficPolicySpec, WafSpec};

use super::error::SnapshotError;
use crate::config::{OutboundSpec, ProxyConfig};
use crate::load::{CompileError, compile, inbound, outbound_with};
use crate::resilience::TrafficPolicy;
use crate::snapshot::{Endpoint, Snapshot};
use crate::waf::Waf;

/// A snapshot ready to publish, and the trust bundle to install first when it changed.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) snapshot: Snapshot,
    pub(crate) bundle: Option<TrustBundle>,
}

/// Builds the snapshot `message` describes for the proxy `cfg` wires up, serving `svid`
/// and verifying peers with `bundle`. The version is the control plane's (its store
/// revision, which increases). The firewall reuses `previous`'s compiled rules when its
/// settings are unchanged; otherwise it compiles the CRS, which takes a while, so call
/// this on a blocking thread.
pub(crate) fn build(
    cfg: &ProxyConfig,
    svid: &Arc<SvidSource>,
    bundle: &BundleHandle,
    message: &proxy::Snapshot,
    previous: Option<&Waf>,
) -> Result<Built, SnapshotError> {
    let trust_domain = svid.id().trust_domain();
    if message.trust_domain != trust_domain.as_str() {
        return Err(SnapshotError::TrustDomain {
            found: message.trust_domain.clone(),
            expected: trust_domain.as_str().to_owned(),
        });
    }
    let new_bundle = TrustBundle::from_pem(
        trust_domain.clone(),
        message.trust_bundle_pem.as_bytes(),
        "trust_bundle_pem",
    )
    .map_err(|e| SnapshotError::Bundle(e.to_string()))?;
    // Preparing the anchors once here means installing them later cannot fail.
    BundleHandle::new(new_bundle.clone()).map_err(|e| SnapshotError::Bundle(e.to_string()))?;
    let mut loader = Loader::new();
    for (i, json) in message.resources_json.iter().enumerate() {
        // Keep going: `finish` reports the problems of every resource together.
        let _ = loader.add_str(json, &format!("resources_json[{i}]"), Format::Json);
    }
    let resources = loader.finish().map_err(SnapshotError::Resources)?;
    let (engine, endpoint) =
        compile(cfg, resources, trust_domain.as_str()).map_err(|e| match e {
            CompileError::Policy(e) => SnapshotError::Compile(e),
            CompileError::MissingSelf(key) => SnapshotError::MissingSelf(key),
        })?;
    let outbound = outbound_with(cfg, |_, o| upstream(message, o))?;
    let waf = firewall(message.waf.as_ref(), previous)?;
    let changed = bundle.current().roots() != new_bundle.roots();
    Ok(Built {
        snapshot: Snapshot {
            version: message.version,
            identity: svid.id().clone(),
            svid: Arc::clone(svid),
            bundle: bundle.clone(),
            engine: Arc::new(engine),
            endpoint,
            inbound: inbound(cfg),
            outbound,
            access_log: cfg.spec.access_log.enabled,
            waf,
        },
        bundle: changed.then_some(new_bundle),
    })
}

/// The endpoints and traffic policy of `outbound` in the snapshot: the upstream of the
/// same service and port (any port when `outbound.port` is 0). A service the snapshot does
/// not list has no endpoints (requests get 503 `no-endpoints`) and the default policy,
/// rather than refusing the whole snapshot, so one missing Service cannot freeze everyone
/// else's configuration.
fn upstream(
    message: &proxy::Snapshot,
    outbound: &OutboundSpec,
) -> Result<(Vec<Endpoint>, Arc<TrafficPolicy>), SnapshotError> {
    let found = message.upstreams.iter().enumerate().find(|(_, u)| {
        u.service == outbound.service && (outbound.port == 0 || u.port == u32::from(outbound.port))
    });
    let Some((index, upstream)) = found else {
        tracing::debug!(service = %outbound.service, port = outbound.port,
            version = message.version, "the snapshot lists no endpoints for this upstream");
        return Ok((Vec::new(), Arc::default()));
    };
    let traffic = traffic_policy(index, &upstream.traffic_policy_json)?;
    Ok((endpoints(index, upstream)?, Arc::new(traffic)))
}

/// The upstream's traffic policy: the defaults when empty, else the TrafficPolicy spec,
/// decoded and checked as file mode checks `spec.outbound[].trafficPolicy`.
fn traffic_policy(index: usize, json: &str) -> Result<TrafficPolicy, SnapshotError> {
    if json.is_empty() {
        return Ok(TrafficPolicy::default());
    }
    let fail = |field: String, message: String| SnapshotError::Upstream {
        index,
        field,
        message,
    };
    let field = FieldPath::root().key("traffic_policy_json");
    let spec: TrafficPolicySpec =
        serde_json::from_str(json).map_err(|e| fail(field.to_string(), e.to_string()))?;
    if let Some(problem) = traffic_policy_spec(&spec, &field).into_iter().next() {
        return Err(fail(problem.path.to_string(), problem.message));
    }
    Ok(TrafficPolicy::from(&spec))
}

/// The snapshot's firewall: its spec decoded and checked as file mode checks
/// `spec.waf`, then compiled (or its rules reused from `previous`).
fn firewall(
    message: Option<&proxy::Waf>,
    previous: Option<&Waf>,
) -> Result<Option<Arc<Waf>>, SnapshotError> {
    let Some(message) = message else {
        return Ok(None);
    };
    let fail = |field: String, message: String| SnapshotError::Waf { field, message };
    let field = FieldPath::root().key("waf").key("spec_json");
    let spec: WafSpec = serde_json::from_str(&message.spec_json)
        .map_err(|e| fail(field.to_string(), e.to_string()))?;
    if let Some(problem) = waf_spec(&spec, &field).into_iter().next() {
        return Err(fail(problem.path.to_string(), problem.message));
    }
    let source = format!("WebApplicationFirewall/{}", message.name);
    Ok(Some(Waf::build(source, spec, previous)?))
}

/// The endpoints of the snapshot's upstream `index`.
fn endpoints(index: usize, upstream: &proxy::Upstream) -> Result<Vec<Endpoint>, SnapshotError> {
    let fail = |j: usize, field: &str, message: String| SnapshotError::Upstream {
        index,
        field: format!("endpoints[{j}].{field}"),
        message,
    };
    let mut out = Vec::with_capacity(upstream.endpoints.len());
    for (j, e) in upstream.endpoints.iter().enumerate() {
        let address: SocketAddr = e.address.parse().map_err(|_| {
            fail(
                j,
                "address",
                format!("`{}` is not an `ip:port` address", e.address),
            )
        })?;
        let identity = SpiffeId::parse(&e.identity).map_err(|err| {
            fail(
                j,
                "identity",
                format!("`{}` is not a valid SPIFFE ID: {err}", e.identity),
            )
        })?;
        out.push(Endpoint { address, identity });
    }
    Ok(out)
}
