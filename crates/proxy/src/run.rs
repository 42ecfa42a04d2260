//! The entry point: bind every listener of the snapshot, accept until shutdown, follow
//! new snapshots, then drain.
//!
//! ```text
//! run(snapshots, metrics, access_log, shutdown)
//!   = Bound::bind(&snapshot)        every inbound and outbound listener (errors here are fatal)
//!     .serve(snapshots, ..)         one accept loop per listener; each connection reads the
//!                                   snapshot in force when it (or its request) arrives
//! ```
//!
//! A new snapshot changes policy and endpoints for the next connection and request without
//! touching established ones. When it changes the set of listen addresses, listeners that
//! disappeared stop accepting and drain, new ones are bound (a bind failure is logged and
//! that listener stays down; the proxy keeps serving the rest). On shutdown every listener
//! stops accepting, HTTP connections are asked to finish (GOAWAY / `Connection: close`),
//! and whatever is still open at [`Settings::drain_timeout`] is aborted.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_identity::SpiffeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::accesslog::AccessLog;
use crate::detect::DEFAULT_DETECT_TIMEOUT;
use crate::error::ProxyError;
use crate::forward::http::Sinks;
use crate::forward::pool::H2Pool;
use crate::metrics::{Direction, Metrics};
use crate::resilience::Upstream;
use crate::snapshot::{Inbound, Outbound, Snapshot};
use crate::{inbound, outbound};

/// Serves every listener of the current snapshot until `shutdown` completes; the call the
/// `bulkhead proxy` command makes. Fails only when a listener of the first snapshot
/// cannot be bound.
pub async fn run(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    access_log: Arc<AccessLog>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ProxyError> {
    let snapshot = snapshots.borrow().clone();
    Bound::bind(&snapshot)
        .await?
        .serve(snapshots, metrics, access_log, shutdown)
        .await;
    Ok(())
}

/// How long an opaque TCP or upgraded connection may carry nothing before it is closed,
/// unless [`Settings::idle_timeout`] says otherwise: an hour, as Envoy's TCP proxy; long
/// enough for quiet but live connections (pooled database connections, WebSockets with
/// sparse pings), short enough to reclaim those whose peer vanished without a FIN.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Limits and timeouts of the data path.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long protocol detection waits for the first bytes ([`DEFAULT_DETECT_TIMEOUT`]).
    pub detect_timeout: Duration,
    /// How long an mTLS handshake may take, either side.
    pub handshake_timeout: Duration,
    /// How long dialling an upstream sidecar or the app may take.
    pub connect_timeout: Duration,
    /// How long a client may take to send a request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Largest request head accepted (HTTP/1 buffer, HTTP/2 header list); larger → 431.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// How long an opaque TCP connection or an upgraded (WebSocket) stream may carry no
    /// bytes in either direction before both sides are closed ([`DEFAULT_IDLE_TIMEOUT`]);
    /// `None` never closes them.
    pub idle_timeout: Option<Duration>,
    /// Idle HTTP/1.1 connections kept to the app.
    pub max_idle_app_connections: usize,
    /// How long shutdown waits for in-flight requests and connections.
    pub drain_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            detect_timeout: DEFAULT_DETECT_TIMEOUT,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_concurrent_streams: 1024,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_idle_app_connections: 64,
            drain_timeout: Duration::from_secs(15),
        }
    }
}

/// Which snapshot entry a listener serves: its direction and configured address, and
/// for duplicates of one address (only port 0, which tests use) its position among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ListenerKey {
    pub(crate) direction: Direction,
    pub(crate) listen: SocketAddr,
    pub(crate) ordinal: usize,
}

impl ListenerKey {
    /// The inbound entry this listener serves in `snapshot`, if it is still there.
    pub(crate) fn inbound<'s>(&self, snapshot: &'s Snapshot) -> Option<&'s Inbound> {
        let mut same = snapshot.inbound.iter().filter(|i| i.listen == self.listen);
        same.nth(self.ordinal)
            .filter(|_| self.direction == Direction::Inbound)
    }

    /// The outbound entry this listener serves in `snapshot`, if it is still there.
    pub(crate) fn outbound<'s>(&self, snapshot: &'s Snapshot) -> Option<&'s Outbound> {
        let mut same = snapshot.outbound.iter().filter(|o| o.listen == self.listen);
        same.nth(self.ordinal)
            .filter(|_| self.direction == Direction::Outbound)
    }
}

