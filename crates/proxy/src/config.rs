//! The standalone `ProxyConfig` file (DESIGN.md §5): the contract outside benchmarks and
//! scripts start sidecars with. Field names here must not drift.

use std::net::SocketAddr;
use std::path::PathBuf;

use bulkhead_resources::ObjectMeta;
use serde::Deserialize;

/// `bulkhead.dev/v1alpha1/ProxyConfig`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// `bulkhead.dev/v1alpha1`.
    pub api_version: String,
    /// `ProxyConfig`.
    pub kind: String,
    /// The workload: name, namespace and labels (labels are what policy selectors match).
    pub metadata: ObjectMeta,
    /// Everything else.
    pub spec: ProxySpec,
}

/// `ProxyConfig.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxySpec {
    /// The workload's service account; with the namespace it makes the SPIFFE ID.
    pub service_account: String,
    /// Certificate, key and trust bundle files.
    pub identity: IdentityFiles,
    /// The loopback admin listener.
    #[serde(default)]
    pub admin: AdminSpec,
    /// Access log settings.
    #[serde(default)]
    pub access_log: AccessLogSpec,
    /// Ports peers connect to.
    #[serde(default)]
    pub inbound: Vec<InboundSpec>,
    /// Upstreams the app dials.
    #[serde(default)]
    pub outbound: Vec<OutboundSpec>,
    /// Resource files or directories holding the NetworkPolicies, AuthorizationPolicies and
    /// PeerAuthentications that apply (and any Namespaces, Pods or Workloads they select).
    #[serde(default)]
    pub policies: Vec<PathBuf>,
}

/// `spec.identity`: PEM files, relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityFiles {
    /// The SVID chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8).
    pub key_file: PathBuf,
    /// The trust bundle (roots).
    pub bundle_file: PathBuf,
}

/// `spec.admin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminSpec {
    /// Loopback address of the admin listener.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminSpec {
    fn default() -> Self {
        AdminSpec {
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 15000))
}

/// `spec.accessLog`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogSpec {
    /// Whether to write one JSON line per request and connection.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// File to append to; standard output when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl Default for AccessLogSpec {
    fn default() -> Self {
        AccessLogSpec {
            enabled: true,
            path: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// How traffic on a port is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// Detect HTTP/1.1, HTTP/2 or opaque TCP from the first bytes, with a bounded wait.
    #[default]
    Auto,
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (prior knowledge).
    Http2,
    /// gRPC (HTTP/2).
    Grpc,
    /// Opaque TCP after detection found no HTTP.
    Tcp,
    /// Opaque TCP without waiting for the client to speak (server-speaks-first protocols
    /// such as MySQL or SMTP).
    Opaque,
}

/// One `spec.inbound[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InboundSpec {
    /// Where peers connect (mTLS).
    pub listen: SocketAddr,
    /// The workload port that policies refer to.
    pub port: u16,
    /// The app's local address.
    pub forward_to: SocketAddr,
    /// The app's protocol.
    #[serde(default)]
    pub protocol: AppProtocol,
}

/// One `spec.outbound[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundSpec {
    /// Where the app connects (plaintext, loopback).
    pub listen: SocketAddr,
    /// `name.namespace` of the service.
    pub service: String,
    /// The protocol the app speaks.
    #[serde(default)]
    pub protocol: AppProtocol,
    /// The service's endpoints: peer sidecars' inbound addresses and their identities.
    pub endpoints: Vec<EndpointSpec>,
}

/// One upstream endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointSpec {
    /// The peer sidecar's inbound address.
    pub address: SocketAddr,
    /// The SPIFFE ID the peer must present.
    pub identity: String,
}
