//! Controlled mode: the proxy gets its certificate and its configuration from the control
//! plane (`bulkhead proxy --config FILE --control-plane ADDR --token T`, protocol in
//! docs/control-plane.md). The config file still carries the local wiring (metadata,
//! serviceAccount, admin, access log, inbound and outbound listeners) and is read once at
//! start; policies, endpoints and the trust bundle arrive as snapshots.
//!
//! Phases, one module each:
//! - [`address`]: `host:port` of the control plane;
//! - `connect`: gRPC over our own TLS 1.3 connector (server verified against `caFile`,
//!   the current SVID as client certificate on every new connection);
//! - `certify`: the first certificate bought with the join token, renewals through
//!   [`SvidSource::spawn_renewal`];
//! - `stream`: `Watch`, ACK/NACK, reconnection with `backoff`;
//! - `build`: a snapshot message into the data path's [`Snapshot`], through the same
//!   code as file mode;
//! - `state`: the last good snapshot and identity in `stateDir`.
//!
//! Nothing is bound until [`ControlledSource::start`] returns: it waits for a certificate
//! and a first snapshot (or, with `stateDir`, falls back to the persisted ones when the
//! control plane cannot be reached). After that the proxy never stops serving because of
//! the control plane: a lost connection keeps the last good snapshot and certificate.

pub mod address;
mod backoff;
mod build;
mod certify;
mod connect;
mod error;
mod state;
mod stream;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_identity::rotation::{RenewalConfig, SvidSource};
use bulkhead_identity::verify::{BundleHandle, verify_svid_chain};
use bulkhead_identity::{SpiffeId, TrustBundle, TrustDomain};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use backoff::BackoffConfig;
pub use error::{ControlError, SnapshotError};
pub use state::SNAPSHOT_FILE;

use crate::config::{ControlPlaneSpec, ProxyConfig};
use crate::metrics::Metrics;
use crate::reload::unix_seconds;
use crate::snapshot::Snapshot;
use address::Address;
use certify::{Renewer, join_with_retries};
use connect::Client;
use state::{PersistedIdentity, StateDir};
use stream::Watcher;

/// Timing of the controlled mode; the defaults follow docs/control-plane.md.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reconnection (and first-certificate) delays: 0.5 s doubling to 30 s, ± 20 %.
    pub backoff: BackoffConfig,
    /// Certificate renewal: at 50 % ± 10 % of the lifetime, retried with backoff.
    pub renewal: RenewalConfig,
    /// With a persisted snapshot, how long start-up waits for the control plane's before
    /// serving the persisted one (a refused connection falls back at once).
    pub startup_timeout: Duration,
    /// How long a stream must stay up, without delivering anything, to count as healthy
    /// and reset the backoff (a stream that delivers a snapshot always does).
    pub healthy_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backoff: BackoffConfig::default(),
            renewal: RenewalConfig::default(),
            startup_timeout: Duration::from_secs(10),
            healthy_after: Duration::from_secs(10),
        }
    }
}

/// The controlled mode's state, for `/config` and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStatus {
    /// `host:port` of the control plane.
    pub address: String,
    /// Whether a `Watch` stream is open now.
    pub connected: bool,
    /// Version of the snapshot in force (0: none yet).
    pub applied_version: u64,
    /// Hash of the snapshot in force.
    pub applied_hash: String,
    /// Whether the snapshot in force was read from `stateDir` at start (the control plane
    /// was unreachable, or has had nothing newer since).
    pub from_state_dir: bool,
    /// The last connection or stream failure, if any.
    pub last_error: Option<String>,
    /// Why the last snapshot was refused, until a later one is applied.
    pub last_nack: Option<String>,
    /// Snapshots refused so far.
    pub rejected: u64,
    /// `Watch` streams opened so far (1 + reconnections).
    pub streams: u64,
    /// notAfter of the certificate in force, seconds since the Unix epoch.
    pub cert_expiry_unix: i64,
}

/// What the background tasks share.
pub(crate) struct Context {
    pub(crate) config: Arc<ProxyConfig>,
    pub(crate) client: Arc<Client>,
    pub(crate) svid: Arc<SvidSource>,
    pub(crate) bundle: BundleHandle,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) status: watch::Sender<ControlStatus>,
    pub(crate) state: Option<StateDir>,
    pub(crate) options: Options,
}