/// Every listener of a snapshot, inbound first, in snapshot order.
pub(crate) fn listener_keys(snapshot: &Snapshot) -> Vec<ListenerKey> {
    let mut keys: Vec<ListenerKey> = Vec::new();
    let inbound = snapshot
        .inbound
        .iter()
        .map(|i| (Direction::Inbound, i.listen));
    let outbound = snapshot
        .outbound
        .iter()
        .map(|o| (Direction::Outbound, o.listen));
    for (direction, listen) in inbound.chain(outbound) {
        let ordinal = keys
            .iter()
            .filter(|k| k.direction == direction && k.listen == listen)
            .count();
        keys.push(ListenerKey {
            direction,
            listen,
            ordinal,
        });
    }
    keys
}

/// Listeners bound for a snapshot, not yet serving: read back the addresses (tests bind
/// `127.0.0.1:0`), then [`Bound::serve`].
pub struct Bound {
    listeners: Vec<(ListenerKey, TcpListener)>,
    settings: Settings,
}

impl Bound {
    /// Binds every inbound and outbound listener of `snapshot`.
    pub async fn bind(snapshot: &Snapshot) -> Result<Bound, ProxyError> {
        let mut listeners = Vec::new();
        for key in listener_keys(snapshot) {
            listeners.push((key, bind(key.listen).await?));
        }
        Ok(Bound {
            listeners,
            settings: Settings::default(),
        })
    }

    /// Replaces the default [`Settings`].
    pub fn with_settings(mut self, settings: Settings) -> Bound {
        self.settings = settings;
        self
    }

    /// The bound addresses of the inbound listeners, in snapshot order.
    pub fn inbound_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(Direction::Inbound)
    }

    /// The bound addresses of the outbound listeners, in snapshot order.
    pub fn outbound_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(Direction::Outbound)
    }

    fn addrs(&self, direction: Direction) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(k, _)| k.direction == direction)
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, then drains (see the module documentation).
    pub async fn serve(
        self,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
        metrics: Arc<Metrics>,
        access_log: Arc<AccessLog>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let ctx = Arc::new(Context::new(
            snapshots.clone(),
            Sinks {
                metrics,
                access_log,
            },
            self.settings,
        ));
        let mut running = Listeners::default();
        for (key, listener) in self.listeners {
            running.start(&ctx, key, listener);
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        // The source is gone: keep the last snapshot until shutdown.
                        shutdown.as_mut().await;
                        break;
                    }
                    snapshots.mark_unchanged();
                    running.reconcile(&ctx).await;
                }
            }
        }
        tracing::info!("shutting down: draining connections");
        running.stop_all().await;
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind { addr, source })
}

/// What every connection shares: the snapshot source, telemetry, settings, and the
/// caches and pools that outlive single connections.
pub(crate) struct Context {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(crate) sinks: Sinks,
    pub(crate) settings: Settings,
    pub(crate) server_tls: inbound::tls::ServerTls,
    pub(crate) connector: outbound::connect::Connector,
    /// HTTP/2 connections to upstream sidecars, by address and expected identity.
    pub(crate) mesh: H2Pool<(SocketAddr, SpiffeId)>,
    pub(crate) app: inbound::app::AppClient,
}

impl Context {
    fn new(snapshots: watch::Receiver<Arc<Snapshot>>, sinks: Sinks, settings: Settings) -> Context {
        Context {
            snapshots,
            sinks,
            server_tls: inbound::tls::ServerTls::default(),
            connector: outbound::connect::Connector::default(),
            mesh: H2Pool::new(),
            app: inbound::app::AppClient::new(settings.max_idle_app_connections),
            settings,
        }
    }

    /// The snapshot in force now.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }
}

/// Tells connections to finish: `true` once the listener is draining.
pub(crate) type Drain = watch::Receiver<bool>;

