//! Shared by the `control_*` tests: an in-process fake control plane (tonic over TLS, a
//! mesh CA issuing real SVIDs, join tokens, per-workload snapshots, a log of every call)
//! and managed proxies wired to the real data path.
//!
//! Everything listens on 127.0.0.1; waits are bounded and follow events, never sleeps.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_api::proxy;
use bulkhead_proxy::accesslog::AccessLog;
use bulkhead_proxy::config::ProxyConfig;
use bulkhead_proxy::control::{ControlStatus, ControlledSource, Options};
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::run::Bound;
use bulkhead_proxy::snapshot::Snapshot;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use server::{Event, FakeControlPlane};

/// How long any wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// `spiffe://cluster.local/ns/shop/sa/<sa>`.
pub fn spiffe(sa: &str) -> String {
    format!("spiffe://cluster.local/ns/shop/sa/{sa}")
}

/// A DENY on `/admin*` at the `app: api` workload, as the control plane sends resources.
pub const DENY_ADMIN_JSON: &str = r#"{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny-admin","namespace":"shop"},"spec":{"selector":{"matchLabels":{"app":"api"}},"action":"DENY","rules":[{"to":[{"operation":{"paths":["/admin*"]}}]}]}}"#;

/// A snapshot message for the mesh of `cp`.
pub fn snapshot(
    cp: &FakeControlPlane,
    version: u64,
    resources: &[&str],
    upstreams: Vec<proxy::Upstream>,
) -> proxy::Snapshot {
    proxy::Snapshot {
        version,
        hash: format!("hash-{version}"),
        trust_bundle_pem: cp.bundle_pem(),
        resources_json: resources.iter().map(|r| (*r).to_owned()).collect(),
        upstreams,
        trust_domain: "cluster.local".into(),
        waf: None,
    }
}

/// The upstream `api.shop:8080` served by the api proxy at `address`.
pub fn api_upstream(address: SocketAddr) -> proxy::Upstream {
    proxy::Upstream {
        service: "api.shop".into(),
        port: 8080,
        endpoints: vec![proxy::Endpoint {
            address: address.to_string(),
            identity: spiffe("api"),
        }],
        traffic_policy_json: String::new(),
    }
}

/// A controlled ProxyConfig for `shop/<name>` (labels `app: <name>`), decoded without the
/// file checks so that listeners may use port 0; `spec` is the YAML of the remaining
/// `spec` fields, indented by two spaces.
pub fn config(name: &str, cp: &FakeControlPlane, token: &str, spec: &str) -> ProxyConfig {
    let yaml = format!(
        "apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {{name: {name}, namespace: shop, labels: {{app: {name}}}}}
spec:
  serviceAccount: {name}
  accessLog: {{enabled: false}}
  controlPlane: {{address: \"{}\", caFile: \"{}\", token: \"{token}\"}}
{spec}",
        cp.addr(),
        cp.ca_file().display()
    );
    serde_norway::from_str(&yaml).unwrap()
}

/// Options for tests: quick reconnection, default renewal.
pub fn fast_options() -> Options {
    let mut options = Options::default();
    options.backoff.initial = Duration::from_millis(50);
    options.backoff.max = Duration::from_millis(400);
    options
}

/// A proxy under the fake control plane, serving on the real data path.
pub struct ManagedProxy {
    pub source: ControlledSource,
    pub inbound: Vec<SocketAddr>,
    pub outbound: Vec<SocketAddr>,
    pub metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ManagedProxy {
    /// Joins, waits for the first snapshot, binds and serves.
    pub async fn start(config: ProxyConfig, base_dir: &Path, options: Options) -> ManagedProxy {
        let metrics = Metrics::new();
        let started = ControlledSource::start(config, base_dir, metrics.clone(), options);
        let source = tokio::time::timeout(WAIT, started)
            .await
            .expect("first snapshot in time")
            .unwrap();
        let bound = Bound::bind(&source.current()).await.unwrap();
        let (inbound, outbound) = (bound.inbound_addrs(), bound.outbound_addrs());
        let (shutdown, stop) = oneshot::channel::<()>();
        let access_log = Arc::new(AccessLog::disabled());
        let task =
            tokio::spawn(
                bound.serve(source.subscribe(), metrics.clone(), access_log, async {
                    let _ = stop.await;
                }),
            );
        ManagedProxy {
            source,
            inbound,
            outbound,
            metrics,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Waits until the snapshot in force has `version`.
    pub async fn wait_version(&self, version: u64) -> Arc<Snapshot> {
        let mut rx = self.source.subscribe();
        let seen = tokio::time::timeout(WAIT, rx.wait_for(|s| s.version == version))
            .await
            .unwrap_or_else(|_| panic!("version {version} not applied in time"));
        seen.unwrap().clone()
    }

    /// Waits until the control status satisfies `pred`.
    pub async fn wait_status(&self, pred: impl Fn(&ControlStatus) -> bool) -> ControlStatus {
        let mut rx: watch::Receiver<ControlStatus> = self.source.subscribe_status();
        let seen = tokio::time::timeout(WAIT, rx.wait_for(|s| pred(s)))
            .await
            .unwrap_or_else(|_| panic!("status not reached; last {:?}", self.source.status()));
        seen.unwrap().clone()
    }

    /// Stops the data path and the control-plane tasks.
    pub async fn stop(mut self) {
        self.source.stop();
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t)
                .await
                .expect("drained")
                .unwrap();
        }
    }
}

/// A scratch directory for config-relative paths.
pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// Installs a test log subscriber once (`RUST_LOG` picks the level).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
