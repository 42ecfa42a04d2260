//! The standalone `ProxyConfig` file (DESIGN.md §5): the contract outside benchmarks and
//! scripts start sidecars with. Field names here must not drift.
//!
//! With `spec.controlPlane` the same file carries only the local wiring (metadata,
//! serviceAccount, admin, accessLog, inbound and outbound listeners); the control plane
//! supplies the certificate, the policies and the upstream endpoints
//! (docs/control-plane.md).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use bulkhead_resources::{ObjectMeta, TrafficPolicySpec, WafSpec};
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
    /// Certificate, key and trust bundle files; required without `controlPlane`, forbidden
    /// with it (the control plane issues the certificate).
    #[serde(default)]
    pub identity: Option<IdentityFiles>,
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
    /// The control plane managing this proxy; absent in standalone mode.
    #[serde(default)]
    pub control_plane: Option<ControlPlaneSpec>,
    /// The web application firewall in front of the inbound HTTP ports (docs/waf.md).
    /// Standalone mode only: under `controlPlane` the WebApplicationFirewall resource that
    /// selects the workload applies. Without it, such a resource in `policies` applies.
    #[serde(default)]
    pub waf: Option<WafSpec>,
}

/// `spec.controlPlane`: where the control plane is and how to join it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneSpec {
    /// `host:port` of the control plane's API (`[v6]:port` for IPv6 addresses); required
    /// (in the file or with `--control-plane`).
    #[serde(default)]
    pub address: String,
    /// The control plane API's CA certificate (PEM), relative to the config file; required
    /// (in the file or with `--control-plane-ca`).
    #[serde(default)]
    pub ca_file: PathBuf,
    /// The join token (`bhj_...`) that buys the first certificate.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the join token, relative to the config file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The mesh's trust domain (`cluster.local` by default).
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Where the last good snapshot, certificate, key and bundle are kept, so that a
    /// restarted proxy can serve while the control plane is unreachable.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

impl ControlPlaneSpec {
    /// A section holding only an address, as `--control-plane` creates it.
    pub fn at(address: impl Into<String>) -> ControlPlaneSpec {
        ControlPlaneSpec {
            address: address.into(),
            ca_file: PathBuf::new(),
            token: None,
            token_file: None,
            trust_domain: default_trust_domain(),
            state_dir: None,
        }
    }
}

// Written by hand so that the join token never reaches a log line.
impl fmt::Debug for ControlPlaneSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlaneSpec")
            .field("address", &self.address)
            .field("ca_file", &self.ca_file)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .field("trust_domain", &self.trust_domain)
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

fn default_trust_domain() -> String {
    "cluster.local".to_owned()
}

/// Command-line values that fill or replace `spec.controlPlane` (`bulkhead proxy
/// --control-plane ADDR --control-plane-ca FILE --token T`).
#[derive(Clone, Default)]
pub struct ControlPlaneOverrides {
    /// Replaces `address`; creates the section when the file has none.
    pub address: Option<String>,
    /// Replaces `caFile`; give an absolute path (relative ones resolve against the config
    /// file's directory).
    pub ca_file: Option<PathBuf>,
    /// Replaces `token` (and drops `tokenFile`).
    pub token: Option<String>,
}

impl ControlPlaneOverrides {
    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.address.is_none() && self.ca_file.is_none() && self.token.is_none()
    }

    /// Writes the values into `cfg`. Without an address, a file without `controlPlane`
    /// stays in standalone mode (so `BULKHEAD_JOIN_TOKEN` in the environment changes
    /// nothing there).
    pub fn apply(&self, cfg: &mut ProxyConfig) {
        let section = match (&mut cfg.spec.control_plane, &self.address) {
            (Some(section), _) => section,
            (None, Some(address)) => cfg
                .spec
                .control_plane
                .insert(ControlPlaneSpec::at(address.clone())),
            (None, None) => return,
        };
        if let Some(address) = &self.address {
            section.address.clone_from(address);
        }
        if let Some(ca_file) = &self.ca_file {
            section.ca_file.clone_from(ca_file);
        }
        if let Some(token) = &self.token {
            section.token = Some(token.clone());
            section.token_file = None;
        }
    }
}

impl fmt::Debug for ControlPlaneOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlaneOverrides")
            .field("address", &self.address)
            .field("ca_file", &self.ca_file)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
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

impl AppProtocol {
    /// The `spec.*.protocol` spelling (also what `Subscribe.inbound[].protocol` carries).
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Auto => "auto",
            AppProtocol::Http => "http",
            AppProtocol::Http2 => "http2",
            AppProtocol::Grpc => "grpc",
            AppProtocol::Tcp => "tcp",
            AppProtocol::Opaque => "opaque",
        }
    }
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
    /// The address peers are told to dial when it is not `listen` (a port forward or a
    /// relay in front of the sidecar); registered with the control plane instead of
    /// `listen`. Unused in standalone mode.
    #[serde(default)]
    pub advertise: Option<SocketAddr>,
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
    /// The service port asked of the control plane; 0 (the default) when the service has
    /// a single port. Unused in standalone mode.
    #[serde(default)]
    pub port: u16,
    /// The service's endpoints: peer sidecars' inbound addresses and their identities.
    /// Required in standalone mode; forbidden with `controlPlane`, which supplies them.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// Load balancing, timeouts, retries, connection limits and outlier detection for this
    /// upstream (docs/proxy.md, "Traffic policy"); absent fields take the defaults.
    /// Standalone mode only: under `controlPlane` the Service's TrafficPolicy applies.
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicySpec>,
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
