//! Semantic checks of a decoded `ProxyConfig`: what serde's types cannot say. Each problem
//! is a [`FieldError`], so the resources loader can point it at its line.

use std::net::SocketAddr;
use std::path::Path;

use bulkhead_identity::{SpiffeId, TrustDomain};
use bulkhead_resources::validate::{traffic_policy_spec, waf_spec};
use bulkhead_resources::{FieldError, FieldPath};

use crate::config::{ControlPlaneSpec, ProxyConfig};
use crate::control::address::Address;

/// Every semantic problem of `cfg`; relative paths are checked against `base_dir`.
pub(super) fn validate(cfg: &ProxyConfig, base_dir: &Path) -> Vec<FieldError> {
    let mut out = Vec::new();
    let root = FieldPath::root();
    let spec = root.key("spec");
    if let Some(ns) = &cfg.metadata.namespace {
        check_dns_label(ns, root.key("metadata").key("namespace"), &mut out);
    }
    check_service_account(
        &cfg.spec.service_account,
        spec.key("serviceAccount"),
        &mut out,
    );
    check_listeners(cfg, &spec, &mut out);
    check_outbound(cfg, &spec, &mut out);
    check_files(cfg, base_dir, &spec, &mut out);
    if let Some(waf) = &cfg.spec.waf {
        out.extend(waf_spec(waf, &spec.key("waf")));
    }
    match &cfg.spec.control_plane {
        Some(cp) => check_controlled(cfg, cp, base_dir, &spec, &mut out),
        None if cfg.spec.identity.is_none() => out.push(FieldError::new(
            spec.key("identity"),
            "missing; expected {certFile, keyFile, bundleFile} (or spec.controlPlane, to have \
             the control plane issue the certificate)",
        )),
        None => {}
    }
    out
}

/// With a control plane, the certificate, policies and endpoints come from it: the file
/// must not also name them, or an operator would believe they apply.
fn check_controlled(
    cfg: &ProxyConfig,
    cp: &ControlPlaneSpec,
    base_dir: &Path,
    spec: &FieldPath,
    out: &mut Vec<FieldError>,
) {
    let forbidden = |path: FieldPath, what: &str| {
        FieldError::new(
            path,
            format!("not allowed with spec.controlPlane: the control plane supplies {what}"),
        )
    };
    if cfg.spec.identity.is_some() {
        out.push(forbidden(spec.key("identity"), "the certificate"));
    }
    if !cfg.spec.policies.is_empty() {
        out.push(forbidden(spec.key("policies"), "the policies"));
    }
    for (i, outbound) in cfg.spec.outbound.iter().enumerate() {
        if !outbound.endpoints.is_empty() {
            let at = spec.key("outbound").index(i).key("endpoints");
            out.push(forbidden(at, "the endpoints"));
        }
        if outbound.traffic_policy.is_some() {
            let at = spec.key("outbound").index(i).key("trafficPolicy");
            out.push(forbidden(
                at,
                "the traffic policy (a TrafficPolicy resource for the Service)",
            ));
        }
    }
    if cfg.spec.waf.is_some() {
        out.push(forbidden(
            spec.key("waf"),
            "the firewall (a WebApplicationFirewall resource selecting the workload)",
        ));
    }
    check_control_plane(cp, base_dir, &spec.key("controlPlane"), out);
}

fn check_control_plane(
    cp: &ControlPlaneSpec,
    base_dir: &Path,
    at: &FieldPath,
    out: &mut Vec<FieldError>,
) {
    if cp.address.is_empty() {
        out.push(FieldError::new(
            at.key("address"),
            "missing; expected the control plane's `host:port` (or --control-plane)",
        ));
    } else if let Err(e) = Address::parse(&cp.address) {
        out.push(FieldError::new(at.key("address"), e.to_string()));
    }
    if cp.ca_file.as_os_str().is_empty() {
        out.push(FieldError::new(
            at.key("caFile"),
            "missing; expected the control plane API's CA certificate (PEM), e.g. \
             <data-dir>/tls/ca.pem (or --control-plane-ca)",
        ));
    } else {
        check_readable(base_dir, &cp.ca_file, at.key("caFile"), out);
    }
    match (&cp.token, &cp.token_file) {
        (Some(_), Some(_)) => out.push(FieldError::new(
            at.key("tokenFile"),
            "set either token or tokenFile, not both",
        )),
        (Some(token), None) if token.trim().is_empty() => {
            out.push(FieldError::new(
                at.key("token"),
                "empty; expected a join token (bhj_...)",
            ));
        }
        (None, Some(file)) => check_readable(base_dir, file, at.key("tokenFile"), out),
        _ => {}
    }
    if let Err(e) = TrustDomain::new(&cp.trust_domain) {
        out.push(FieldError::new(
            at.key("trustDomain"),
            format!("`{}` is not a valid trust domain: {e}", cp.trust_domain),
        ));
    }
    if let Some(dir) = &cp.state_dir {
        let resolved = base_dir.join(dir);
        if resolved.exists() && !resolved.is_dir() {
            out.push(FieldError::new(
                at.key("stateDir"),
                format!("`{}` exists and is not a directory", resolved.display()),
            ));
        }
    }
}

