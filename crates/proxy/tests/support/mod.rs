//! Shared fixtures for the proxy's integration tests: a CA and SVIDs, policy engines
//! compiled from YAML, snapshots built by hand (no config loader), two sidecars wired
//! client → A (outbound) → mTLS → B (inbound) → app, and small test apps.
//!
//! Everything listens on 127.0.0.1:0; nothing sleeps to synchronise.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

pub mod apps;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_identity::ca::CertificateAuthority;
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::verify::BundleHandle;
use bulkhead_identity::{SpiffeId, TrustDomain};
use bulkhead_policy::{Engine, Options};
use bulkhead_proxy::accesslog::AccessLog;
use bulkhead_proxy::config::{AccessLogSpec, AppProtocol};
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::snapshot::{Endpoint, Inbound, Outbound, Snapshot};
use bulkhead_proxy::{Bound, Settings};
use bulkhead_resources::{Format, Loader};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The two workloads every test uses: `shop/web` (the client, behind sidecar A) and
/// `shop/api` (the server, behind sidecar B).
pub const WORKLOADS: &str = r#"
apiVersion: bulkhead.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {serviceAccount: web, ports: [{name: http, port: 8080}]}
---
apiVersion: bulkhead.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {serviceAccount: api, ports: [{name: http, port: 8080}]}
"#;

/// A DENY on `/admin*` at the api workload, used by the policy and reload tests.
pub const DENY_ADMIN: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"#;

/// The SPIFFE ID of `shop/<sa>`.
pub fn id(sa: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://cluster.local/ns/shop/sa/{sa}")).unwrap()
}

/// A trust domain with its CA and bundle.
pub struct Mesh {
    ca: CertificateAuthority,
    pub bundle: BundleHandle,
}

impl Mesh {
    pub fn new() -> Mesh {
        let td = TrustDomain::new("cluster.local").unwrap();
        let ca = CertificateAuthority::init(&td, SystemTime::now()).unwrap();
        let bundle = BundleHandle::new(ca.bundle().clone()).unwrap();
        Mesh { ca, bundle }
    }

    /// A fresh SVID for `shop/<sa>`.
    pub fn svid(&self, sa: &str) -> Arc<SvidSource> {
        let (chain, key) = self.issue(sa);
        SvidSource::new(chain, key).unwrap()
    }

    /// A fresh certificate chain and key for `shop/<sa>` (to rotate a source with).
    pub fn issue(&self, sa: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (svid, key) = self
            .ca
            .issue_with_new_key(&id(sa), None, SystemTime::now())
            .unwrap();
        (svid.chain().to_vec(), PrivateKeyDer::Pkcs8(key.key_der()))
    }
}

/// An engine compiled from [`WORKLOADS`] plus `policies` (YAML, may be empty).
pub fn engine(policies: &str) -> Arc<Engine> {
    let mut loader = Loader::new();
    loader
        .add_str(WORKLOADS, "workloads.yaml", Format::Yaml)
        .unwrap();
    if !policies.trim().is_empty() {
        loader
            .add_str(policies, "policies.yaml", Format::Yaml)
            .unwrap();
    }
    let set = loader.finish().unwrap();
    Arc::new(Engine::compile(&set, Options::default()).unwrap())
}

/// A snapshot for workload `shop/<sa>`.
pub fn snapshot(
    mesh: &Mesh,
    svid: &Arc<SvidSource>,
    sa: &str,
    engine: Arc<Engine>,
    inbound: Vec<Inbound>,
    outbound: Vec<Outbound>,
) -> Snapshot {
    let endpoint = engine.endpoint(&format!("shop/{sa}")).unwrap();
    Snapshot {
        version: 1,
        identity: id(sa),
        svid: svid.clone(),
        bundle: mesh.bundle.clone(),
        engine,
        endpoint,
        inbound,
        outbound,
        access_log: true,
        waf: None,
    }
}

/// A sidecar for workload `shop/api` with one inbound port (8080) in front of `app`, on an
/// ephemeral port, without outbound listeners.
pub async fn api_sidecar(
    mesh: &Mesh,
    engine: Arc<Engine>,
    app: SocketAddr,
    protocol: AppProtocol,
) -> Sidecar {
    let inbound = vec![Inbound {
        listen: any_port(),
        port: 8080,
        forward_to: app,
        protocol,
    }];
    let svid = mesh.svid("api");
    Sidecar::start(snapshot(mesh, &svid, "api", engine, inbound, vec![])).await
}

/// An unbound loopback address: the listener learns its port when bound.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback address where TCP connects hang: a listener whose accept queue is full
/// (Linux drops the SYNs), kept so while this value lives.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _queued: Vec<tokio::net::TcpStream>,
}

/// Starts a [`Blackhole`]: connects until one hangs (bounded), which proves the queue full.
pub async fn blackhole() -> Blackhole {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(any_port()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => {
                return Blackhole {
                    addr,
                    _listener: listener,
                    _queued: queued,
                };
            }
        }
    }
    panic!("the accept queue of {addr} never filled");
}

