//! `spec.controlPlane.stateDir`: the last good snapshot, the certificate, its key and the
//! trust bundle, kept so that a proxy restarted while the control plane is unreachable
//! can serve what it served before (static stability across restarts).
//!
//! | file | what |
//! |---|---|
//! | `cert.pem` | the SVID chain, leaf first |
//! | `key.pem` | its private key (PKCS#8, mode 0600) |
//! | `bundle.pem` | the trust bundle |
//! | `snapshot.json` | the last applied `Snapshot` message, as proto3 JSON |
//!
//! Every file is replaced atomically (written aside, synced, renamed), so a crash leaves
//! the previous or the new version, never half of one. The certificate is written at
//! join and refreshed at every renewal (see `certify::Renewer`), so it stays usable
//! however long the proxy has been running.

use std::path::{Path, PathBuf};

use bulkhead_api::proxy;
use bulkhead_identity::TrustBundle;
use bulkhead_identity::TrustDomain;
use bulkhead_identity::bundle::parse_certificates;
use bulkhead_identity::ca::{
    SVID_BUNDLE_FILE, SVID_CERT_FILE, SVID_KEY_FILE, write_private_file, write_public_file,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::error::ControlError;

/// The persisted snapshot's file name.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// A certificate, key and bundle read back from the state directory.
pub(crate) struct PersistedIdentity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) bundle: TrustBundle,
}