/// The snapshot source of a proxy under a control plane: what [`crate::reload::ConfigSource`]
/// is in standalone mode. Dropping it stops following the control plane (the data path
/// keeps the last snapshot).
pub struct ControlledSource {
    config: Arc<ProxyConfig>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    status: watch::Receiver<ControlStatus>,
    svid: Arc<SvidSource>,
    tasks: Tasks,
}

impl ControlledSource {
    /// Joins the control plane as `config` (validated by
    /// [`crate::load::load_config_with`], with `spec.controlPlane` set) describes, and
    /// returns once a certificate and a first snapshot are in hand. Background tasks
    /// (watch, renewal) run on the calling runtime. Fails when the configuration's files
    /// are unusable, when the control plane refuses the join token, or when there is no
    /// credential at all; an unreachable control plane is waited for.
    pub async fn start(
        config: ProxyConfig,
        base_dir: &Path,
        metrics: Arc<Metrics>,
        options: Options,
    ) -> Result<ControlledSource, ControlError> {
        let setup = Setup::read(&config, base_dir)?;
        let (identity, fallback) = setup.load_persisted();
        let (svid, bundle) = setup.identity(identity, &options).await?;
        let bundle = BundleHandle::new(bundle).map_err(|e| ControlError::BadCertificate {
            address: setup.client.address().to_string(),
            message: format!("trust bundle: {e}"),
        })?;
        let (status, status_rx) = watch::channel(ControlStatus {
            address: setup.client.address().to_string(),
            ..ControlStatus::default()
        });
        let mut tasks = Tasks(Vec::new());
        let renewer = Renewer {
            client: Arc::clone(&setup.client),
            svid: Arc::clone(&svid),
            bundle: bundle.clone(),
            state: setup.state.clone(),
        };
        tasks
            .0
            .push(svid.spawn_renewal(Arc::new(renewer), options.renewal.clone()));
        let follow = follow_certificate(Arc::clone(&svid), Arc::clone(&metrics), status.clone());
        tasks.0.push(tokio::spawn(follow));
        let config = Arc::new(config);
        let ctx = Arc::new(Context {
            config: Arc::clone(&config),
            client: setup.client,
            svid: Arc::clone(&svid),
            bundle,
            metrics,
            status,
            state: setup.state,
            options,
        });
        let (first_tx, first_rx) = oneshot::channel();
        let watcher = Watcher::new(ctx, first_tx);
        tasks.0.push(tokio::spawn(watcher.run(fallback)));
        let snapshots = first_rx.await.map_err(|_| ControlError::Stopped)?;
        Ok(ControlledSource {
            config,
            snapshots,
            status: status_rx,
            svid,
            tasks,
        })
    }

    /// A receiver of every applied snapshot (the data path's and admin's input).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver of the connection state (for `/config`).
    pub fn subscribe_status(&self) -> watch::Receiver<ControlStatus> {
        self.status.clone()
    }

    /// The connection state now.
    pub fn status(&self) -> ControlStatus {
        self.status.borrow().clone()
    }

    /// The local wiring, as read at start (it is not reloaded in controlled mode).
    pub fn config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&self.config)
    }

    /// The proxy's SVID source (renewed in place).
    pub fn svid(&self) -> &Arc<SvidSource> {
        &self.svid
    }

    /// Stops following the control plane and renewing; the last snapshot stays readable.
    pub fn stop(&mut self) {
        self.tasks.abort();
    }
}

impl std::fmt::Debug for ControlledSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlledSource")
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

/// Background tasks, aborted when dropped (also when `start` is abandoned half-way).
struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    fn abort(&mut self) {
        for task in self.0.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort();
    }
}

/// What `spec.controlPlane` resolves to.
struct Setup {
    client: Arc<Client>,
    id: SpiffeId,
    token: Option<String>,
    state: Option<StateDir>,
}

impl Setup {
    fn read(config: &ProxyConfig, base_dir: &Path) -> Result<Setup, ControlError> {
        let cp = config
            .spec
            .control_plane
            .as_ref()
            .ok_or_else(|| field("spec.controlPlane", "missing".into()))?;
        let address = Address::parse(&cp.address)
            .map_err(|e| field("spec.controlPlane.address", e.to_string()))?;
        let client = Client::new(address, &base_dir.join(&cp.ca_file))?;
        let trust_domain = TrustDomain::new(&cp.trust_domain)
            .map_err(|e| field("spec.controlPlane.trustDomain", e.to_string()))?;
        let namespace = config.metadata.namespace_or_default();
        let id = SpiffeId::for_workload(&trust_domain, namespace, &config.spec.service_account)
            .map_err(|e| field("spec.serviceAccount", format!("no valid SPIFFE ID: {e}")))?;
        let state = match &cp.state_dir {
            Some(dir) => Some(StateDir::open(base_dir.join(dir))?),
            None => None,
        };
        Ok(Setup {
            client: Arc::new(client),
            id,
            token: read_token(cp, base_dir)?,
            state,
        })
    }