fn check_readable(base_dir: &Path, path: &Path, at: FieldPath, out: &mut Vec<FieldError>) {
    let resolved = base_dir.join(path);
    if !resolved.is_file() {
        out.push(FieldError::new(
            at,
            format!("`{}` is not a readable file", resolved.display()),
        ));
    }
}

fn check_dns_label(name: &str, path: FieldPath, out: &mut Vec<FieldError>) {
    if !is_dns_label(name) {
        out.push(FieldError::new(
            path,
            format!(
                "`{name}` is not a valid name; expected a DNS label: at most 63 lower-case \
                 letters, digits and `-`, starting and ending with a letter or digit"
            ),
        ));
    }
}

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn check_service_account(sa: &str, path: FieldPath, out: &mut Vec<FieldError>) {
    // Service accounts are DNS subdomains in Kubernetes: labels joined by dots.
    let valid = !sa.is_empty() && sa.len() <= 253 && sa.split('.').all(is_dns_label);
    if !valid {
        out.push(FieldError::new(
            path,
            format!(
                "`{sa}` is not a valid service account name; expected lower-case letters, \
                 digits, `-` and `.` (a DNS subdomain)"
            ),
        ));
    }
}

/// One listening socket and the field that declares it.
struct Listener {
    addr: SocketAddr,
    field: FieldPath,
}

/// Whether binding `a` and `b` at once would collide (same port, same or wildcard IP).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn check_port(addr: SocketAddr, path: &FieldPath, out: &mut Vec<FieldError>) {
    if addr.port() == 0 {
        out.push(FieldError::new(
            path.clone(),
            format!("port 0 in `{addr}`; expected a fixed port 1-65535"),
        ));
    }
}

fn check_listeners(cfg: &ProxyConfig, spec: &FieldPath, out: &mut Vec<FieldError>) {
    let admin = spec.key("admin").key("listen");
    if !cfg.spec.admin.listen.ip().is_loopback() {
        out.push(FieldError::new(
            admin.clone(),
            format!(
                "`{}` is not a loopback address; the admin listener exposes configuration and \
                 control, so it must listen on 127.0.0.1 or ::1",
                cfg.spec.admin.listen
            ),
        ));
    }
    // Admin port 0 is allowed (an ephemeral port, logged at start); the others must be
    // fixed, because peers and the app have to know them.
    let mut listeners = vec![Listener {
        addr: cfg.spec.admin.listen,
        field: admin,
    }];
    check_inbound(cfg, spec, &mut listeners, out);
    for (i, outbound) in cfg.spec.outbound.iter().enumerate() {
        let at = spec.key("outbound").index(i).key("listen");
        check_port(outbound.listen, &at, out);
        if !outbound.listen.ip().is_loopback() {
            out.push(FieldError::new(
                at.clone(),
                format!(
                    "`{}` is not a loopback address; the app's plaintext side of an upstream \
                     must only be reachable from this host (127.0.0.1 or ::1)",
                    outbound.listen
                ),
            ));
        }
        listeners.push(Listener {
            addr: outbound.listen,
            field: at,
        });
    }
    check_unique(&listeners, out);
    check_no_loops(cfg, &listeners, spec, out);
}

/// Inbound ports: fixed listen and app ports, unique workload ports.
fn check_inbound(
    cfg: &ProxyConfig,
    spec: &FieldPath,
    listeners: &mut Vec<Listener>,
    out: &mut Vec<FieldError>,
) {
    let mut ports: Vec<(u16, FieldPath)> = Vec::new();
    for (i, inbound) in cfg.spec.inbound.iter().enumerate() {
        let at = spec.key("inbound").index(i);
        check_port(inbound.listen, &at.key("listen"), out);
        check_port(inbound.forward_to, &at.key("forwardTo"), out);
        let port = at.key("port");
        if inbound.port == 0 {
            out.push(FieldError::new(
                port.clone(),
                "expected a port 1-65535, found 0",
            ));
        } else if let Some((_, first)) = ports.iter().find(|(p, _)| *p == inbound.port) {
            out.push(FieldError::new(
                port.clone(),
                format!(
                    "workload port {} is already declared at {first}",
                    inbound.port
                ),
            ));
        }
        ports.push((inbound.port, port));
        listeners.push(Listener {
            addr: inbound.listen,
            field: at.key("listen"),
        });
    }
}

