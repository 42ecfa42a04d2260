//! The generated mesh: namespaces of Workloads with a Service per five of them, a few
//! AuthorizationPolicies and a NetworkPolicy per namespace, and mesh-wide policies in the
//! root namespace; the changes the push measurement applies; and which workload each
//! simulated proxy runs as.
//!
//! Proxy `i` runs as workload `i / N` of namespace `i % N` (N namespaces), so every
//! namespace has the same number of proxies (20 with the defaults), on the workloads of
//! its first few apps.

use anyhow::{Result, ensure};
use serde_json::{Value, json};

/// The root namespace: its policies apply to every workload.
pub(crate) const ROOT_NAMESPACE: &str = "bulkhead-system";
/// The trust domain the control plane uses by default.
pub(crate) const TRUST_DOMAIN: &str = "cluster.local";
/// Workloads per app (and per Service).
const PER_APP: usize = 5;
/// The workload port every Service targets.
pub(crate) const WORKLOAD_PORT: u16 = 8080;
/// The Service port.
pub(crate) const SERVICE_PORT: u16 = 80;
/// Teams the namespaces belong to (NetworkPolicies allow traffic within a team).
const TEAMS: usize = 5;

/// The shape of the mesh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) namespaces: usize,
    pub(crate) workloads_per_namespace: usize,
    pub(crate) proxies: usize,
}

/// Who a simulated proxy is and what it subscribes to.
#[derive(Debug, Clone)]
pub(crate) struct ProxySpec {
    pub(crate) namespace: String,
    pub(crate) service_account: String,
    pub(crate) workload: String,
    /// `name.namespace` of the Services it dials.
    pub(crate) upstreams: Vec<String>,
    /// Its (registered, never listened on) inbound address.
    pub(crate) inbound: String,
}

pub(crate) fn namespace(n: usize) -> String {
    format!("ns-{n:02}")
}

fn workload(j: usize) -> String {
    format!("wl-{j:03}")
}

fn app(k: usize) -> String {
    format!("svc-{k:02}")
}

fn service_account(k: usize) -> String {
    format!("sa-{k:02}")
}

fn principal(ns: &str, sa: &str) -> String {
    format!("{TRUST_DOMAIN}/ns/{ns}/sa/{sa}")
}

impl Layout {
    /// Checks that the proxies fit the workloads and every namespace has whole apps.
    pub(crate) fn check(&self) -> Result<()> {
        ensure!(self.namespaces > 0, "--namespaces must be at least 1");
        ensure!(
            self.workloads_per_namespace >= 3 * PER_APP
                && self.workloads_per_namespace.is_multiple_of(PER_APP),
            "--workloads-per-namespace must be a multiple of {PER_APP}, at least {}",
            3 * PER_APP
        );
        ensure!(
            self.proxies > 0 && self.proxies <= self.workloads(),
            "--proxies must be between 1 and the number of workloads ({})",
            self.workloads()
        );
        Ok(())
    }

    /// Workloads in the mesh.
    pub(crate) fn workloads(&self) -> usize {
        self.namespaces * self.workloads_per_namespace
    }

    /// Apps (Services) per namespace.
    fn apps(&self) -> usize {
        self.workloads_per_namespace / PER_APP
    }

    /// Apps per namespace that have proxies (upstreams are chosen among them, so that
    /// they have endpoints), at least 3 so that two upstreams differ from the proxy's own.
    fn proxied_apps(&self) -> usize {
        self.proxies
            .div_ceil(self.namespaces)
            .div_ceil(PER_APP)
            .clamp(3, self.apps())
    }

    /// The proxy `i`.
    pub(crate) fn proxy(&self, i: usize) -> ProxySpec {
        let ns = namespace(i % self.namespaces);
        let j = i / self.namespaces;
        let k = j / PER_APP;
        let a = self.proxied_apps();
        let upstreams = [(k + 1) % a, (k + 2) % a]
            .iter()
            .map(|&u| format!("{}.{ns}", app(u)))
            .collect();
        ProxySpec {
            service_account: service_account(k),
            workload: workload(j),
            upstreams,
            inbound: format!("127.0.0.1:{}", 20_000 + i),
            namespace: ns,
        }
    }

    /// The proxies of namespace `n`.
    pub(crate) fn proxies_of(&self, n: usize) -> Vec<usize> {
        (0..self.proxies)
            .filter(|i| i % self.namespaces == n)
            .collect()
    }

