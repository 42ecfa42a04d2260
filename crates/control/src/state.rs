//! What every request handler and every proxy stream shares: the store, the CA, the
//! cached mesh view, the proxy registry, metrics, and the notifications that wake the
//! proxy streams after a change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bulkhead_api::rest::ProxyStatus;
use bulkhead_identity::ca::CertificateAuthority;
use bulkhead_identity::{SpiffeId, TrustBundle, TrustDomain};
use bulkhead_store::{Event, Store};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::mesh::MeshView;
use crate::metrics::Metrics;

/// A change the proxy streams react to: a resource write or a registration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The store revision after the change.
    pub revision: u64,
    /// Bumped when a proxy registers, moves or is dropped (endpoints changed).
    pub topology: u64,
    /// When the change was committed: push latency is measured from here.
    pub at: Instant,
}

/// Shared control-plane state; one per process, behind an `Arc`.
pub struct Shared {
    /// The embedded store.
    pub store: Arc<Store>,
    /// The mesh CA (signs proxy CSRs).
    pub ca: CertificateAuthority,
    /// The trust bundle proxies and clients verify SVIDs against.
    pub bundle: TrustBundle,
    /// The mesh's trust domain.
    pub trust_domain: TrustDomain,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// When the server started.
    pub started: Instant,
    /// The latest change; proxy streams wait on it.
    changes: watch::Sender<Change>,
    /// Resource events for REST watchers (sent after the commit).
    events: broadcast::Sender<Arc<Event>>,
    /// The mesh view at the latest change (rebuilt lazily, once per change).
    view: RwLock<Option<Arc<MeshView>>>,
    /// Live status of every proxy seen since start, by instance.
    proxies: Mutex<BTreeMap<String, ProxyStatus>>,
    /// Held while a write validates against the store and commits, so that two writes
    /// never validate against the same old state.
    pub writes: Mutex<()>,
    /// Proxies whose status says connected (kept with `proxies`, under its lock).
    connected: std::sync::atomic::AtomicI64,
    /// The thread that runs the work which reads the whole store (write validation, view
    /// rebuilds). One thread, so that the tens of megabytes each such job allocates for a
    /// moment come from one malloc arena instead of raising the high-water mark of every
    /// blocking thread's arena.
    heavy: Mutex<std::sync::mpsc::Sender<HeavyJob>>,
    /// The lifetime of issued SVIDs (`None`: the CA's default), set once at start.
    svid_ttl: std::sync::OnceLock<Duration>,
}

