//! From `Subscribe` to a registered proxy: checking the request against the SVID and the
//! store, the stored registration (where the workload's inbound endpoints are), and the
//! collector that drops registrations whose proxies stayed away too long.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulkhead_api::proxy::{InboundPort, Subscribe, UpstreamRef};
use bulkhead_identity::SpiffeId;
use bulkhead_resources::{Format, Loader};
use bulkhead_store::Registration;
use tonic::Status;

use crate::error::ApiError;
use crate::mesh::MeshView;
use crate::proxyapi::snapshot::{Subscription, resolve_address};
use crate::state::Shared;

/// The protocols an inbound port may name (`""` means `auto`).
const PROTOCOLS: [&str; 7] = ["", "auto", "http", "http2", "grpc", "tcp", "opaque"];

/// Checks `subscribe` against the proxy's SVID and normalizes it. The workload is in the
/// SVID's namespace and runs as the SVID's service account.
pub fn subscription(
    shared: &Shared,
    id: &SpiffeId,
    subscribe: &Subscribe,
) -> Result<Subscription, Status> {
    let Some((namespace, service_account)) = id.workload() else {
        return Err(Status::permission_denied(format!(
            "the client certificate's ID {id} is not a workload identity; expected \
             spiffe://{}/ns/NAMESPACE/sa/SERVICE_ACCOUNT",
            shared.trust_domain
        )));
    };
    if id.trust_domain_name() != shared.trust_domain.as_str() {
        return Err(Status::permission_denied(format!(
            "the client certificate's ID {id} is not in trust domain {}",
            shared.trust_domain
        )));
    }
    check_name(&subscribe.workload)?;
    let mut inbound = Vec::with_capacity(subscribe.inbound.len());
    for (i, port) in subscribe.inbound.iter().enumerate() {
        inbound.push(check_inbound(i, port)?);
    }
    for (i, up) in subscribe.upstreams.iter().enumerate() {
        check_upstream(i, up)?;
    }
    let labels: BTreeMap<String, String> = subscribe.labels.clone().into_iter().collect();
    Ok(Subscription::new(
        namespace,
        &subscribe.workload,
        service_account,
        labels,
        inbound,
        subscribe.upstreams.clone(),
    ))
}

/// A DNS-1123 subdomain, as Kubernetes names objects.
fn check_name(name: &str) -> Result<(), Status> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "subscribe.workload: `{name}` is not a valid name; expected lower-case letters, \
             digits, `-` and `.`, starting and ending with a letter or digit"
        )))
    }
}

fn check_inbound(i: usize, port: &InboundPort) -> Result<InboundPort, Status> {
    let field = format!("subscribe.inbound[{i}]");
    if !(1..=65535).contains(&port.port) {
        return Err(Status::invalid_argument(format!(
            "{field}.port: {} is not a port; expected 1-65535",
            port.port
        )));
    }
    if port.address.parse::<SocketAddr>().is_err() {
        return Err(Status::invalid_argument(format!(
            "{field}.address: `{}` is not an address; expected ip:port",
            port.address
        )));
    }
    let protocol = port.protocol.to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(Status::invalid_argument(format!(
            "{field}.protocol: `{}` is not a protocol; expected one of auto, http, http2, \
             grpc, tcp, opaque",
            port.protocol
        )));
    }
    Ok(InboundPort {
        port: port.port,
        address: port.address.clone(),
        protocol,
    })
}

fn check_upstream(i: usize, up: &UpstreamRef) -> Result<(), Status> {
    let field = format!("subscribe.upstreams[{i}]");
    let named = up
        .service
        .split_once('.')
        .is_some_and(|(name, ns)| !name.is_empty() && !ns.is_empty());
    if !named {
        return Err(Status::invalid_argument(format!(
            "{field}.service: `{}` is not a Service reference; expected name.namespace",
            up.service
        )));
    }
    if up.port > 65535 {
        return Err(Status::invalid_argument(format!(
            "{field}.port: {} is not a port; expected 1-65535, or 0 for a single-port Service",
            up.port
        )));
    }
    Ok(())
}