    /// The persisted identity and snapshot; unreadable ones are logged and skipped (the
    /// proxy then joins afresh, which is what it would do without them).
    fn load_persisted(
        &self,
    ) -> (
        Option<PersistedIdentity>,
        Option<bulkhead_api::proxy::Snapshot>,
    ) {
        let Some(state) = &self.state else {
            return (None, None);
        };
        let identity = state
            .load_identity(self.id.trust_domain())
            .inspect_err(|e| tracing::warn!(error = %e, "persisted certificate not loaded"))
            .ok()
            .flatten();
        let snapshot = state
            .load_snapshot()
            .inspect_err(|e| tracing::warn!(error = %e, "persisted snapshot not loaded"))
            .ok()
            .flatten();
        (identity, snapshot)
    }

    /// A usable persisted certificate, or a new one bought with the join token.
    async fn identity(
        &self,
        persisted: Option<PersistedIdentity>,
        options: &Options,
    ) -> Result<(Arc<SvidSource>, TrustBundle), ControlError> {
        let reason = match persisted.map(|p| usable(p, &self.id)) {
            Some(Ok(found)) => {
                tracing::info!(spiffe_id = %self.id, "using the certificate persisted in stateDir");
                return Ok(found);
            }
            Some(Err(reason)) => reason,
            None if self.state.is_some() => "no certificate persisted in stateDir".to_owned(),
            None => "no stateDir to keep a certificate in".to_owned(),
        };
        let Some(token) = &self.token else {
            return Err(ControlError::NoCredential { reason });
        };
        tracing::info!(address = %self.client.address(), spiffe_id = %self.id, %reason,
            "joining the control plane with the join token");
        let joined = join_with_retries(&self.client, &self.id, token, &options.backoff).await?;
        if let Some(state) = &self.state {
            let saved = state.save_identity(
                &joined.certified.chain_pem(),
                &joined.key_pem,
                &joined.certified.bundle.to_pem(),
            );
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot persist the certificate");
            }
        }
        tracing::info!(spiffe_id = %self.id, "certificate issued by the control plane");
        Ok((joined.svid, joined.certified.bundle))
    }
}

/// A persisted certificate that still verifies for `id`, or why not.
fn usable(
    persisted: PersistedIdentity,
    id: &SpiffeId,
) -> Result<(Arc<SvidSource>, TrustBundle), String> {
    let chain = persisted.chain.clone();
    let svid = SvidSource::new(chain, persisted.key)
        .map_err(|e| format!("the certificate persisted in stateDir is unusable: {e}"))?;
    verify_svid_chain(
        &persisted.chain,
        &persisted.bundle,
        SystemTime::now(),
        Some(id),
    )
    .map_err(|e| format!("the certificate persisted in stateDir cannot be used: {e}"))?;
    Ok((svid, persisted.bundle))
}

fn field(field: &str, message: String) -> ControlError {
    ControlError::Field {
        field: field.to_owned(),
        message,
    }
}

/// `token`, or the trimmed contents of `tokenFile`.
fn read_token(cp: &ControlPlaneSpec, base_dir: &Path) -> Result<Option<String>, ControlError> {
    if let Some(token) = &cp.token {
        return Ok(Some(token.trim().to_owned()));
    }
    let Some(file) = &cp.token_file else {
        return Ok(None);
    };
    let path = base_dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| ControlError::File {
        field: "tokenFile",
        path: path.clone(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(Some(text.trim().to_owned()))
}

/// Exports every installed certificate's expiry (metrics, `/config`).
async fn follow_certificate(
    svid: Arc<SvidSource>,
    metrics: Arc<Metrics>,
    status: watch::Sender<ControlStatus>,
) {
    let mut changes = svid.subscribe();
    loop {
        let expiry = unix_seconds(changes.borrow_and_update().not_after);
        metrics.set_certificate_expiry(expiry);
        status.send_modify(|s| s.cert_expiry_unix = expiry);
        if changes.changed().await.is_err() {
            return;
        }
    }
}
