//! Bulkhead's resource model: typed Kubernetes, Istio and Bulkhead resources, and the
//! strict loader that turns YAML/JSON files into them.
//!
//! Everything that decides traffic (the policy engine, the sidecar, the control plane)
//! works on these typed values; nothing downstream parses text again.

pub mod duration;
pub mod error;
pub mod field;
pub mod kinds;
pub mod load;
pub mod meta;
pub mod selector;
pub mod validate;
pub mod waf;

#[cfg(test)]
mod testutil;

pub use error::{Diagnostic, DiagnosticKind, Diagnostics, LoadError};
pub use field::{FieldError, FieldPath};
pub use kinds::core::{
    Container, ContainerPort, Namespace, Pod, PodSpec, PodStatus, PortRef, Protocol, Service,
    ServicePort, ServiceSpec, Workload, WorkloadPort, WorkloadSpec,
};
pub use kinds::istio::{
    Action, AuthorizationPolicy, AuthorizationPolicySpec, Condition, MtlsMode, MutualTls,
    Operation, PeerAuthentication, PeerAuthenticationSpec, PolicyTargetRef, Rule, RuleFrom, RuleTo,
    Source,
};
pub use kinds::network::{
    EgressRule, IngressRule, IpBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec, PolicyType,
};
pub use kinds::traffic::{
    BackoffSpec, BudgetSpec, ConnectionPoolSpec, GrpcStatusSpec, LoadBalancerSpec,
    OutlierDetectionSpec, RetriesSpec, RetryOnSpec, ServiceTrafficPolicySpec, TimeoutsSpec,
    TrafficPolicy, TrafficPolicySpec,
};
pub use kinds::waf::{
    AnomalyThresholdsSpec, RuleIdSpec, WafExclusionSpec, WafMode, WafSpec, WebApplicationFirewall,
    WebApplicationFirewallSpec,
};
pub use load::{Format, Loader, load_paths};
pub use meta::{Labels, ObjectMeta};
pub use selector::{LabelSelector, Operator, Requirement, WorkloadSelector};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The annotation that makes an AuthorizationPolicy report-only.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// One typed resource.
#[derive(Debug, Clone)]
pub enum Resource {
    /// `v1/Namespace`.
    Namespace(Namespace),
    /// `v1/Pod`.
    Pod(Pod),
    /// `bulkhead.dev/v1alpha1/Workload`.
    Workload(Workload),
    /// `v1/Service`.
    Service(Service),
    /// `networking.k8s.io/v1/NetworkPolicy`.
    NetworkPolicy(NetworkPolicy),
    /// `security.istio.io/v1[beta1]/AuthorizationPolicy`.
    AuthorizationPolicy(AuthorizationPolicy),
    /// `security.istio.io/v1[beta1]/PeerAuthentication`.
    PeerAuthentication(PeerAuthentication),
    /// `bulkhead.dev/v1alpha1/TrafficPolicy`.
    TrafficPolicy(TrafficPolicy),
    /// `bulkhead.dev/v1alpha1/WebApplicationFirewall`.
    WebApplicationFirewall(WebApplicationFirewall),
}

impl Resource {
    /// The resource's kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Namespace(_) => "Namespace",
            Resource::Pod(_) => "Pod",
            Resource::Workload(_) => "Workload",
            Resource::Service(_) => "Service",
            Resource::NetworkPolicy(_) => "NetworkPolicy",
            Resource::AuthorizationPolicy(_) => "AuthorizationPolicy",
            Resource::PeerAuthentication(_) => "PeerAuthentication",
            Resource::TrafficPolicy(_) => "TrafficPolicy",
            Resource::WebApplicationFirewall(_) => "WebApplicationFirewall",
        }
    }

    /// The resource's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Namespace(r) => &r.metadata,
            Resource::Pod(r) => &r.metadata,
            Resource::Workload(r) => &r.metadata,
            Resource::Service(r) => &r.metadata,
            Resource::NetworkPolicy(r) => &r.metadata,
            Resource::AuthorizationPolicy(r) => &r.metadata,
            Resource::PeerAuthentication(r) => &r.metadata,
            Resource::TrafficPolicy(r) => &r.metadata,
            Resource::WebApplicationFirewall(r) => &r.metadata,
        }
    }

    /// `Kind/namespace/name` (`Kind/name` for namespaces), the name used in decisions and errors.
    pub fn display_name(&self) -> String {
        let meta = self.metadata();
        match self {
            Resource::Namespace(_) => format!("Namespace/{}", meta.name),
            _ => format!(
                "{}/{}/{}",
                self.kind(),
                meta.namespace_or_default(),
                meta.name
            ),
        }
    }
}

/// A validated set of resources, grouped by kind, ready for the policy engine.
#[derive(Debug, Clone, Default)]
pub struct ResourceSet {
    /// Declared and implicitly created namespaces.
    pub namespaces: Vec<Namespace>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Workloads outside Kubernetes.
    pub workloads: Vec<Workload>,
    /// Services.
    pub services: Vec<Service>,
    /// NetworkPolicies.
    pub network_policies: Vec<NetworkPolicy>,
    /// AuthorizationPolicies.
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// PeerAuthentications.
    pub peer_authentications: Vec<PeerAuthentication>,
    /// TrafficPolicies (at most one per Service).
    pub traffic_policies: Vec<TrafficPolicy>,
    /// WebApplicationFirewalls (see [`waf::select`] for which one applies to a workload).
    pub web_application_firewalls: Vec<WebApplicationFirewall>,
}

impl ResourceSet {
    /// Adds one resource to its group.
    pub fn push(&mut self, resource: Resource) {
        match resource {
            Resource::Namespace(r) => self.namespaces.push(r),
            Resource::Pod(r) => self.pods.push(r),
            Resource::Workload(r) => self.workloads.push(r),
            Resource::Service(r) => self.services.push(r),
            Resource::NetworkPolicy(r) => self.network_policies.push(r),
            Resource::AuthorizationPolicy(r) => self.authorization_policies.push(r),
            Resource::PeerAuthentication(r) => self.peer_authentications.push(r),
            Resource::TrafficPolicy(r) => self.traffic_policies.push(r),
            Resource::WebApplicationFirewall(r) => self.web_application_firewalls.push(r),
        }
    }

    /// Total number of resources.
    pub fn len(&self) -> usize {
        self.namespaces.len()
            + self.pods.len()
            + self.workloads.len()
            + self.services.len()
            + self.network_policies.len()
            + self.authorization_policies.len()
            + self.peer_authentications.len()
            + self.traffic_policies.len()
            + self.web_application_firewalls.len()
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
