//! Semantic validation of single resources: the Kubernetes and Istio rules that the schema
//! alone cannot express (ranges, mutually exclusive fields, address and path syntax).
//!
//! Address and path syntax is checked with the same parsers the policy engine compiles
//! with (`bulkhead-matchers`), so whatever loads also compiles.

mod authz;
mod network;
#[cfg(test)]
mod tests;
mod traffic;
#[cfg(test)]
mod traffic_tests;
mod waf;
#[cfg(test)]
mod waf_tests;

pub use traffic::{MAX_BUFFER_BYTES, traffic_policy_spec};
pub use waf::{MAX_EXCLUSION_ENTRIES, MAX_EXCLUSIONS, waf_spec};

use crate::field::{FieldError, FieldPath};
use crate::kinds::core::{Container, PortRef};
use crate::meta::Labels;
use crate::selector::{LabelSelector, Operator, WorkloadSelector};
use crate::{NAMESPACE_NAME_LABEL, Namespace, PeerAuthentication, Resource, Service, Workload};

/// Checks one resource; returns every problem found (empty when the resource is valid).
/// Paths are relative to the resource's root (`spec.ingress[0].ports[1].endPort`).
pub fn validate(resource: &Resource) -> Vec<FieldError> {
    let mut v = Problems::default();
    metadata(&mut v, resource);
    let spec = FieldPath::root().key("spec");
    match resource {
        Resource::Namespace(ns) => namespace(&mut v, ns),
        Resource::Pod(pod) => {
            containers(&mut v, &pod.spec.containers, &spec.key("containers"));
            containers(
                &mut v,
                &pod.spec.init_containers,
                &spec.key("initContainers"),
            );
        }
        Resource::Workload(w) => workload(&mut v, w, &spec),
        Resource::Service(s) => service(&mut v, s, &spec),
        Resource::NetworkPolicy(np) => network::validate(&mut v, np, &spec),
        Resource::AuthorizationPolicy(ap) => authz::validate(&mut v, ap),
        Resource::PeerAuthentication(pa) => peer_authentication(&mut v, pa, &spec),
        Resource::TrafficPolicy(tp) => traffic::validate(&mut v, tp, &spec),
        Resource::WebApplicationFirewall(w) => waf::validate(&mut v, w, &spec),
    }
    v.0
}

/// The problems found so far.
#[derive(Debug, Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, path: FieldPath, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }
}

const PORT_RANGE: &str = "port numbers must be between 1 and 65535";

fn metadata(v: &mut Problems, resource: &Resource) {
    let meta = resource.metadata();
    let at = FieldPath::root().key("metadata");
    if meta.name.is_empty() {
        v.add(at.key("name"), "must not be empty");
    }
    match (&meta.namespace, resource) {
        (Some(_), Resource::Namespace(_)) => v.add(
            at.key("namespace"),
            "a Namespace is cluster-scoped; remove metadata.namespace",
        ),
        (Some(ns), _) if ns.is_empty() => v.add(at.key("namespace"), "must not be empty"),
        _ => {}
    }
    label_keys(v, &meta.labels, &at.key("labels"));
}

fn label_keys(v: &mut Problems, labels: &Labels, at: &FieldPath) {
    if labels.contains_key("") {
        v.add(at.clone(), "label keys must not be empty");
    }
}

fn namespace(v: &mut Problems, ns: &Namespace) {
    let name = &ns.metadata.name;
    let label = ns.metadata.labels.get(NAMESPACE_NAME_LABEL);
    if let Some(value) = label.filter(|value| *value != name) {
        let at = FieldPath::root().key("metadata").key("labels");
        v.add(
            at.key(NAMESPACE_NAME_LABEL),
            format!(
                "must equal the namespace's name `{name}`, found `{value}` (Kubernetes sets this \
                 label, and namespace selectors rely on it)"
            ),
        );
    }
}