/// Completes once `drain` turns true (or its sender is gone).
pub(crate) async fn drained(drain: &mut Drain) {
    // The guard `wait_for` returns is not `Send`; drop it here, not across an await.
    let _ = drain.wait_for(|d| *d).await.map(|_| ());
}

/// A running accept loop.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The accept loops by listener, plus those draining after a snapshot removed them.
#[derive(Default)]
struct Listeners {
    running: HashMap<ListenerKey, Running>,
    retiring: Vec<JoinHandle<()>>,
}

impl Listeners {
    fn start(&mut self, ctx: &Arc<Context>, key: ListenerKey, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        let addr = listener.local_addr().ok();
        let span = tracing::info_span!(
            "listener",
            direction = key.direction.as_str(),
            listen = %key.listen,
            addr = ?addr,
        );
        let task = tokio::spawn(accept_loop(ctx.clone(), key, listener, stopped).instrument(span));
        self.running.insert(key, Running { stop, task });
    }

    /// Applies the listener set of the snapshot now in force.
    async fn reconcile(&mut self, ctx: &Arc<Context>) {
        let snapshot = ctx.snapshot();
        let wanted = listener_keys(&snapshot);
        let removed: Vec<ListenerKey> = self
            .running
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in removed {
            if let Some(r) = self.running.remove(&key) {
                tracing::info!(direction = key.direction.as_str(), listen = %key.listen,
                    version = snapshot.version, "listener removed by new snapshot; draining");
                let _ = r.stop.send(true);
                self.retiring.push(r.task);
            }
        }
        for key in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            match bind(key.listen).await {
                Ok(listener) => {
                    tracing::info!(direction = key.direction.as_str(), listen = %key.listen,
                        version = snapshot.version, "listener added by new snapshot");
                    self.start(ctx, key, listener);
                }
                Err(e) => tracing::error!(error = %e, version = snapshot.version,
                    "listener of the new snapshot not bound; it stays down"),
            }
        }
        self.retiring.retain(|t| !t.is_finished());
        prune_pools(ctx, &snapshot);
    }

    async fn stop_all(self) {
        let mut tasks = self.retiring;
        for (_, r) in self.running {
            let _ = r.stop.send(true);
            tasks.push(r.task);
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Forgets pooled connections to endpoints the snapshot no longer lists.
fn prune_pools(ctx: &Context, snapshot: &Snapshot) {
    ctx.mesh.retain(|(addr, id)| {
        snapshot
            .outbound
            .iter()
            .flat_map(|o| &o.endpoints)
            .any(|e| e.address == *addr && e.identity == *id)
    });
    ctx.connector.invalidate(snapshot.version);
}

/// Accepts until stopped, then drains this listener's connections.
async fn accept_loop(
    ctx: Arc<Context>,
    key: ListenerKey,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let (drain_tx, drain) = watch::channel(false);
    // The upstream's state lives as long as its listener, across snapshots.
    let upstream = (key.direction == Direction::Outbound).then(|| {
        ctx.sinks
            .metrics
            .upstreams()
            .upstream((key.listen, key.ordinal))
    });
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = drained(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(connection(ctx.clone(), key, tcp, peer, drain.clone(),
                        upstream.clone()));
                }
                Err(e) => accept_failed(&e).await,
            },
        }
    }
    drop(listener);
    let _ = drain_tx.send(true);
    let deadline = tokio::time::Instant::now() + ctx.settings.drain_timeout;
    while !conns.is_empty() {
        if tokio::time::timeout_at(deadline, conns.join_next())
            .await
            .is_err()
        {
            tracing::warn!(
                open = conns.len(),
                "drain deadline passed; aborting connections"
            );
            conns.abort_all();
            break;
        }
    }
}

async fn connection(
    ctx: Arc<Context>,
    key: ListenerKey,
    tcp: TcpStream,
    peer: SocketAddr,
    drain: Drain,
    upstream: Option<Arc<Upstream>>,
) {
    match (key.direction, upstream) {
        (Direction::Outbound, Some(up)) => outbound::serve(ctx, key, up, tcp, peer, drain).await,
        _ => inbound::serve(ctx, key, tcp, peer, drain).await,
    }
}

/// Accept errors are mostly resource exhaustion (EMFILE); pausing briefly lets
/// connections close instead of spinning on the error.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