/// One running sidecar.
pub struct Sidecar {
    pub inbound: Vec<SocketAddr>,
    pub outbound: Vec<SocketAddr>,
    pub metrics: Arc<Metrics>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    access_log: Arc<AccessLog>,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sidecar {
    /// Binds and serves `snapshot`, with an access log in a temporary file.
    pub async fn start(snapshot: Snapshot) -> Sidecar {
        Sidecar::start_with(snapshot, Settings::default()).await
    }

    /// [`Sidecar::start`] with other settings.
    pub async fn start_with(snapshot: Snapshot, settings: Settings) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("access.log");
        let spec = AccessLogSpec {
            enabled: true,
            path: Some(log_path.clone()),
        };
        let metrics = Metrics::new();
        let access_log = Arc::new(AccessLog::new(&spec, dir.path()).unwrap());
        let bound = Bound::bind(&snapshot)
            .await
            .unwrap()
            .with_settings(settings);
        let (inbound, outbound) = (bound.inbound_addrs(), bound.outbound_addrs());
        let (snapshots, rx) = watch::channel(Arc::new(snapshot));
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(rx, metrics.clone(), access_log.clone(), async {
            let _ = stop.await;
        }));
        Sidecar {
            inbound,
            outbound,
            metrics,
            snapshots,
            access_log,
            log_path,
            _dir: dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Puts a new snapshot in force (the version is bumped).
    pub fn update(&self, change: impl FnOnce(&Snapshot) -> Snapshot) {
        let current = self.snapshots.borrow().clone();
        let mut next = change(&current);
        next.version = current.version + 1;
        self.snapshots.send_replace(Arc::new(next));
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// The snapshots in force, as an admin listener follows them.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    /// The access log lines written so far, parsed.
    pub fn log(&self) -> Vec<serde_json::Value> {
        assert!(self.access_log.flush(Duration::from_secs(10)));
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (bounded) until a log line satisfies `pred`; lines are written when a
    /// response body ends, which can be just after the client has read it.
    pub async fn wait_for_log(
        &self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(line) = self.log().into_iter().find(|l| pred(l)) {
                return line;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching access log line in {:#?}", self.log());
    }

    /// Stops accepting and drains.
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("sidecar drained in time")
                .unwrap();
        }
    }
}

/// Two sidecars: A (`shop/web`, outbound to `api.shop`) and B (`shop/api`, inbound on
/// port 8080 forwarding to `app`).
pub struct Pair {
    pub mesh: Mesh,
    pub a: Sidecar,
    pub b: Sidecar,
}

/// How to build a [`Pair`].
pub struct PairSpec<'a> {
    pub app: SocketAddr,
    pub inbound: AppProtocol,
    pub outbound: AppProtocol,
    pub policies: &'a str,
    /// The identity A expects of B (default: B's real one).
    pub expect: Option<SpiffeId>,
    /// Both sidecars' settings.
    pub settings: Settings,
}

impl<'a> PairSpec<'a> {
    pub fn new(app: SocketAddr) -> Self {
        PairSpec {
            app,
            inbound: AppProtocol::Auto,
            outbound: AppProtocol::Auto,
            policies: "",
            expect: None,
            settings: Settings::default(),
        }
    }
}

impl Pair {
    pub async fn start(spec: PairSpec<'_>) -> Pair {
        let mesh = Mesh::new();
        let engine = engine(spec.policies);
        let b_svid = mesh.svid("api");
        let inbound = vec![Inbound {
            listen: any_port(),
            port: 8080,
            forward_to: spec.app,
            protocol: spec.inbound,
        }];
        let b_snapshot = snapshot(&mesh, &b_svid, "api", engine.clone(), inbound, vec![]);
        let b = Sidecar::start_with(b_snapshot, spec.settings.clone()).await;
        let a_svid = mesh.svid("web");
        let outbound = vec![Outbound {
            listen: any_port(),
            service: "api.shop".into(),
            protocol: spec.outbound,
            endpoints: vec![Endpoint {
                address: b.inbound[0],
                identity: spec.expect.unwrap_or_else(|| id("api")),
            }],
            traffic: Default::default(),
        }];
        let a_snapshot = snapshot(&mesh, &a_svid, "web", engine, vec![], outbound);
        let a = Sidecar::start_with(a_snapshot, spec.settings).await;
        Pair { mesh, a, b }
    }

    /// Where the client app connects (A's outbound listener).
    pub fn client_addr(&self) -> SocketAddr {
        self.a.outbound[0]
    }

    /// Puts policies `yaml` in force at B.
    pub fn set_policies(&self, yaml: &str) {
        let engine = engine(yaml);
        self.b.update(|s| Snapshot {
            version: s.version,
            identity: s.identity.clone(),
            svid: s.svid.clone(),
            bundle: s.bundle.clone(),
            endpoint: engine.endpoint("shop/api").unwrap(),
            engine,
            inbound: s.inbound.clone(),
            outbound: s.outbound.clone(),
            access_log: s.access_log,
            waf: s.waf.clone(),
        });
    }

    /// Puts `waf` in force at B (none: no firewall).
    pub fn set_waf(&self, waf: Option<Arc<bulkhead_proxy::waf::Waf>>) {
        self.b.update(|s| Snapshot {
            version: s.version,
            identity: s.identity.clone(),
            svid: s.svid.clone(),
            bundle: s.bundle.clone(),
            endpoint: s.endpoint,
            engine: s.engine.clone(),
            inbound: s.inbound.clone(),
            outbound: s.outbound.clone(),
            access_log: s.access_log,
            waf,
        });
    }

    pub async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// Installs a test log subscriber once (`RUST_LOG` picks the level).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
