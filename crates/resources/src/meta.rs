//! Object metadata shared by every resource kind.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Labels or annotations: string keys to string values, sorted for stable output.
pub type Labels = BTreeMap<String, String>;

/// `metadata` of a resource, as Kubernetes writes it.
///
/// Server-populated fields (`uid`, `resourceVersion`, …) are accepted so that
/// `kubectl get -o yaml` output loads unchanged, and ignored.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name, unique per kind and namespace.
    pub name: String,
    /// Namespace; `default` when absent for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels that selectors match.
    #[serde(default)]
    pub labels: Labels,
    /// Annotations (`istio.io/dry-run` is the one Bulkhead reads).
    #[serde(default)]
    pub annotations: Labels,
    #[serde(default)]
    uid: Option<IgnoredAny>,
    #[serde(default)]
    resource_version: Option<IgnoredAny>,
    #[serde(default)]
    generation: Option<IgnoredAny>,
    #[serde(default)]
    creation_timestamp: Option<IgnoredAny>,
    #[serde(default)]
    managed_fields: Option<IgnoredAny>,
    #[serde(default)]
    owner_references: Option<IgnoredAny>,
    #[serde(default)]
    finalizers: Option<IgnoredAny>,
    #[serde(default)]
    generate_name: Option<IgnoredAny>,
    #[serde(default)]
    self_link: Option<IgnoredAny>,
}

impl ObjectMeta {
    /// A metadata block with just a name and namespace (used for implicit namespaces and tests).
    pub fn named(name: impl Into<String>, namespace: Option<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace,
            ..ObjectMeta::default()
        }
    }

    /// The namespace, with Kubernetes' `default` when none was written.
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}
