//! Core Kubernetes kinds (Namespace, Pod, Service) and Bulkhead's own Workload.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::meta::{Labels, ObjectMeta};

/// Transport protocol of a port, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Default)]
pub enum Protocol {
    /// TCP, the default everywhere.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling (`TCP`, `UDP`, `SCTP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port given by number or by name (Kubernetes `IntOrString`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    /// A port number, 1–65535.
    Number(u16),
    /// A named container port.
    Name(String),
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535) or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRef, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(PortRef::Number(p)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRef, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRef, E> {
                if v.is_empty() {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                Ok(PortRef::Name(v.to_owned()))
            }
        }
        d.deserialize_any(PortVisitor)
    }
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// `v1/Namespace`.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Namespace {
    /// `v1`.
    pub api_version: String,
    /// `Namespace`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<IgnoredAny>,
    #[serde(default)]
    status: Option<IgnoredAny>,
}

impl Namespace {
    /// A namespace created implicitly because something referenced it.
    pub fn implicit(name: &str) -> Self {
        let mut metadata = ObjectMeta::named(name, None);
        metadata
            .labels
            .insert(crate::NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
        Namespace {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            metadata,
            spec: None,
            status: None,
        }
    }
}

/// `v1/Pod`: the fields Bulkhead uses; other Kubernetes pod fields are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pod {
    /// `v1`.
    pub api_version: String,
    /// `Pod`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Service account and containers.
    #[serde(default)]
    pub spec: PodSpec,
    /// The pod IP.
    #[serde(default)]
    pub status: PodStatus,
}

/// `Pod.spec`.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSpec {
    /// Service account; `default` when absent.
    #[serde(default)]
    pub service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`.
    #[serde(default)]
    pub service_account: Option<String>,
    /// Containers and their ports.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Init containers (their ports count for named-port lookups, as in Kubernetes).
    #[serde(default)]
    pub init_containers: Vec<Container>,
    /// Host-network pods take the node's address.
    #[serde(default)]
    pub host_network: Option<bool>,
    #[serde(default)]
    volumes: Option<IgnoredAny>,
    #[serde(default)]
    node_selector: Option<IgnoredAny>,
    #[serde(default)]
    node_name: Option<IgnoredAny>,
    #[serde(default)]
    affinity: Option<IgnoredAny>,
    #[serde(default)]
    tolerations: Option<IgnoredAny>,
    #[serde(default)]
    restart_policy: Option<IgnoredAny>,
    #[serde(default)]
    termination_grace_period_seconds: Option<IgnoredAny>,
    #[serde(default)]
    dns_policy: Option<IgnoredAny>,
    #[serde(default)]
    dns_config: Option<IgnoredAny>,
    #[serde(default)]
    security_context: Option<IgnoredAny>,
    #[serde(default)]
    image_pull_secrets: Option<IgnoredAny>,
    #[serde(default)]
    priority: Option<IgnoredAny>,
    #[serde(default)]
    priority_class_name: Option<IgnoredAny>,
    #[serde(default)]
    scheduler_name: Option<IgnoredAny>,
    #[serde(default)]
    enable_service_links: Option<IgnoredAny>,
    #[serde(default)]
    preemption_policy: Option<IgnoredAny>,
    #[serde(default)]
    automount_service_account_token: Option<IgnoredAny>,
    #[serde(default)]
    hostname: Option<IgnoredAny>,
    #[serde(default)]
    subdomain: Option<IgnoredAny>,
    #[serde(default)]
    topology_spread_constraints: Option<IgnoredAny>,
    #[serde(default)]
    share_process_namespace: Option<IgnoredAny>,
    #[serde(default)]
    runtime_class_name: Option<IgnoredAny>,
}

/// A container; only its ports matter to policy.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Image (not used by Bulkhead).
    #[serde(default)]
    pub image: Option<String>,
    /// Declared ports; named ports are resolved against these.
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    command: Option<IgnoredAny>,
    #[serde(default)]
    args: Option<IgnoredAny>,
    #[serde(default)]
    env: Option<IgnoredAny>,
    #[serde(default)]
    env_from: Option<IgnoredAny>,
    #[serde(default)]
    resources: Option<IgnoredAny>,
    #[serde(default)]
    volume_mounts: Option<IgnoredAny>,
    #[serde(default)]
    liveness_probe: Option<IgnoredAny>,
    #[serde(default)]
    readiness_probe: Option<IgnoredAny>,
    #[serde(default)]
    startup_probe: Option<IgnoredAny>,
    #[serde(default)]
    image_pull_policy: Option<IgnoredAny>,
    #[serde(default)]
    security_context: Option<IgnoredAny>,
    #[serde(default)]
    working_dir: Option<IgnoredAny>,
    #[serde(default)]
    lifecycle: Option<IgnoredAny>,
    #[serde(default)]
    termination_message_path: Option<IgnoredAny>,
    #[serde(default)]
    termination_message_policy: Option<IgnoredAny>,
    #[serde(default)]
    stdin: Option<IgnoredAny>,
    #[serde(default)]
    tty: Option<IgnoredAny>,
    #[serde(default)]
    restart_policy: Option<IgnoredAny>,
}

/// A container port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPort {
    /// Name that policies may refer to.
    #[serde(default)]
    pub name: Option<String>,
    /// Port number.
    pub container_port: u16,
    /// Protocol, TCP by default.
    #[serde(default)]
    pub protocol: Protocol,
    /// Host port (not used).
    #[serde(default)]
    pub host_port: Option<u16>,
    /// Host IP (not used).
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

/// `Pod.status`; only the IPs matter.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodStatus {
    /// Primary pod IP.
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<IpAddr>,
    /// All pod IPs (dual stack).
    #[serde(default, rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
    #[serde(default)]
    phase: Option<IgnoredAny>,
    #[serde(default)]
    conditions: Option<IgnoredAny>,
    #[serde(default, rename = "hostIP")]
    host_ip: Option<IgnoredAny>,
    #[serde(default, rename = "hostIPs")]
    host_ips: Option<IgnoredAny>,
    #[serde(default)]
    start_time: Option<IgnoredAny>,
    #[serde(default)]
    container_statuses: Option<IgnoredAny>,
    #[serde(default)]
    qos_class: Option<IgnoredAny>,
}

/// One entry of `status.podIPs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodIp {
    /// The address.
    pub ip: IpAddr,
}