/// A Kubernetes `LabelSelector`: non-empty keys, values only where the operator takes them.
fn label_selector(v: &mut Problems, selector: &LabelSelector, at: &FieldPath) {
    label_keys(v, &selector.match_labels, &at.key("matchLabels"));
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let at = at.key("matchExpressions").index(i);
        if req.key.is_empty() {
            v.add(at.key("key"), "label keys must not be empty");
        }
        let name = match req.operator {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        };
        let takes_values = matches!(req.operator, Operator::In | Operator::NotIn);
        if takes_values && req.values.is_empty() {
            v.add(
                at.key("values"),
                format!("operator {name} requires at least one value"),
            );
        }
        if !takes_values && !req.values.is_empty() {
            v.add(
                at.key("values"),
                format!("operator {name} takes no values; remove values"),
            );
        }
    }
}

fn workload_selector(v: &mut Problems, selector: &WorkloadSelector, at: &FieldPath) {
    label_keys(v, &selector.match_labels, &at.key("matchLabels"));
}

fn port_number(v: &mut Problems, port: u16, at: FieldPath) {
    if port == 0 {
        v.add(at, PORT_RANGE);
    }
}

/// Kubernetes' IANA_SVC_NAME rule for named ports.
fn port_name(v: &mut Problems, name: &str, at: FieldPath) {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let valid = !name.is_empty()
        && name.len() <= 15
        && chars_ok
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        v.add(
            at,
            format!(
                "`{name}` is not a valid port name; expected at most 15 lowercase letters, digits \
                 and '-', with at least one letter and no leading, trailing or doubled '-'"
            ),
        );
    }
}

fn port_ref(v: &mut Problems, port: &PortRef, at: FieldPath) {
    match port {
        PortRef::Number(n) => port_number(v, *n, at),
        PortRef::Name(name) => port_name(v, name, at),
    }
}

fn containers(v: &mut Problems, containers: &[Container], at: &FieldPath) {
    for (i, container) in containers.iter().enumerate() {
        for (j, port) in container.ports.iter().enumerate() {
            let at = at.index(i).key("ports").index(j);
            port_number(v, port.container_port, at.key("containerPort"));
            if let Some(name) = &port.name {
                port_name(v, name, at.key("name"));
            }
        }
    }
}

fn workload(v: &mut Problems, w: &Workload, spec: &FieldPath) {
    for (i, port) in w.spec.ports.iter().enumerate() {
        let at = spec.key("ports").index(i);
        port_number(v, port.port, at.key("port"));
        if let Some(name) = &port.name {
            port_name(v, name, at.key("name"));
        }
    }
    for (i, upstream) in w.spec.upstreams.iter().enumerate() {
        port_number(v, upstream.port, spec.key("upstreams").index(i).key("port"));
    }
}

fn service(v: &mut Problems, s: &Service, spec: &FieldPath) {
    label_keys(v, &s.spec.selector, &spec.key("selector"));
    for (i, port) in s.spec.ports.iter().enumerate() {
        let at = spec.key("ports").index(i);
        port_number(v, port.port, at.key("port"));
        if let Some(target) = &port.target_port {
            port_ref(v, target, at.key("targetPort"));
        }
    }
}

fn peer_authentication(v: &mut Problems, pa: &PeerAuthentication, spec: &FieldPath) {
    if let Some(selector) = &pa.spec.selector {
        workload_selector(v, selector, &spec.key("selector"));
    }
    let at = spec.key("portLevelMtls");
    let has_selector = pa
        .spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    if !pa.spec.port_level_mtls.is_empty() && !has_selector {
        v.add(
            at.clone(),
            "portLevelMtls requires a selector with matchLabels (Istio rejects port-level mTLS \
             on namespace-wide and mesh-wide policies)",
        );
    }
    for port in pa.spec.port_level_mtls.keys() {
        port_number(v, *port, at.key(&port.to_string()));
    }
}