/// The state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens `dir`, creating it (mode 0700: it holds a private key) when missing.
    pub(crate) fn open(dir: PathBuf) -> Result<StateDir, ControlError> {
        if !dir.is_dir() {
            create_private_dir(&dir).map_err(|e| error(&dir, format!("cannot create: {e}")))?;
        }
        Ok(StateDir { dir })
    }

    /// Replaces the certificate, key and bundle.
    pub(crate) fn save_identity(
        &self,
        chain_pem: &str,
        key_pem: &str,
        bundle_pem: &str,
    ) -> Result<(), ControlError> {
        // Key first: a crash in between leaves a key without its certificate, which the
        // next start detects (they do not match) rather than a certificate without key.
        self.write(SVID_KEY_FILE, key_pem.as_bytes(), true)?;
        self.write(SVID_CERT_FILE, chain_pem.as_bytes(), false)?;
        self.write(SVID_BUNDLE_FILE, bundle_pem.as_bytes(), false)
    }

    /// Replaces the snapshot and the bundle it carries.
    pub(crate) fn save_snapshot(&self, snapshot: &proxy::Snapshot) -> Result<(), ControlError> {
        let json = serde_json::to_vec_pretty(&SnapshotJson::from(snapshot))
            .map_err(|e| error(&self.dir.join(SNAPSHOT_FILE), e.to_string()))?;
        self.write(SNAPSHOT_FILE, &json, false)?;
        self.write(
            SVID_BUNDLE_FILE,
            snapshot.trust_bundle_pem.as_bytes(),
            false,
        )
    }

    /// The persisted certificate, key and bundle; `None` when there are none yet.
    pub(crate) fn load_identity(
        &self,
        trust_domain: TrustDomain,
    ) -> Result<Option<PersistedIdentity>, ControlError> {
        let (cert, key, bundle) = (
            self.dir.join(SVID_CERT_FILE),
            self.dir.join(SVID_KEY_FILE),
            self.dir.join(SVID_BUNDLE_FILE),
        );
        if !cert.exists() && !key.exists() {
            return Ok(None);
        }
        let chain = parse_certificates(&read(&cert)?, &cert.display().to_string())
            .map_err(|e| error(&cert, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(&read(&key)?)
            .map_err(|e| error(&key, format!("expected a PEM private key: {e}")))?;
        let bundle = TrustBundle::from_pem(trust_domain, &read(&bundle)?, "bundle.pem")
            .map_err(|e| error(&bundle, e.to_string()))?;
        Ok(Some(PersistedIdentity { chain, key, bundle }))
    }

    /// The persisted snapshot; `None` when there is none yet.
    pub(crate) fn load_snapshot(&self) -> Result<Option<proxy::Snapshot>, ControlError> {
        let path = self.dir.join(SNAPSHOT_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let json: SnapshotJson = serde_json::from_slice(&read(&path)?)
            .map_err(|e| error(&path, format!("not a persisted snapshot: {e}")))?;
        Ok(Some(json.into()))
    }

    fn write(&self, name: &str, contents: &[u8], private: bool) -> Result<(), ControlError> {
        let path = self.dir.join(name);
        let written = if private {
            write_private_file(&path, contents)
        } else {
            write_public_file(&path, contents)
        };
        written.map_err(|e| error(&path, e.to_string()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ControlError> {
    std::fs::read(path).map_err(|e| error(path, format!("cannot read: {e}")))
}

fn error(path: &Path, message: String) -> ControlError {
    ControlError::File {
        field: "stateDir",
        path: path.to_owned(),
        message,
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// `bulkhead.proxy.v1.Snapshot` in proto3 JSON (lowerCamelCase names). prost messages do
/// not implement serde, so this mirror carries the conversion.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotJson {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    trust_bundle_pem: String,
    #[serde(default)]
    resources_json: Vec<String>,
    #[serde(default)]
    upstreams: Vec<UpstreamJson>,
    #[serde(default)]
    trust_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waf: Option<WafJson>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WafJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    spec_json: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpstreamJson {
    #[serde(default)]
    service: String,
    #[serde(default)]
    port: u32,
    #[serde(default)]
    endpoints: Vec<EndpointJson>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    traffic_policy_json: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointJson {
    #[serde(default)]
    address: String,
    #[serde(default)]
    identity: String,
}

impl From<&proxy::Snapshot> for SnapshotJson {
    fn from(s: &proxy::Snapshot) -> Self {
        let upstreams = s.upstreams.iter().map(|u| UpstreamJson {
            service: u.service.clone(),
            port: u.port,
            endpoints: u
                .endpoints
                .iter()
                .map(|e| EndpointJson {
                    address: e.address.clone(),
                    identity: e.identity.clone(),
                })
                .collect(),
            traffic_policy_json: u.traffic_policy_json.clone(),
        });
        SnapshotJson {
            version: s.version,
            hash: s.hash.clone(),
            trust_bundle_pem: s.trust_bundle_pem.clone(),
            resources_json: s.resources_json.clone(),
            upstreams: upstreams.collect(),
            trust_domain: s.trust_domain.clone(),
            waf: s.waf.as_ref().map(|w| WafJson {
                name: w.name.clone(),
                spec_json: w.spec_json.clone(),
            }),
        }
    }
}

impl From<SnapshotJson> for proxy::Snapshot {
    fn from(s: SnapshotJson) -> Self {
        let upstreams = s.upstreams.into_iter().map(|u| proxy::Upstream {
            service: u.service,
            port: u.port,
            endpoints: u
                .endpoints
                .into_iter()
                .map(|e| proxy::Endpoint {
                    address: e.address,
                    identity: e.identity,
                })
                .collect(),
            traffic_policy_json: u.traffic_policy_json,
        });
        proxy::Snapshot {
            version: s.version,
            hash: s.hash,
            trust_bundle_pem: s.trust_bundle_pem,
            resources_json: s.resources_json,
            upstreams: upstreams.collect(),
            trust_domain: s.trust_domain,
            waf: s.waf.map(|w| proxy::Waf {
                name: w.name,
                spec_json: w.spec_json,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_through_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        assert!(state.load_snapshot().unwrap().is_none());
        let snapshot = proxy::Snapshot {
            version: 7,
            hash: "h7".into(),
            trust_bundle_pem: "roots".into(),
            resources_json: vec![r#"{"kind":"Namespace"}"#.into()],
            upstreams: vec![proxy::Upstream {
                service: "api.shop".into(),
                port: 8080,
                endpoints: vec![proxy::Endpoint {
                    address: "10.0.0.1:15006".into(),
                    identity: "spiffe://cluster.local/ns/shop/sa/api".into(),
                }],
                traffic_policy_json: r#"{"retries":{"attempts":1}}"#.into(),
            }],
            trust_domain: "cluster.local".into(),
            waf: Some(proxy::Waf {
                name: "shop/web".into(),
                spec_json: r#"{"mode":"Blocking"}"#.into(),
            }),
        };
        state.save_snapshot(&snapshot).unwrap();
        assert_eq!(state.load_snapshot().unwrap(), Some(snapshot));
        let text = std::fs::read_to_string(dir.path().join("state/snapshot.json")).unwrap();
        assert!(text.contains("\"trustBundlePem\""), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        state.save_identity("cert", "key", "bundle").unwrap();
        let mode = |name: &str| {
            let meta = std::fs::metadata(dir.path().join("state").join(name)).unwrap();
            meta.permissions().mode() & 0o777
        };
        assert_eq!(mode("key.pem"), 0o600);
        assert_eq!(mode("."), 0o700);
    }
}
