//! `/config`: the snapshot in force as JSON. Certificate details are what the certificate
//! says publicly (subject, issuer, serial, validity); the private key never leaves
//! [`bulkhead_identity::rotation::SvidSource`].

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::accesslog::rfc3339;
use crate::control::ControlStatus;
use crate::metrics::Direction;
use crate::reload::{ReloadStatus, unix_seconds};
use crate::resilience::Registry;
use crate::run::listener_keys;
use crate::snapshot::Snapshot;

/// The JSON document `/config` answers with.
pub(super) fn render(
    snapshot: &Snapshot,
    upstreams: &Registry,
    status: Option<&ReloadStatus>,
    control: Option<&ControlStatus>,
) -> String {
    let engine = &snapshot.engine;
    let (network, authentication, authorization) = engine.policy_counts();
    let bundle = snapshot.bundle.current();
    let document = json!({
        "version": snapshot.version,
        "identity": snapshot.identity.as_str(),
        "workload": engine.endpoint_name(snapshot.endpoint),
        "certificate": certificate(snapshot),
        "trust_bundle": {
            "trust_domain": bundle.trust_domain().as_str(),
            "roots": bundle.roots().len(),
        },
        "inbound": inbound(snapshot),
        "outbound": outbound(snapshot, upstreams),
        "policies": {
            "network": network,
            "authentication": authentication,
            "authorization": authorization,
            "endpoints": engine.endpoint_count(),
        },
        "access_log": snapshot.access_log,
        "waf": snapshot.waf.as_ref().map(|w| w.to_json()),
        "reload": status.map(|s| json!({
            "attempts": s.attempts,
            "rejected": s.rejected,
            "last_error": s.last_error,
        })),
        "control": control.map(control_json),
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn inbound(snapshot: &Snapshot) -> Vec<Value> {
    let engine = &snapshot.engine;
    let ports = snapshot.inbound.iter().map(|i| {
        let (mode, by) = engine.mtls_mode(snapshot.endpoint, i.port);
        json!({
            "listen": i.listen.to_string(),
            "port": i.port,
            "forward_to": i.forward_to.to_string(),
            "protocol": i.protocol.as_str(),
            "mtls_mode": mode.as_str(),
            "mtls_mode_set_by": by,
        })
    });
    ports.collect()
}

/// The upstreams, each endpoint with its runtime state: EWMA latency, requests in
/// flight, consecutive failures and, when ejected, for how much longer.
fn outbound(snapshot: &Snapshot, upstreams: &Registry) -> Vec<Value> {
    let keys = listener_keys(snapshot);
    let outbound_keys = keys.iter().filter(|k| k.direction == Direction::Outbound);
    let upstreams = snapshot.outbound.iter().zip(outbound_keys).map(|(o, key)| {
        let states = upstreams
            .get((key.listen, key.ordinal))
            .map(|up| up.views())
            .unwrap_or_default();
        let endpoints: Vec<Value> = o
            .endpoints
            .iter()
            .map(|e| {
                let state = states.iter().find(|(a, _)| *a == e.address).map(|(_, v)| {
                    json!({
                        "healthy": v.ejected_for.is_none(),
                        "ejected_for_ms": v.ejected_for.map(|d| d.as_millis()),
                        "ejections": v.ejections,
                        "ewma_ms": v.ewma_ms,
                        "in_flight": v.in_flight,
                        "consecutive_5xx": v.consecutive_5xx,
                        "consecutive_connect_failures": v.consecutive_connect_failures,
                    })
                });
                json!({"address": e.address.to_string(), "identity": e.identity.as_str(),
                    "state": state})
            })
            .collect();
        json!({
            "listen": o.listen.to_string(),
            "service": o.service,
            "protocol": o.protocol.as_str(),
            "endpoints": endpoints,
        })
    });
    upstreams.collect()
}

fn certificate(snapshot: &Snapshot) -> Value {
    let info = snapshot.svid.info();
    let remaining = info
        .not_after
        .duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs());
    json!({
        "id": info.id.as_str(),
        "serial": info.serial,
        "subject": info.subject,
        "issuer": info.issuer,
        "key_type": info.key_type,
        "not_before": rfc3339(info.not_before),
        "not_after": rfc3339(info.not_after),
        "not_after_unix": unix_seconds(info.not_after),
        "expires_in_seconds": remaining,
        "valid": snapshot.svid.is_ready(),
    })
}

/// The control plane connection: whether it is up, what is applied, what went wrong.
fn control_json(c: &ControlStatus) -> Value {
    json!({
        "address": c.address,
        "connected": c.connected,
        "applied_version": c.applied_version,
        "applied_hash": c.applied_hash,
        "from_state_dir": c.from_state_dir,
        "last_error": c.last_error,
        "last_nack": c.last_nack,
        "rejected": c.rejected,
        "streams": c.streams,
        "cert_expiry_unix": c.cert_expiry_unix,
    })
}
