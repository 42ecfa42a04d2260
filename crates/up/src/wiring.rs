//! Local wiring of one workload: the ports it and its sidecar get, the sidecar's
//! ProxyConfig, and the workload's environment.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::Layout;
use crate::plan::{WorkloadPlan, env_name, service_name};

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

/// A port nothing listens on right now (the kernel's choice, released at once).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("allocating a loopback port")?;
    Ok(listener.local_addr()?.port())
}

impl Wiring {
    /// Allocates every port `w` needs.
    pub fn allocate(w: &WorkloadPlan) -> Result<Wiring> {
        let mut ports = Vec::new();
        for (name, declared) in &w.ports {
            ports.push(PortWiring {
                name: name.clone(),
                declared: *declared,
                app: free_port()?,
                inbound: free_port()?,
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

    #[test]
    fn expands_known_variables_only() {
        let env = vec![("PORT".to_owned(), "4000".to_owned())];
        assert_eq!(expand("127.0.0.1:$PORT", &env), "127.0.0.1:4000");
        assert_eq!(expand("${PORT}x", &env), "4000x");
        assert_eq!(expand("$HOME/$PORT", &env), "$HOME/4000");
        assert_eq!(expand("cost $5", &env), "cost $5");
    }
}