fn check_unique(listeners: &[Listener], out: &mut Vec<FieldError>) {
    for (i, later) in listeners.iter().enumerate() {
        let clash = listeners[..i]
            .iter()
            .filter(|l| l.addr.port() != 0)
            .find(|earlier| overlaps(earlier.addr, later.addr));
        if let Some(earlier) = clash {
            out.push(FieldError::new(
                later.field.clone(),
                format!(
                    "`{}` is already used by {} (`{}`); every listener needs its own address",
                    later.addr, earlier.field, earlier.addr
                ),
            ));
        }
    }
}

/// An inbound port forwarding to one of the proxy's own listeners would loop forever.
fn check_no_loops(
    cfg: &ProxyConfig,
    listeners: &[Listener],
    spec: &FieldPath,
    out: &mut Vec<FieldError>,
) {
    for (i, inbound) in cfg.spec.inbound.iter().enumerate() {
        let own = listeners
            .iter()
            .filter(|l| l.addr.port() != 0)
            .find(|l| overlaps(l.addr, inbound.forward_to));
        if let Some(own) = own {
            out.push(FieldError::new(
                spec.key("inbound").index(i).key("forwardTo"),
                format!(
                    "`{}` is this proxy's own listener {}; expected the app's address",
                    inbound.forward_to, own.field
                ),
            ));
        }
    }
}

fn check_outbound(cfg: &ProxyConfig, spec: &FieldPath, out: &mut Vec<FieldError>) {
    for (i, outbound) in cfg.spec.outbound.iter().enumerate() {
        let at = spec.key("outbound").index(i);
        let service_ok = outbound
            .service
            .split_once('.')
            .is_some_and(|(name, ns)| is_dns_label(name) && is_dns_label(ns));
        if !service_ok {
            out.push(FieldError::new(
                at.key("service"),
                format!(
                    "`{}` is not `name.namespace`; expected the service's name and namespace, \
                     e.g. `api.shop`",
                    outbound.service
                ),
            ));
        }
        // With a control plane the endpoints come from it (checked in `check_controlled`).
        if outbound.endpoints.is_empty() && cfg.spec.control_plane.is_none() {
            out.push(FieldError::new(
                at.key("endpoints"),
                "no endpoints; expected at least one {address, identity}",
            ));
        }
        if let Some(policy) = &outbound.traffic_policy {
            out.extend(traffic_policy_spec(policy, &at.key("trafficPolicy")));
        }
        for (j, endpoint) in outbound.endpoints.iter().enumerate() {
            let ep = at.key("endpoints").index(j);
            check_port(endpoint.address, &ep.key("address"), out);
            if let Err(e) = SpiffeId::parse(&endpoint.identity) {
                out.push(FieldError::new(
                    ep.key("identity"),
                    format!(
                        "`{}` is not a valid SPIFFE ID ({e}); expected \
                         `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`",
                        endpoint.identity
                    ),
                ));
            }
        }
    }
}

fn check_files(cfg: &ProxyConfig, base_dir: &Path, spec: &FieldPath, out: &mut Vec<FieldError>) {
    if let Some(files) = &cfg.spec.identity {
        let identity = spec.key("identity");
        let files = [
            ("certFile", &files.cert_file),
            ("keyFile", &files.key_file),
            ("bundleFile", &files.bundle_file),
        ];
        for (field, path) in files {
            check_readable(base_dir, path, identity.key(field), out);
        }
    }
    for (i, path) in cfg.spec.policies.iter().enumerate() {
        let resolved = base_dir.join(path);
        if !resolved.exists() {
            out.push(FieldError::new(
                spec.key("policies").index(i),
                format!(
                    "`{}` does not exist; expected a resource file or directory",
                    resolved.display()
                ),
            ));
        }
    }
    if let Some(path) = &cfg.spec.access_log.path {
        let resolved = base_dir.join(path);
        let dir = resolved.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            out.push(FieldError::new(
                spec.key("accessLog").key("path"),
                format!(
                    "the directory of `{}` does not exist; it must exist for the log file to be created",
                    resolved.display()
                ),
            ));
        }
    }
}
