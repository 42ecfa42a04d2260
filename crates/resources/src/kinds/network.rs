//! `networking.k8s.io/v1/NetworkPolicy`.

use serde::Deserialize;

use crate::kinds::core::{PortRef, Protocol};
use crate::meta::ObjectMeta;
use crate::selector::LabelSelector;

/// A Kubernetes NetworkPolicy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// `networking.k8s.io/v1`.
    pub api_version: String,
    /// `NetworkPolicy`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: NetworkPolicySpec,
}

/// `NetworkPolicy.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Pods in the policy's namespace that it applies to; `{}` selects all.
    pub pod_selector: LabelSelector,
    /// Directions the policy isolates; defaulted when absent (see [`NetworkPolicySpec::effective_types`]).
    #[serde(default)]
    pub policy_types: Option<Vec<PolicyType>>,
    /// Allowed incoming connections.
    #[serde(default)]
    pub ingress: Option<Vec<IngressRule>>,
    /// Allowed outgoing connections.
    #[serde(default)]
    pub egress: Option<Vec<EgressRule>>,
}

impl NetworkPolicySpec {
    /// `(ingress, egress)` isolation: `policyTypes` when given, else Ingress always and
    /// Egress when `egress` has at least one rule (the Kubernetes defaulting rule).
    pub fn effective_types(&self) -> (bool, bool) {
        match &self.policy_types {
            Some(types) => (
                types.contains(&PolicyType::Ingress),
                types.contains(&PolicyType::Egress),
            ),
            None => (true, self.egress.as_ref().is_some_and(|e| !e.is_empty())),
        }
    }
}

/// `Ingress` or `Egress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PolicyType {
    /// Incoming connections.
    Ingress,
    /// Outgoing connections.
    Egress,
}

/// One ingress rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressRule {
    /// Allowed sources; absent or empty means every source.
    #[serde(default)]
    pub from: Vec<NetworkPolicyPeer>,
    /// Allowed destination ports; absent or empty means every port.
    #[serde(default)]
    pub ports: Vec<NetworkPolicyPort>,
}

/// One egress rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressRule {
    /// Allowed destinations; absent or empty means every destination.
    #[serde(default)]
    pub to: Vec<NetworkPolicyPeer>,
    /// Allowed destination ports; absent or empty means every port.
    #[serde(default)]
    pub ports: Vec<NetworkPolicyPort>,
}

/// A peer: pods by selector, namespaces by selector, both, or an IP block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyPeer {
    /// Pods (in the policy's namespace, or in the namespaces `namespaceSelector` picks).
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// An address range.
    #[serde(default)]
    pub ip_block: Option<IpBlock>,
}

/// `ipBlock`: a CIDR minus exceptions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpBlock {
    /// The range, e.g. `10.0.0.0/8`.
    pub cidr: String,
    /// Sub-ranges excluded from `cidr`.
    #[serde(default)]
    pub except: Vec<String>,
}

/// A port or port range.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyPort {
    /// TCP when absent.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Number or named port; absent means every port of the protocol.
    #[serde(default)]
    pub port: Option<PortRef>,
    /// Last port of a range starting at the numeric `port`.
    #[serde(default)]
    pub end_port: Option<u16>,
}