/// `bulkhead.dev/v1alpha1/Workload`: a workload outside Kubernetes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// `bulkhead.dev/v1alpha1`.
    pub api_version: String,
    /// `Workload`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// Identity, address, ports, upstreams, run command.
    #[serde(default)]
    pub spec: WorkloadSpec,
}

/// `Workload.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Service account; `default` when absent.
    #[serde(default)]
    pub service_account: Option<String>,
    /// The workload's IP address, when it has a fixed one.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// Ports the workload serves.
    #[serde(default)]
    pub ports: Vec<WorkloadPort>,
    /// Services this workload calls.
    #[serde(default)]
    pub upstreams: Vec<WorkloadUpstream>,
    /// How `bulkhead up` starts the workload.
    #[serde(default)]
    pub run: Option<RunSpec>,
}

/// A port a Workload serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadPort {
    /// Name that policies may refer to.
    #[serde(default)]
    pub name: Option<String>,
    /// Port number.
    pub port: u16,
    /// Protocol, TCP by default.
    #[serde(default)]
    pub protocol: Protocol,
    /// Application protocol (`http`, `http2`, `grpc`, `tcp`).
    #[serde(default)]
    pub app_protocol: Option<String>,
}

/// A service a Workload calls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadUpstream {
    /// `name.namespace` of the Service.
    pub service: String,
    /// Service port.
    pub port: u16,
}

/// The command `bulkhead up` runs for a Workload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `v1/Service`.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    /// `v1`.
    pub api_version: String,
    /// `Service`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Selector and ports.
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default)]
    status: Option<IgnoredAny>,
}

/// `Service.spec`.
#[allow(
    dead_code,
    reason = "accepts fields Kubernetes writes so its manifests load unchanged; Bulkhead never reads them"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Pods (and Workloads) whose labels carry all of these are the Service's endpoints.
    #[serde(default)]
    pub selector: Labels,
    /// Service ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Service type (not used).
    #[serde(default, rename = "type")]
    pub service_type: Option<String>,
    #[serde(default, rename = "clusterIP")]
    cluster_ip: Option<IgnoredAny>,
    #[serde(default, rename = "clusterIPs")]
    cluster_ips: Option<IgnoredAny>,
    #[serde(default)]
    session_affinity: Option<IgnoredAny>,
    #[serde(default)]
    ip_families: Option<IgnoredAny>,
    #[serde(default)]
    ip_family_policy: Option<IgnoredAny>,
    #[serde(default)]
    internal_traffic_policy: Option<IgnoredAny>,
    #[serde(default)]
    external_traffic_policy: Option<IgnoredAny>,
}

/// A Service port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name.
    #[serde(default)]
    pub name: Option<String>,
    /// The Service's port.
    pub port: u16,
    /// The pod port behind it (number or container port name); `port` when absent.
    #[serde(default)]
    pub target_port: Option<PortRef>,
    /// Protocol, TCP by default.
    #[serde(default)]
    pub protocol: Protocol,
    /// `http`, `http2`, `grpc`, `tcp`…
    #[serde(default)]
    pub app_protocol: Option<String>,
    /// Node port (not used).
    #[serde(default)]
    pub node_port: Option<u16>,
}