/// A job for the heavy thread.
type HeavyJob = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store.path())
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state over an opened store and loaded CA.
    pub fn new(
        store: Arc<Store>,
        ca: CertificateAuthority,
        bundle: TrustBundle,
    ) -> Result<Arc<Shared>, ApiError> {
        let revision = store.revision()?;
        let (changes, _) = watch::channel(Change {
            revision,
            topology: 0,
            at: Instant::now(),
        });
        let (events, _) = broadcast::channel(4096);
        Ok(Arc::new(Shared {
            trust_domain: ca.trust_domain().clone(),
            store,
            ca,
            bundle,
            metrics: Metrics::new(),
            started: Instant::now(),
            changes,
            events,
            view: RwLock::new(None),
            proxies: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(()),
            connected: std::sync::atomic::AtomicI64::new(0),
            heavy: Mutex::new(spawn_heavy()?),
            svid_ttl: std::sync::OnceLock::new(),
        }))
    }

    /// Sets the lifetime of issued SVIDs (`None`: the CA's default); only the first call
    /// with a value counts.
    pub fn set_svid_ttl(&self, ttl: Option<Duration>) {
        if let Some(ttl) = ttl {
            let _ = self.svid_ttl.set(ttl);
        }
    }

    /// The lifetime of issued SVIDs; `None` means the CA's default.
    pub fn svid_ttl(&self) -> Option<Duration> {
        self.svid_ttl.get().copied()
    }

    /// A receiver of changes (the proxy streams' wake-up).
    pub fn subscribe_changes(&self) -> watch::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A receiver of resource events (REST watch).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Publishes committed resource events and wakes the proxy streams.
    pub fn committed(&self, revision: u64, events: Vec<Event>) {
        for event in events {
            let _ = self.events.send(Arc::new(event));
        }
        self.changes.send_modify(|c| {
            c.revision = c.revision.max(revision);
            c.at = Instant::now();
        });
    }

    /// Records that the set of registered endpoints changed and wakes the proxy streams.
    pub fn topology_changed(&self) {
        self.changes.send_modify(|c| {
            c.topology += 1;
            c.at = Instant::now();
        });
    }

    /// The mesh view for the latest change if it is already built (never blocks for a build).
    pub fn cached_view(&self) -> Option<Arc<MeshView>> {
        let change = *self.changes.borrow();
        let slot = self.view.read().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|v| v.revision == change.revision && v.topology == change.topology)
            .map(Arc::clone)
    }

    /// The mesh view for the latest change, built once per change.
    pub fn view(&self) -> Result<Arc<MeshView>, ApiError> {
        if let Some(view) = self.cached_view() {
            return Ok(view);
        }
        let change = *self.changes.borrow();
        let mut slot = self.view.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(view) = slot.as_ref()
            && view.revision == change.revision
            && view.topology == change.topology
        {
            return Ok(Arc::clone(view));
        }
        let started = Instant::now();
        // A topology-only change reuses the previous view's parsed resources.
        let view = MeshView::rebuild(self, change.revision, change.topology, slot.as_deref())?;
        let view = Arc::new(view);
        self.metrics.observe_view_build(started.elapsed());
        *slot = Some(Arc::clone(&view));
        Ok(view)
    }

    /// Updates (or creates) the live status of a proxy.
    pub fn update_proxy(&self, instance: &str, update: impl FnOnce(&mut ProxyStatus)) {
        let mut proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        let status = proxies
            .entry(instance.to_owned())
            .or_insert_with(|| ProxyStatus {
                instance: instance.to_owned(),
                workload: String::new(),
                identity: String::new(),
                connected: false,
                applied_version: 0,
                sent_version: 0,
                last_nack: None,
                last_seen: crate::rfc3339(SystemTime::now()),
                cert_expiry: None,
                inbound: Vec::new(),
            });
        let was = status.connected;
        update(status);
        let delta = i64::from(status.connected) - i64::from(was);
        if delta != 0 {
            let now = self
                .connected
                .fetch_add(delta, std::sync::atomic::Ordering::Relaxed)
                + delta;
            self.metrics.set_proxies_connected(now);
        }
    }

    /// Runs `job` on the heavy thread (see the field) and waits for its result without
    /// blocking the runtime.
    pub async fn heavy<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let wrapped: HeavyJob = Box::new(move || {
            let _ = tx.send(job());
        });
        let sent = self
            .heavy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(wrapped);
        if sent.is_err() {
            return Err(ApiError::Internal("the store worker thread stopped".into()));
        }
        rx.await
            .map_err(|_| ApiError::Internal("a store worker job panicked".into()))
    }

    /// Every proxy's status, sorted by instance.
    pub fn proxies(&self) -> Vec<ProxyStatus> {
        let proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        proxies.values().cloned().collect()
    }

    /// The SPIFFE ID of `namespace`/`service_account` in this mesh.
    pub fn spiffe_id(&self, namespace: &str, service_account: &str) -> Result<SpiffeId, ApiError> {
        SpiffeId::for_workload(&self.trust_domain, namespace, service_account).map_err(|e| {
            ApiError::invalid(format!(
                "`{namespace}`/`{service_account}` does not make a valid SPIFFE ID: {e}"
            ))
        })
    }
}

/// Starts the heavy thread; it ends when `Shared` (the sender) is dropped.
fn spawn_heavy() -> Result<std::sync::mpsc::Sender<HeavyJob>, ApiError> {
    let (tx, rx) = std::sync::mpsc::channel::<HeavyJob>();
    std::thread::Builder::new()
        .name("bulkhead-store-worker".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        })
        .map_err(|e| ApiError::Internal(format!("cannot start the store worker thread: {e}")))?;
    Ok(tx)
}
