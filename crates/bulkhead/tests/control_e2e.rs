//! A managed mesh end to end, with the real binary: `bulkhead control`, sidecars under it
//! (`bulkhead proxy --control-plane`), the CLI, and tiny HTTP apps, all on loopback.
//!
//! - 20 sidecars: a policy applied with `bulkhead apply` is enforced by every one of them;
//!   the apply-to-enforcement time is measured and printed (the 1 s target is checked by
//!   the benchmark, bench/control.sh, not by a timed assertion here).
//!
//! Two sidecars with mTLS between them through an outage of the control plane are in
//! e2e_control_restart.rs.

#![cfg(unix)]

mod mesh;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mesh::{ControlPlane, DENY_ADMIN, Proc, app, cli_ok, eventually, free_addr, http_get};
use serde_json::Value;

/// A sidecar config under a control plane (the local wiring only).
fn proxy_config(
    name: &str,
    sa: &str,
    inbound: Option<(SocketAddr, SocketAddr)>,
    outbound: Option<(SocketAddr, &str)>,
) -> String {
    let mut text = format!(
        "apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {{name: {name}, namespace: shop, labels: {{app: {sa}}}}}
spec:
  serviceAccount: {sa}
  admin: {{listen: \"127.0.0.1:0\"}}
  accessLog: {{enabled: false}}
"
    );
    if let Some((port, app)) = inbound {
        text.push_str(&format!(
            "  inbound:\n  - {{listen: \"{port}\", port: 8080, forwardTo: \"{app}\", protocol: http}}\n"
        ));
    }
    if let Some((port, service)) = outbound {
        text.push_str(&format!(
            "  outbound:\n  - {{listen: \"{port}\", service: {service}, protocol: http}}\n"
        ));
    }
    text
}

/// Starts a sidecar for `config` under the control plane with `token`.
fn start_proxy(dir: &Path, file: &str, config: &str, cp: &ControlPlane, token: &str) -> Proc {
    std::fs::write(dir.join(file), config).unwrap();
    let addr = cp.addr.to_string();
    let ca = cp.ca_file.display().to_string();
    let proxy = Proc::start(
        dir,
        &[
            "proxy",
            "--config",
            file,
            "--control-plane",
            &addr,
            "--control-plane-ca",
            &ca,
            "--token",
            token,
        ],
    );
    proxy.log("data path listening");
    proxy
}

/// Creates a join token for shop/`sa` good for `uses` certificates.
fn join_token(dir: &Path, sa: &str, uses: u32) -> String {
    let out = cli_ok(
        dir,
        &[
            "token",
            "create",
            "--join",
            "--namespace",
            "shop",
            "--service-account",
            sa,
            "--uses",
            &uses.to_string(),
            "-o",
            "json",
        ],
    );
    let created: Value = serde_json::from_str(&out).unwrap();
    created["secret"].as_str().unwrap().to_owned()
}

const SHOP: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
";

#[test]
fn twenty_sidecars_enforce_an_applied_policy() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cp = ControlPlane::start(dir, "127.0.0.1:0");
    std::fs::write(dir.join("shop.yaml"), SHOP).unwrap();
    cli_ok(dir, &["apply", "-f", "shop.yaml"]);
    let token = join_token(dir, "api", 20);
    let app = app("api");
    let mut proxies = Vec::new();
    let mut ports = Vec::new();
    for i in 0..20 {
        let port = free_addr();
        let config = proxy_config(&format!("api-{i}"), "api", Some((port, app)), None);
        proxies.push(start_proxy(
            dir,
            &format!("api-{i}.yaml"),
            &config,
            &cp,
            &token,
        ));
        ports.push(port);
    }
    // PERMISSIVE: plaintext reaches every inbound port, and policy applies to it.
    for addr in &ports {
        assert_eq!(http_get(*addr, "/admin").map(|r| r.0), Some(200));
    }

    std::fs::write(dir.join("deny.yaml"), DENY_ADMIN).unwrap();
    let started = Instant::now();
    cli_ok(dir, &["apply", "-f", "deny.yaml"]);
    let mut enforced: Vec<Option<Duration>> = vec![None; ports.len()];
    eventually("every sidecar to deny /admin", || {
        for (i, addr) in ports.iter().enumerate() {
            if enforced[i].is_none() && http_get(*addr, "/admin").map(|r| r.0) == Some(403) {
                enforced[i] = Some(started.elapsed());
            }
        }
        enforced.iter().all(Option::is_some)
    });
    let mut times: Vec<Duration> = enforced.into_iter().flatten().collect();
    times.sort();
    println!(
        "apply-to-enforcement over {} sidecars: median {:?}, max {:?}",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
    // Other paths still pass.
    assert_eq!(http_get(ports[0], "/books").map(|r| r.0), Some(200));

    let listed: Value = serde_json::from_str(&cli_ok(dir, &["proxies", "-o", "json"])).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 20, "{listed}");
    let revision: Value =
        serde_json::from_str(&cli_ok(dir, &["control", "status", "-o", "json"])).unwrap();
    eventually("every sidecar to ACK the latest version", || {
        let listed: Value = serde_json::from_str(&cli_ok(dir, &["proxies", "-o", "json"])).unwrap();
        listed["items"].as_array().unwrap().iter().all(|p| {
            p["connected"] == true
                && p["appliedVersion"] == revision["revision"]
                && p.get("lastNack").is_none()
        })
    });
    drop(proxies);
}
