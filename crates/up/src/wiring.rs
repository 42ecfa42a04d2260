//! Local wiring of one workload: the ports it and its sidecar get, the sidecar's
//! ProxyConfig, and the workload's environment.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::Layout;
use crate::plan::{EXPOSE_ANNOTATION, WorkloadPlan, env_name, service_name};

/// The ports of one workload and its sidecar (all on 127.0.0.1).
#[derive(Debug, Clone)]
pub struct Wiring {
    /// Per `spec.ports` entry: its name, declared port, the app's port, the sidecar's inbound.
    pub ports: Vec<PortWiring>,
    /// Per upstream: service, port and the sidecar's outbound listener.
    pub upstreams: Vec<(String, u16, u16)>,
    /// The sidecar's admin port.
    pub admin: u16,
}

/// One workload port.
#[derive(Debug, Clone)]
pub struct PortWiring {
    /// The port's name.
    pub name: Option<String>,
    /// The declared port (what Services target).
    pub declared: u16,
    /// Where the app listens.
    pub app: u16,
    /// Where the sidecar's inbound listener is.
    pub inbound: u16,
}

/// A port nothing listens on right now, for a sidecar or app that binds it later.
///
/// Not the kernel's choice for port 0: that comes from the ephemeral range, which also
/// supplies the source port of every outgoing connection on the host, so between our
/// release and the child's bind (seconds, while sidecars start) such a port can be taken.
/// Ports below the ephemeral range are only ever handed out by explicit binds; one is
/// picked at random there and checked free. Falls back to port 0 if none is found.
pub fn free_port() -> Result<u16> {
    let (high, low) = below_ephemeral_range();
    let span = u64::from(high - low);
    let mut seed = random_seed();
    for _ in 0..256 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = low + u16::try_from((seed >> 33) % span).unwrap_or(0);
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?.port());
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("allocating a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `(end, start)` of the 12,000 ports below the kernel's ephemeral range (Linux:
/// `/proc/sys/net/ipv4/ip_local_port_range`, 32768 by default), never below 1024.
fn below_ephemeral_range() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(2048);
    (start, start.saturating_sub(12_000).max(1024))
}

/// A seed that differs between processes and calls.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

impl Wiring {
    /// Allocates every port `w` needs.
    pub fn allocate(w: &WorkloadPlan) -> Result<Wiring> {
        let mut ports = Vec::new();
        for (i, (name, declared)) in w.ports.iter().enumerate() {
            let inbound = match w.expose.filter(|_| i == 0) {
                Some(addr) if addr.port() != 0 => {
                    // Bound and released: a taken port is a clear error now rather than a
                    // sidecar that never turns ready.
                    TcpListener::bind(addr).with_context(|| {
                        format!(
                            "{}: cannot listen on {addr} (annotation {EXPOSE_ANNOTATION}); \
                             free that port, change the annotation, or run `bulkhead up --no-expose`",
                            w.key()
                        )
                    })?;
                    addr.port()
                }
                _ => free_port()?,
            };
            ports.push(PortWiring {
                name: name.clone(),
                declared: *declared,
                app: free_port()?,
                inbound,
            });
        }
        let mut upstreams = Vec::new();
        for (service, port) in &w.upstreams {
            upstreams.push((service.clone(), *port, free_port()?));
        }
        Ok(Wiring {
            ports,
            upstreams,
            admin: free_port()?,
        })
    }

