//! `/config`: the snapshot in force as JSON. Certificate details are what the certificate
//! says publicly (subject, issuer, serial, validity); the private key never leaves
//! [`bulkhead_identity::rotation::SvidSource`].

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::accesslog::rfc3339;
use crate::control::ControlStatus;
use crate::reload::{ReloadStatus, unix_seconds};
use crate::snapshot::Snapshot;

/// The JSON document `/config` answers with.
pub(super) fn render(
    snapshot: &Snapshot,
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
        "outbound": outbound(snapshot),
        "policies": {
            "network": network,
            "authentication": authentication,
            "authorization": authorization,
            "endpoints": engine.endpoint_count(),
        },
        "access_log": snapshot.access_log,
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

fn outbound(snapshot: &Snapshot) -> Vec<Value> {
    let upstreams = snapshot.outbound.iter().map(|o| {
        let endpoints: Vec<Value> = o
            .endpoints
            .iter()
            .map(|e| json!({"address": e.address.to_string(), "identity": e.identity.as_str()}))
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