/// Checks the subscription against the store: a declared Workload or Pod must run as the
/// SVID's service account; an undeclared one is described by the proxy, whose description
/// must load as a Workload (it goes into every snapshot of this proxy).
pub fn authorize(view: &MeshView, sub: &Subscription) -> Result<(), Status> {
    let key = sub.workload_key();
    let declared = view.workloads(&key);
    if let Some(w) = declared
        .iter()
        .find(|w| w.service_account != sub.service_account)
    {
        return Err(Status::permission_denied(format!(
            "{kind} {key} runs as service account `{declared}`, but the client certificate \
             is for service account `{presented}` of namespace {ns}; the proxy needs an SVID \
             for .../ns/{ns}/sa/{declared}",
            kind = w.kind,
            declared = w.service_account,
            presented = sub.service_account,
            ns = sub.namespace,
        )));
    }
    if declared.is_empty() {
        let mut loader = Loader::new();
        let origin = format!("subscribe: Workload/{key}");
        let checked = loader
            .add_str(sub.synthesized_workload(), &origin, Format::Json)
            .and_then(|()| loader.finish().map(drop));
        if let Err(e) = checked {
            return Err(Status::invalid_argument(format!(
                "the store declares no Workload or Pod {key}, and the one made from Subscribe \
                 (labels, inbound ports) does not load: {e}"
            )));
        }
    }
    Ok(())
}

/// The registration of the proxy: inbound addresses with unspecified IPs resolved to the
/// workload's fixed address or else the address the proxy connected from.
pub fn registration(
    view: &MeshView,
    sub: &Subscription,
    id: &SpiffeId,
    peer_ip: Option<IpAddr>,
    cert_expiry_unix: i64,
    now: SystemTime,
) -> Registration {
    let key = sub.workload_key();
    let fixed = view.workloads(&key).iter().find_map(|w| w.address);
    let mut inbound: Vec<(u16, String, String)> = sub
        .inbound
        .iter()
        .map(|i| {
            let port = u16::try_from(i.port).unwrap_or(0);
            let protocol = if i.protocol.is_empty() {
                "auto"
            } else {
                &i.protocol
            };
            (
                port,
                resolve_address(&i.address, fixed, peer_ip),
                protocol.to_owned(),
            )
        })
        .collect();
    inbound.sort();
    inbound.dedup();
    let mut addresses: Vec<&str> = inbound.iter().map(|(_, a, _)| a.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    Registration {
        instance: format!("{key}@{}", addresses.join(",")),
        workload: key,
        identity: id.to_string(),
        inbound,
        last_seen_unix: unix_seconds(now),
        connected: true,
        cert_expiry_unix: (cert_expiry_unix > 0).then_some(cert_expiry_unix),
    }
}

/// Whether `new` moves endpoints compared with what the view holds for its instance
/// (new instance, other identity or inbound addresses): then every proxy must recompute
/// its upstreams. A reconnect or a new certificate does not.
pub fn moved(view: &MeshView, new: &Registration) -> bool {
    view.registration(&new.workload, &new.instance)
        .is_none_or(|old| old.identity != new.identity || old.inbound != new.inbound)
}

/// Persists a registration on the blocking pool (a store write syncs to disk).
pub(crate) async fn persist(shared: &Arc<Shared>, reg: Registration) -> Result<(), Status> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || shared.store.put_registration(&reg))
        .await
        .map_err(|e| Status::internal(format!("storing the registration failed: {e}")))?
        .map_err(|e| Status::from(ApiError::from(e)))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Drops every registration whose proxy has been away for longer than `ttl` at `now` and
/// returns how many; `started` is when this process started (a registration still marked
/// connected without a live stream was left by an earlier process and counts from then).
pub fn collect_registrations(
    shared: &Shared,
    ttl: Duration,
    started: SystemTime,
    now: SystemTime,
) -> Result<usize, ApiError> {
    let live: HashSet<String> = shared
        .proxies()
        .into_iter()
        .filter(|p| p.connected)
        .map(|p| p.instance)
        .collect();
    let now = unix_seconds(now);
    let mut dropped = 0;
    for reg in shared.store.registrations()? {
        if live.contains(&reg.instance) {
            continue;
        }
        let away_since = if reg.connected {
            reg.last_seen_unix.max(unix_seconds(started))
        } else {
            reg.last_seen_unix
        };
        if now.saturating_sub(away_since) > ttl.as_secs() {
            shared.store.remove_registration(&reg.instance)?;
            tracing::info!(instance = %reg.instance, away_seconds = now.saturating_sub(away_since),
                "dropped the registration of a proxy that stayed away");
            dropped += 1;
        }
    }
    if dropped > 0 {
        shared.topology_changed();
    }
    Ok(dropped)
}

/// Runs [`collect_registrations`] periodically (a quarter of `ttl`, 1 s to 1 min).
pub fn spawn_registration_gc(shared: Arc<Shared>, ttl: Duration) -> tokio::task::JoinHandle<()> {
    let started = SystemTime::now();
    let period = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let shared = Arc::clone(&shared);
            let run = move || collect_registrations(&shared, ttl, started, SystemTime::now());
            match tokio::task::spawn_blocking(run).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "registration collection failed"),
                Err(e) => tracing::error!(error = %e, "registration collection task failed"),
            }
        }
    })
}
