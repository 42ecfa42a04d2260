//! Istio security kinds: `AuthorizationPolicy` and `PeerAuthentication`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::meta::ObjectMeta;
use crate::selector::WorkloadSelector;

/// An Istio AuthorizationPolicy (`security.istio.io/v1` or `v1beta1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// `security.istio.io/v1` or `security.istio.io/v1beta1`.
    pub api_version: String,
    /// `AuthorizationPolicy`.
    pub kind: String,
    /// Name, namespace, annotations (`istio.io/dry-run`).
    pub metadata: ObjectMeta,
    /// The policy; an empty spec is an ALLOW policy with no rules (allow nothing).
    #[serde(default)]
    pub spec: AuthorizationPolicySpec,
}

/// `AuthorizationPolicy.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// Workloads the policy applies to; absent means every workload in scope.
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    /// Single target reference (older form of `targetRefs`).
    #[serde(default)]
    pub target_ref: Option<PolicyTargetRef>,
    /// Services (or other objects) the policy applies to.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetRef>,
    /// ALLOW when absent.
    #[serde(default)]
    pub action: Action,
    /// Extension provider for CUSTOM.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// Rules; a request matches the policy when any rule matches.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// What happens when a policy matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Action {
    /// Allow matching requests; deny the rest when any ALLOW policy applies.
    #[default]
    #[serde(rename = "ALLOW")]
    Allow,
    /// Deny matching requests.
    #[serde(rename = "DENY")]
    Deny,
    /// Record matching requests; never changes the decision.
    #[serde(rename = "AUDIT")]
    Audit,
    /// Delegate to an external authorizer (not supported yet).
    #[serde(rename = "CUSTOM")]
    Custom,
}

impl Action {
    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
            Action::Custom => "CUSTOM",
        }
    }
}

/// `spec.provider` of a CUSTOM policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Extension provider name.
    pub name: String,
}

/// A reference to the object a policy attaches to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyTargetRef {
    /// API group (`""` or `core` for Service).
    #[serde(default)]
    pub group: String,
    /// Kind (`Service`).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Must equal the policy's namespace when given.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One rule: sources, operations, conditions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Any entry may match; empty means any source.
    #[serde(default)]
    pub from: Vec<RuleFrom>,
    /// Any entry may match; empty means any operation.
    #[serde(default)]
    pub to: Vec<RuleTo>,
    /// Every condition must match.
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// `rules[].from[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFrom {
    /// The source description.
    #[serde(default)]
    pub source: Source,
}

/// `rules[].to[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTo {
    /// The operation description.
    #[serde(default)]
    pub operation: Operation,
}

/// Who sends the request. All given fields must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// Peer identities (`td/ns/x/sa/y`).
    #[serde(default)]
    pub principals: Vec<String>,
    /// Peer identities that must not match.
    #[serde(default)]
    pub not_principals: Vec<String>,
    /// JWT `iss/sub` (HTTP only).
    #[serde(default)]
    pub request_principals: Vec<String>,
    /// JWT `iss/sub` that must not match (HTTP only).
    #[serde(default)]
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer identity.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Namespaces that must not match.
    #[serde(default)]
    pub not_namespaces: Vec<String>,
    /// Peer IPs or CIDRs.
    #[serde(default)]
    pub ip_blocks: Vec<String>,
    /// Peer IPs or CIDRs that must not match.
    #[serde(default)]
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs or CIDRs.
    #[serde(default)]
    pub remote_ip_blocks: Vec<String>,
    /// Original client IPs or CIDRs that must not match.
    #[serde(default)]
    pub not_remote_ip_blocks: Vec<String>,
}

/// What the request does. All given fields must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Operation {
    /// Host header values (HTTP only).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Host header values that must not match (HTTP only).
    #[serde(default)]
    pub not_hosts: Vec<String>,
    /// Destination (target) ports, as strings.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Ports that must not match.
    #[serde(default)]
    pub not_ports: Vec<String>,
    /// HTTP methods (HTTP only).
    #[serde(default)]
    pub methods: Vec<String>,
    /// HTTP methods that must not match (HTTP only).
    #[serde(default)]
    pub not_methods: Vec<String>,
    /// Request paths (HTTP only).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Request paths that must not match (HTTP only).
    #[serde(default)]
    pub not_paths: Vec<String>,
}

/// A `when` condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// Attribute name, e.g. `request.headers[x-token]`.
    pub key: String,
    /// The attribute must match one of these.
    #[serde(default)]
    pub values: Vec<String>,
    /// The attribute must match none of these.
    #[serde(default)]
    pub not_values: Vec<String>,
}

/// An Istio PeerAuthentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerAuthentication {
    /// `security.istio.io/v1` or `v1beta1`.
    pub api_version: String,
    /// `PeerAuthentication`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Mode and scope.
    #[serde(default)]
    pub spec: PeerAuthenticationSpec,
}

/// `PeerAuthentication.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// Workloads; absent means the whole namespace (or mesh, in the root namespace).
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    /// The mode for all ports.
    #[serde(default)]
    pub mtls: Option<MutualTls>,
    /// Per target port overrides (selector policies only).
    #[serde(default, deserialize_with = "port_keys")]
    pub port_level_mtls: BTreeMap<u16, MutualTls>,
}

/// Reads `portLevelMtls` keys written as numbers (YAML) or as strings (JSON object keys
/// are always strings, and Istio's JSON form writes `"8080"`).
fn port_keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, MutualTls>, D::Error> {
    let raw = BTreeMap::<PortKey, MutualTls>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A port number used as a mapping key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct PortKey(u16);

impl<'de> Deserialize<'de> for PortKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = PortKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (0-65535)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortKey, E> {
                u16::try_from(v)
                    .map(PortKey)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortKey, E> {
                u16::try_from(v)
                    .map(PortKey)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortKey, E> {
                match v.parse::<u16>() {
                    Ok(port) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(PortKey(port)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// `mtls` block.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutualTls {
    /// The mode; UNSET inherits.
    #[serde(default)]
    pub mode: MtlsMode,
}

/// Mutual TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum MtlsMode {
    /// Inherit from the parent scope.
    #[default]
    #[serde(rename = "UNSET")]
    Unset,
    /// Plaintext only.
    #[serde(rename = "DISABLE")]
    Disable,
    /// Both mutual TLS and plaintext.
    #[serde(rename = "PERMISSIVE")]
    Permissive,
    /// Mutual TLS only.
    #[serde(rename = "STRICT")]
    Strict,
}

impl MtlsMode {
    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }
}
