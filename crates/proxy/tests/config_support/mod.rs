//! Shared by the `config_*`, `reload_*` and `admin_*` tests: a temporary directory with a
//! CA, SVID files issued by it and ProxyConfig files.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bulkhead_identity::ca::{CertificateAuthority, write_svid_files};
use bulkhead_identity::{SpiffeId, TrustDomain};

/// A scratch directory with a CA for `cluster.local`.
pub(crate) struct Mesh {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: CertificateAuthority,
}

impl Mesh {
    /// A new directory and CA (valid from a day ago, so that expired leaves can be issued).
    pub(crate) fn new() -> Mesh {
        let td = TrustDomain::new("cluster.local").unwrap();
        let ca = CertificateAuthority::init(&td, SystemTime::now() - Duration::from_secs(86_400))
            .unwrap();
        Mesh {
            dir: tempfile::tempdir().unwrap(),
            ca,
        }
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Issues `spiffe://cluster.local/ns/<ns>/sa/<sa>` into `<dir>/<sub>/{cert,key,bundle}.pem`.
    pub(crate) fn issue(&self, sub: &str, ns: &str, sa: &str) -> PathBuf {
        self.issue_at(sub, ns, sa, SystemTime::now(), Duration::from_secs(3600))
    }

    /// Like [`Mesh::issue`], valid from `now` for `ttl`.
    pub(crate) fn issue_at(
        &self,
        sub: &str,
        ns: &str,
        sa: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> PathBuf {
        let id = SpiffeId::parse(&format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")).unwrap();
        let (svid, key) = self.ca.issue_with_new_key(&id, Some(ttl), now).unwrap();
        let out = self.path().join(sub);
        write_svid_files(&out, &svid, &key, self.ca.bundle()).unwrap();
        out
    }

    /// Writes `text` to `<dir>/<name>` and returns the path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The DESIGN.md §5 example with identity files under `web/`, access log off.
pub(crate) const WEB: &str = r#"apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  identity: {certFile: web/cert.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem}
  admin: {listen: "127.0.0.1:15000"}
  accessLog: {enabled: false}
  inbound:
    - listen: "127.0.0.1:15006"
      port: 8080
      forwardTo: "127.0.0.1:8080"
      protocol: auto
  outbound:
    - listen: "127.0.0.1:9001"
      service: api.shop
      protocol: auto
      endpoints:
        - {address: "127.0.0.1:16006", identity: "spiffe://cluster.local/ns/shop/sa/api"}
  policies: []
"#;

/// A mesh with `web`'s SVID issued and [`WEB`] written as `proxy.yaml`.
pub(crate) fn web_mesh() -> (Mesh, PathBuf) {
    let mesh = Mesh::new();
    mesh.issue("web", "shop", "web");
    let config = mesh.write("proxy.yaml", WEB);
    (mesh, config)
}