    /// The workload's environment: `PORT`, `PORT_<NAME>`, `UPSTREAM_<SERVICE>`, then
    /// `spec.run.env`.
    pub fn env(&self, w: &WorkloadPlan) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(first) = self.ports.first() {
            env.push(("PORT".to_owned(), first.app.to_string()));
        }
        for p in &self.ports {
            if let Some(name) = &p.name {
                env.push((format!("PORT_{}", env_name(name)), p.app.to_string()));
            }
        }
        for (service, _, listen) in &self.upstreams {
            env.push((
                format!("UPSTREAM_{}", env_name(service_name(service))),
                format!("127.0.0.1:{listen}"),
            ));
        }
        if let Some(run) = &w.run {
            env.extend(run.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env
    }

    /// The sidecar's ProxyConfig under the control plane, as YAML.
    pub fn proxy_config(
        &self,
        w: &WorkloadPlan,
        layout: &Layout,
        control: &str,
        trust_domain: &str,
    ) -> Result<String> {
        let inbound: Vec<_> = self
            .ports
            .iter()
            .map(|p| {
                json!({
                    "listen": format!("127.0.0.1:{}", p.inbound),
                    "port": p.declared,
                    "forwardTo": format!("127.0.0.1:{}", p.app),
                })
            })
            .collect();
        let outbound: Vec<_> = self
            .upstreams
            .iter()
            .map(|(service, port, listen)| {
                json!({"listen": format!("127.0.0.1:{listen}"), "service": qualified(service, &w.namespace), "port": port})
            })
            .collect();
        let path = |p: PathBuf| p.display().to_string();
        let config = json!({
            "apiVersion": "bulkhead.dev/v1alpha1",
            "kind": "ProxyConfig",
            "metadata": {"name": w.name, "namespace": w.namespace, "labels": w.labels},
            "spec": {
                "serviceAccount": w.service_account,
                "admin": {"listen": format!("127.0.0.1:{}", self.admin)},
                "accessLog": {"enabled": true, "path": path(layout.access_log(&w.namespace, &w.name))},
                "controlPlane": {
                    "address": control,
                    "caFile": path(layout.api_ca()),
                    "trustDomain": trust_domain,
                    "stateDir": path(layout.proxy_state(&w.namespace, &w.name)),
                },
                "inbound": inbound,
                "outbound": outbound,
            }
        });
        serde_norway::to_string(&config).context("rendering a ProxyConfig")
    }
}

/// `arg` with `$NAME` and `${NAME}` replaced by the values of `env` (the workload's own
/// environment: ports and upstreams); other `$` text is left as written.
pub fn expand(arg: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let (name, after) = if let Some(braced) = tail.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", tail),
            }
        } else {
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            (&tail[..end], &tail[end..])
        };
        match lookup(name).filter(|_| !name.is_empty()) {
            Some(value) => {
                out.push_str(value);
                rest = after;
            }
            None => {
                out.push('$');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `name.namespace` for a Service named with or without its namespace.
fn qualified(service: &str, namespace: &str) -> String {
    if service.contains('.') {
        service.to_owned()
    } else {
        format!("{service}.{namespace}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposed(addr: &str) -> WorkloadPlan {
        WorkloadPlan {
            name: "frontend".to_owned(),
            namespace: "shop".to_owned(),
            labels: Default::default(),
            service_account: "frontend".to_owned(),
            ports: vec![(Some("http".to_owned()), 8080), (None, 9090)],
            upstreams: Vec::new(),
            run: None,
            expose: Some(addr.parse().unwrap()),
        }
    }

    #[test]
    fn an_exposed_workload_gets_its_fixed_inbound_port_on_the_first_port_only() {
        let port = free_port().unwrap();
        let wiring = Wiring::allocate(&exposed(&format!("127.0.0.1:{port}"))).unwrap();
        assert_eq!(wiring.ports[0].inbound, port);
        // Port 0 (`up --no-expose`): a free port.
        let wiring = Wiring::allocate(&exposed("127.0.0.1:0")).unwrap();
        assert_ne!(wiring.ports[0].inbound, 0);
    }

    #[test]
    fn a_taken_expose_port_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = Wiring::allocate(&exposed(&addr.to_string())).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("shop/frontend"), "{text}");
        assert!(text.contains(EXPOSE_ANNOTATION), "{text}");
        assert!(text.contains("--no-expose"), "{text}");
    }

    #[test]
    fn expands_known_variables_only() {
        let env = vec![("PORT".to_owned(), "4000".to_owned())];
        assert_eq!(expand("127.0.0.1:$PORT", &env), "127.0.0.1:4000");
        assert_eq!(expand("${PORT}x", &env), "4000x");
        assert_eq!(expand("$HOME/$PORT", &env), "$HOME/4000");
        assert_eq!(expand("cost $5", &env), "cost $5");
    }
}