    /// Every identity the proxies use and how many proxies use it, for the join tokens.
    pub(crate) fn identities(&self) -> Vec<(String, String, u32)> {
        let mut ids: Vec<(String, String, u32)> = Vec::new();
        for i in 0..self.proxies {
            let p = self.proxy(i);
            match ids
                .iter_mut()
                .find(|(ns, sa, _)| *ns == p.namespace && *sa == p.service_account)
            {
                Some(entry) => entry.2 += 1,
                None => ids.push((p.namespace, p.service_account, 1)),
            }
        }
        ids
    }

    /// The whole mesh as YAML batches for `POST /api/v1/apply`: first the Namespaces and
    /// the root namespace's policies, then `per_batch` namespaces' objects at a time.
    /// Returns (YAML, number of objects) per batch.
    pub(crate) fn batches(&self, per_batch: usize) -> Result<Vec<(String, usize)>> {
        let mut first: Vec<Value> = (0..self.namespaces).map(namespace_object).collect();
        first.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ROOT_NAMESPACE}}));
        first.push(
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": ROOT_NAMESPACE},
            "spec": {"mtls": {"mode": "STRICT"}}}),
        );
        first.push(mesh_deny(0));
        let mut batches = vec![yaml(&first)?];
        let all: Vec<usize> = (0..self.namespaces).collect();
        for chunk in all.chunks(per_batch.max(1)) {
            let objects: Vec<Value> = chunk.iter().flat_map(|&n| self.objects(n)).collect();
            batches.push(yaml(&objects)?);
        }
        Ok(batches)
    }

    /// Namespace `n`'s Workloads, Services and policies.
    fn objects(&self, n: usize) -> Vec<Value> {
        let ns = namespace(n);
        let mut out = Vec::with_capacity(self.workloads_per_namespace + self.apps() + 4);
        for j in 0..self.workloads_per_namespace {
            out.push(
                json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
                "metadata": {"name": workload(j), "namespace": ns,
                    "labels": {"app": app(j / PER_APP), "version": format!("v{}", j % 2 + 1)}},
                "spec": {"serviceAccount": service_account(j / PER_APP),
                    "ports": [{"name": "http", "port": WORKLOAD_PORT, "appProtocol": "http"}]}}),
            );
        }
        for k in 0..self.apps() {
            out.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": app(k), "namespace": ns},
                "spec": {"selector": {"app": app(k)},
                    "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}]}}));
        }
        let peers: Vec<String> = (1..=2)
            .map(|d| {
                principal(
                    &namespace((n + d) % self.namespaces),
                    &service_account(d - 1),
                )
            })
            .collect();
        out.push(
            json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-peers", "namespace": ns},
            "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": peers}}],
                "to": [{"operation": {"methods": ["GET", "POST"]}}]}]}}),
        );
        out.push(
            json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-same-namespace", "namespace": ns},
            "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [ns]}}]}]}}),
        );
        out.push(namespace_deny(n, 0));
        out.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-team", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": team(n)}}}],
                    "ports": [{"protocol": "TCP", "port": WORKLOAD_PORT}]}]}}),
        );
        out
    }
}

fn team(n: usize) -> String {
    format!("team-{}", n % TEAMS)
}

fn namespace_object(n: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace(n), "labels": {"team": team(n)}}})
}

/// The mesh-wide DENY in the root namespace; `round` changes its path, so that every
/// proxy's snapshot changes.
fn mesh_deny(round: usize) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "mesh-deny", "namespace": ROOT_NAMESPACE},
        "spec": {"action": "DENY",
            "rules": [{"to": [{"operation": {"paths": [format!("/blocked/{round}")]}}]}]}})
}

/// Namespace `n`'s DENY on admin paths; `round` changes one path.
fn namespace_deny(n: usize, round: usize) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-admin", "namespace": namespace(n)},
        "spec": {"action": "DENY",
            "rules": [{"to": [{"operation": {"paths": ["/admin/*", format!("/internal/{round}")]}}]}]}})
}

/// The mesh-wide change of round `round` (≥ 1), as YAML.
pub(crate) fn mesh_change(round: usize) -> Result<String> {
    Ok(yaml(&[mesh_deny(round)])?.0)
}

/// The change of round `round` (≥ 1) to namespace `n`, as YAML.
pub(crate) fn namespace_change(n: usize, round: usize) -> Result<String> {
    Ok(yaml(&[namespace_deny(n, round)])?.0)
}

/// Objects as a multi-document YAML stream.
fn yaml(objects: &[Value]) -> Result<(String, usize)> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(object)?);
    }
    Ok((out, objects.len()))
}
