//! Standalone configuration: a `ProxyConfig` file in, a validated [`Snapshot`] out.
//! (`compile`, `inbound` and `outbound_with` are shared with [`crate::control`], which
//! builds the same snapshot from a control plane's resources.)
//!
//! [`load_config`] decodes the file through the resources loader (so errors name the file,
//! line and field path exactly as resource errors do) and checks what types cannot say.
//! [`build_snapshot`] then reads everything the file points at (SVID, key, trust bundle,
//! policy files), checks that the certificate is this workload's, compiles the policies
//! with this workload as an endpoint and returns the snapshot. Nothing is bound or
//! changed until every step has succeeded; only then is a changed certificate or bundle
//! installed into the previous snapshot's sources, so TLS in flight and in-place rotation
//! carry on.

mod validate;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bulkhead_identity::rotation::{RotationError, SvidSource};
use bulkhead_identity::verify::{BundleHandle, VerifyError, verify_svid_chain};
use bulkhead_identity::{SpiffeId, TrustBundle, bundle::parse_certificates};
use bulkhead_policy::{EndpointId, Engine, Options, PolicyError};
use bulkhead_resources::load::decode_single_with;
use bulkhead_resources::{
    LoadError, Loader, Namespace, ObjectMeta, ResourceSet, WafSpec, Workload, WorkloadPort,
    WorkloadSpec,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{AppProtocol, ControlPlaneOverrides, IdentityFiles, OutboundSpec, ProxyConfig};
use crate::resilience::TrafficPolicy;
use crate::snapshot::{Endpoint, Inbound, Outbound, Snapshot};
use crate::waf::{Waf, WafConfigError};

/// The `apiVersion` of a `ProxyConfig`.
pub const API_VERSION: &str = "bulkhead.dev/v1alpha1";
/// The `kind` of a `ProxyConfig`.
pub const KIND: &str = "ProxyConfig";
/// The namespace whose policies apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "bulkhead-system";

/// Why a configuration could not be loaded; every message names the file or field and says
/// what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The config file does not decode, or breaks a rule; one located line per problem.
    #[error("{0}")]
    Invalid(LoadError),
    /// A certificate, key or bundle file is unusable.
    #[error("spec.identity.{field} `{}`: {message}", path.display())]
    Identity {
        /// `certFile`, `keyFile` or `bundleFile`.
        field: &'static str,
        /// The resolved file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The SVID belongs to another workload than the config describes.
    #[error(
        "spec.identity.certFile `{}`: the certificate is for `{found}`, but metadata.namespace \
         and spec.serviceAccount make this workload `{expected}`; issue a certificate for that \
         ID or fix the config", path.display()
    )]
    IdentityMismatch {
        /// The resolved certificate file.
        path: PathBuf,
        /// The ID in the certificate.
        found: SpiffeId,
        /// The ID the config asks for.
        expected: SpiffeId,
    },
    /// A policy file does not load (each line names its file, line and field).
    #[error("spec.policies: invalid resources:\n{0}")]
    Policies(#[source] LoadError),
    /// The policies load but cannot be compiled.
    #[error("spec.policies: {0}")]
    Compile(#[source] PolicyError),
    /// The web application firewall's rules do not compile (file and line named).
    #[error("{0}")]
    Waf(#[from] WafConfigError),
    /// A field holds a value that [`load_config`] would have refused.
    #[error("{field}: {message}")]
    Field {
        /// The field path.
        field: String,
        /// What was expected.
        message: String,
    },
}

/// Reads and checks a `ProxyConfig` file: strict decoding, then the semantic rules (unique
/// listen addresses, loopback admin and outbound listeners, ports, `name.namespace`
/// services, SPIFFE IDs, files that exist). Relative paths are relative to the file.
pub fn load_config(path: &Path) -> Result<ProxyConfig, ConfigError> {
    load_config_with(path, &ControlPlaneOverrides::default())
}

/// [`load_config`] with command-line values written into `spec.controlPlane` before the
/// checks, so that `--control-plane` turns a file without the section into a controlled
/// configuration (and the rules for that mode apply).
pub fn load_config_with(
    path: &Path,
    overrides: &ControlPlaneOverrides,
) -> Result<ProxyConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = config_dir(path);
    let origin = path.display().to_string();
    let mut cfg = decode_single_with(&text, &origin, API_VERSION, KIND, |cfg: &ProxyConfig| {
        if overrides.is_empty() {
            return validate::validate(cfg, &base_dir);
        }
        let mut cfg = cfg.clone();
        overrides.apply(&mut cfg);
        validate::validate(&cfg, &base_dir)
    })
    .map_err(ConfigError::Invalid)?;
    overrides.apply(&mut cfg);
    Ok(cfg)
}

/// The directory relative paths in the config file at `path` are resolved against.
pub fn config_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The SVID, key and bundle read from disk, checked against each other.
struct IdentityMaterial {
    id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    bundle: TrustBundle,
    /// A new source and bundle handle, used when the previous ones cannot be kept.
    fresh: (Arc<SvidSource>, BundleHandle),
}

/// Builds the snapshot `cfg` describes, as `version`. With `previous`, the SVID source and
/// bundle handle are kept when the workload identity is unchanged (new certificate or
/// bundle contents are installed into them), so established and in-flight TLS and
/// rotation carry on; check `Arc::ptr_eq(&old.svid, &new.svid)` to know whether TLS
/// configurations must be rebuilt.
pub fn build_snapshot(
    cfg: &ProxyConfig,
    base_dir: &Path,
    version: u64,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, ConfigError> {
    let files = cfg
        .spec
        .identity
        .as_ref()
        .ok_or_else(|| ConfigError::Field {
            field: "spec.identity".into(),
            message: "missing; a proxy under spec.controlPlane gets its snapshots from \
                  bulkhead_proxy::control, not from the file"
                .into(),
        })?;
    let material = read_identity(cfg, files, base_dir)?;
    let resources = load_policies(cfg, base_dir)?;
    let firewall = file_waf(cfg, &resources);
    let (engine, endpoint) =
        compile(cfg, resources, material.id.trust_domain_name()).map_err(|e| match e {
            CompileError::Policy(e) => ConfigError::Compile(e),
            CompileError::MissingSelf(key) => ConfigError::Field {
                field: "metadata.name".into(),
                message: format!("workload `{key}` is missing from the compiled policies"),
            },
        })?;
    let inbound = inbound(cfg);
    let outbound = outbound_with(cfg, file_upstream)?;
    let previous_waf = previous.and_then(|p| p.waf.as_deref());
    let waf = firewall
        .map(|(source, spec)| Waf::build(source, spec, previous_waf))
        .transpose()?;
    // Everything is valid: only now touch the sources the running proxy uses.
    let (svid, bundle) = commit_identity(material, previous, base_dir, files)?;
    Ok(Snapshot {
        version,
        identity: svid.id().clone(),
        svid,
        bundle,
        engine: Arc::new(engine),
        endpoint,
        inbound,
        outbound,
        access_log: cfg.spec.access_log.enabled,
        waf,
    })
}

/// The firewall of a standalone proxy and what configured it: `spec.waf`, else the
/// WebApplicationFirewall among the policy resources that selects this workload (chosen
/// as the control plane chooses: `bulkhead_resources::waf::select`).
fn file_waf(cfg: &ProxyConfig, resources: &ResourceSet) -> Option<(String, WafSpec)> {
    let namespace = cfg.metadata.namespace_or_default();
    if let Some(spec) = &cfg.spec.waf {
        let source = format!("ProxyConfig/{namespace}/{}", cfg.metadata.name);
        return Some((source, spec.clone()));
    }
    let same = |meta: &ObjectMeta| {
        meta.name == cfg.metadata.name && meta.namespace_or_default() == namespace
    };
    let declared = resources.workloads.iter().map(|w| &w.metadata);
    let declared = declared
        .chain(resources.pods.iter().map(|p| &p.metadata))
        .find(|m| same(m));
    let labels = declared.map_or(&cfg.metadata.labels, |m| &m.labels);
    let selection = bulkhead_resources::waf::select(
        &resources.web_application_firewalls,
        namespace,
        labels,
        ROOT_NAMESPACE,
    );
    let chosen = selection.chosen?;
    let name = bulkhead_resources::waf::waf_name(chosen);
    if !selection.ignored.is_empty() {
        let ignored: Vec<String> = selection
            .ignored
            .iter()
            .map(|w| bulkhead_resources::waf::waf_name(w))
            .collect();
        tracing::warn!(applies = %name, ignored = ?ignored,
            "more than one WebApplicationFirewall selects this workload alike; the first by name applies");
    }
    Some((format!("WebApplicationFirewall/{name}"), chosen.spec.waf()))
}

/// Why [`compile`] failed.
#[derive(Debug)]
pub(crate) enum CompileError {
    /// The policy engine refused the resources.
    Policy(PolicyError),
    /// The compiled policies do not know this workload (`namespace/name`).
    MissingSelf(String),
}

/// Adds this workload unless `resources` declare it, compiles the policies for
/// `trust_domain` and finds this workload's endpoint. Policy files and a control plane's
/// resources both go through here, so both modes decide alike.
pub(crate) fn compile(
    cfg: &ProxyConfig,
    mut resources: ResourceSet,
    trust_domain: &str,
) -> Result<(Engine, EndpointId), CompileError> {
    let key = add_self(cfg, &mut resources);
    let options = Options {
        trust_domain: trust_domain.to_owned(),
        trust_domain_aliases: Vec::new(),
        root_namespace: ROOT_NAMESPACE.to_owned(),
    };
    let engine = Engine::compile(&resources, options).map_err(CompileError::Policy)?;
    let endpoint = engine
        .endpoint(&key)
        .ok_or(CompileError::MissingSelf(key))?;
    Ok((engine, endpoint))
}

fn identity_error(field: &'static str, path: &Path, message: impl ToString) -> ConfigError {
    ConfigError::Identity {
        field,
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn read_file(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| identity_error(field, path, format!("cannot read: {e}")))
}

/// Reads the SVID, key and bundle and checks that they belong together and to `cfg`.
fn read_identity(
    cfg: &ProxyConfig,
    files: &IdentityFiles,
    base_dir: &Path,
) -> Result<IdentityMaterial, ConfigError> {
    let (cert_path, key_path) = (
        base_dir.join(&files.cert_file),
        base_dir.join(&files.key_file),
    );
    let bundle_path = base_dir.join(&files.bundle_file);
    let chain = parse_certificates(&read_file("certFile", &cert_path)?, "certFile")
        .map_err(|e| identity_error("certFile", &cert_path, e))?;
    let key = PrivateKeyDer::from_pem_slice(&read_file("keyFile", &key_path)?).map_err(|e| {
        identity_error(
            "keyFile",
            &key_path,
            format!("expected a PEM private key: {e}"),
        )
    })?;
    let svid = SvidSource::new(chain.clone(), key.clone_key()).map_err(|e| match e {
        RotationError::Key(_) => identity_error(
            "keyFile",
            &key_path,
            format!(
                "{e} (it must be the key of certFile `{}`)",
                cert_path.display()
            ),
        ),
        other => identity_error("certFile", &cert_path, other),
    })?;
    let id = svid.id().clone();
    let namespace = cfg.metadata.namespace_or_default();
    let expected = SpiffeId::for_workload(&id.trust_domain(), namespace, &cfg.spec.service_account)
        .map_err(|e| ConfigError::Field {
            field: "spec.serviceAccount".into(),
            message: format!("does not make a valid SPIFFE ID: {e}"),
        })?;
    if expected != id {
        return Err(ConfigError::IdentityMismatch {
            path: cert_path,
            found: id,
            expected,
        });
    }
    let bundle = TrustBundle::read(id.trust_domain(), &bundle_path)
        .map_err(|e| identity_error("bundleFile", &bundle_path, e))?;
    check_chain(&chain, &bundle, &id, &cert_path, &bundle_path)?;
    let handle = BundleHandle::new(bundle.clone())
        .map_err(|e| identity_error("bundleFile", &bundle_path, e))?;
    Ok(IdentityMaterial {
        id,
        chain,
        key,
        bundle,
        fresh: (svid, handle),
    })
}

/// The SVID must chain to the bundle, or every peer would refuse it. An expired (or not
/// yet valid) certificate is let through with a warning: `/ready` reports it, and an
/// external rotator may be about to replace the file.
fn check_chain(
    chain: &[CertificateDer<'static>],
    bundle: &TrustBundle,
    id: &SpiffeId,
    cert_path: &Path,
    bundle_path: &Path,
) -> Result<(), ConfigError> {
    let now = SystemTime::now();
    let result = verify_svid_chain(chain, bundle, now, Some(id));
    let at = match result {
        Ok(_) => return Ok(()),
        Err(VerifyError::Expired { not_after, .. }) => not_after,
        Err(VerifyError::NotYetValid { not_before, .. }) => not_before,
        Err(e) => {
            return Err(identity_error(
                "certFile",
                cert_path,
                format!(
                    "does not verify against bundleFile `{}`: {e}",
                    bundle_path.display()
                ),
            ));
        }
    };
    // Check everything but the dates at the edge of the validity window.
    if let Err(e) = verify_svid_chain(chain, bundle, at, Some(id)) {
        return Err(identity_error(
            "certFile",
            cert_path,
            format!(
                "does not verify against bundleFile `{}`: {e}",
                bundle_path.display()
            ),
        ));
    }
    tracing::warn!(
        cert_file = %cert_path.display(),
        id = %id,
        "the SVID is outside its validity period; the proxy reports not ready until it is replaced"
    );
    Ok(())
}

/// Keeps the previous source and handle when the identity is unchanged, installing new
/// contents into them; otherwise takes the fresh ones.
fn commit_identity(
    material: IdentityMaterial,
    previous: Option<&Snapshot>,
    base_dir: &Path,
    files: &IdentityFiles,
) -> Result<(Arc<SvidSource>, BundleHandle), ConfigError> {
    let Some(prev) = previous.filter(|p| p.svid.id() == &material.id) else {
        return Ok(material.fresh);
    };
    if prev.svid.certified_key().cert != material.chain {
        let path = base_dir.join(&files.cert_file);
        prev.svid
            .install(material.chain, material.key)
            .map_err(|e| identity_error("certFile", &path, e))?;
    }
    if prev.bundle.current().roots() != material.bundle.roots() {
        let path = base_dir.join(&files.bundle_file);
        // Cannot fail: the same bundle was already prepared into the fresh handle.
        prev.bundle
            .replace(material.bundle)
            .map_err(|e| identity_error("bundleFile", &path, e))?;
    }
    Ok((Arc::clone(&prev.svid), prev.bundle.clone()))
}

fn load_policies(cfg: &ProxyConfig, base_dir: &Path) -> Result<ResourceSet, ConfigError> {
    let mut loader = Loader::new();
    for path in &cfg.spec.policies {
        // Keep going: `finish` reports the problems of every file together.
        let _ = loader.add_path(&base_dir.join(path));
    }
    loader.finish().map_err(ConfigError::Policies)
}

/// Adds this workload as a `Workload` unless the resources declare a Pod or Workload of
/// that name; returns its `namespace/name`.
fn add_self(cfg: &ProxyConfig, resources: &mut ResourceSet) -> String {
    let namespace = cfg.metadata.namespace_or_default().to_owned();
    let name = cfg.metadata.name.clone();
    let key = format!("{namespace}/{name}");
    let same = |meta: &ObjectMeta| meta.name == name && meta.namespace_or_default() == namespace;
    let declared = resources.pods.iter().any(|p| same(&p.metadata))
        || resources.workloads.iter().any(|w| same(&w.metadata));
    if declared {
        return key;
    }
    if !resources
        .namespaces
        .iter()
        .any(|n| n.metadata.name == namespace)
    {
        resources.namespaces.push(Namespace::implicit(&namespace));
    }
    let mut metadata = ObjectMeta::named(name, Some(namespace));
    metadata.labels = cfg.metadata.labels.clone();
    let ports = cfg.spec.inbound.iter().map(|i| WorkloadPort {
        name: None,
        port: i.port,
        protocol: bulkhead_resources::Protocol::Tcp,
        app_protocol: app_protocol(i.protocol).map(str::to_owned),
    });
    resources.workloads.push(Workload {
        api_version: API_VERSION.into(),
        kind: "Workload".into(),
        metadata,
        spec: WorkloadSpec {
            service_account: Some(cfg.spec.service_account.clone()),
            ports: ports.collect(),
            ..WorkloadSpec::default()
        },
    });
    key
}

/// The Kubernetes `appProtocol` spelling of a port's protocol, when it fixes one.
fn app_protocol(protocol: AppProtocol) -> Option<&'static str> {
    match protocol {
        AppProtocol::Auto => None,
        AppProtocol::Http => Some("http"),
        AppProtocol::Http2 => Some("http2"),
        AppProtocol::Grpc => Some("grpc"),
        AppProtocol::Tcp | AppProtocol::Opaque => Some("tcp"),
    }
}

/// The inbound ports of `cfg`, as the snapshot holds them.
pub(crate) fn inbound(cfg: &ProxyConfig) -> Vec<Inbound> {
    let ports = cfg.spec.inbound.iter().map(|i| Inbound {
        listen: i.listen,
        port: i.port,
        forward_to: i.forward_to,
        protocol: i.protocol,
    });
    ports.collect()
}

/// The upstreams of `cfg`, with the endpoints and traffic policy `upstream` gives for
/// each (by index): from the file in standalone mode, from the snapshot's upstreams under
/// a control plane.
pub(crate) fn outbound_with<E>(
    cfg: &ProxyConfig,
    mut upstream: impl FnMut(usize, &OutboundSpec) -> Result<(Vec<Endpoint>, Arc<TrafficPolicy>), E>,
) -> Result<Vec<Outbound>, E> {
    let mut out = Vec::with_capacity(cfg.spec.outbound.len());
    for (i, o) in cfg.spec.outbound.iter().enumerate() {
        let (endpoints, traffic) = upstream(i, o)?;
        out.push(Outbound {
            listen: o.listen,
            service: o.service.clone(),
            protocol: o.protocol,
            endpoints,
            traffic,
        });
    }
    Ok(out)
}

/// The endpoints and traffic policy `spec.outbound[i]` gives in the file (checked by
/// [`load_config`]).
fn file_upstream(
    i: usize,
    o: &OutboundSpec,
) -> Result<(Vec<Endpoint>, Arc<TrafficPolicy>), ConfigError> {
    let traffic = o
        .traffic_policy
        .as_ref()
        .map_or_else(TrafficPolicy::default, TrafficPolicy::from);
    Ok((file_endpoints(i, o)?, Arc::new(traffic)))
}

/// The endpoints `spec.outbound[i]` lists in the file.
fn file_endpoints(i: usize, o: &OutboundSpec) -> Result<Vec<Endpoint>, ConfigError> {
    let mut endpoints = Vec::with_capacity(o.endpoints.len());
    for (j, e) in o.endpoints.iter().enumerate() {
        let identity = SpiffeId::parse(&e.identity).map_err(|err| ConfigError::Field {
            field: format!("spec.outbound[{i}].endpoints[{j}].identity"),
            message: format!("`{}` is not a valid SPIFFE ID: {err}", e.identity),
        })?;
        endpoints.push(Endpoint {
            address: e.address,
            identity,
        });
    }
    Ok(endpoints)
}
