//! `bulkhead proxy --config FILE [--workers N] [--control-plane ADDR --token T]`: the
//! sidecar, standalone or under a control plane.
//!
//! Two runtimes, so that operator traffic never takes the data path's latency budget
//! (DESIGN.md §5): the data path runs on the calling thread (one worker, the default) or
//! on N worker threads; the admin listener, the configuration source and signal handling
//! run on a single-threaded runtime of their own thread. Start-up is ordered so that a bad
//! configuration fails before any socket is bound: config and identity, access log, admin
//! listener, data path listeners, then `/ready` turns 200.
//!
//! The configuration source is picked by `spec.controlPlane` (set in the file or by
//! `--control-plane`): without it, the file and the files it names are reloaded on SIGHUP
//! and on change ([`ConfigSource`]); with it, the certificate, policies and endpoints come
//! from the control plane ([`ControlledSource`]) and the file's local wiring (metadata,
//! serviceAccount, admin, accessLog, inbound, outbound) is read once at start, so changing
//! it needs a restart. In that mode nothing is bound until the proxy holds a certificate
//! and a first snapshot.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bulkhead_proxy::accesslog::AccessLog;
use bulkhead_proxy::admin::{AdminState, LogFilterHandle, bind_admin, serve_admin};
use bulkhead_proxy::config::{ControlPlaneOverrides, ProxyConfig};
use bulkhead_proxy::control::{ControlledSource, Options};
use bulkhead_proxy::load::{config_dir, load_config_with};
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::reload::{ConfigSource, DEFAULT_POLL_INTERVAL};
use bulkhead_proxy::run::Bound;
use bulkhead_proxy::snapshot::Snapshot;
use clap::Args;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// How long the access log may take to write out its queue at exit.
const ACCESS_LOG_FLUSH: Duration = Duration::from_secs(5);
/// The environment variable `--token` defaults to (keeps the token out of `ps`).
const TOKEN_ENV: &str = "BULKHEAD_JOIN_TOKEN";

/// `bulkhead proxy` flags.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The ProxyConfig file (YAML or JSON); relative paths in it are relative to it. Under
    /// a control plane it carries the local wiring only and is read once at start.
    #[arg(long)]
    config: PathBuf,
    /// Data-path worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
    /// Log filter (`info`, `debug`, `info,bulkhead_proxy=trace`); defaults to RUST_LOG, then
    /// `info`. Changeable at runtime through the admin listener's `/logging`.
    #[arg(long)]
    log_level: Option<String>,
    /// The control plane's `host:port`: get the certificate, policies and endpoints from it
    /// (sets spec.controlPlane.address).
    #[arg(long, value_name = "ADDR")]
    control_plane: Option<String>,
    /// The control plane API's CA certificate, PEM (sets spec.controlPlane.caFile).
    #[arg(long, value_name = "FILE")]
    control_plane_ca: Option<PathBuf>,
    /// The join token for the first certificate (sets spec.controlPlane.token); defaults
    /// to the BULKHEAD_JOIN_TOKEN environment variable.
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Drain and exit when the parent process goes away (how `bulkhead up` runs sidecars).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
}

/// Where snapshots come from.
enum Mode {
    /// A ProxyConfig file, reloaded on change.
    File(Arc<ConfigSource>),
    /// The control plane; the source is started on the control thread.
    Controlled(Box<ProxyConfig>),
}

/// Runs the sidecar until SIGTERM or Ctrl-C.
pub(crate) fn run(args: ProxyArgs) -> Result<ExitCode> {
    let filter = args
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let log_filter = init_tracing(&filter)?;
    let metrics = Metrics::new();
    // Exit 1 with the reason before any socket is bound.
    let (mode, config) = match select_mode(&args, &metrics) {
        Ok(selected) => selected,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let access_log = AccessLog::new(&config.spec.access_log, &config_dir(&args.config))?
        .with_metrics(Arc::clone(&metrics));
    let access_log = Arc::new(access_log);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (serving_tx, serving_rx) = watch::channel(false);
    let control = Control {
        base_dir: config_dir(&args.config),
        metrics: Arc::clone(&metrics),
        access_log: Arc::clone(&access_log),
        log_filter,
        serving: serving_rx,
        shutdown: shutdown_tx,
        exit_with_parent: args.exit_with_parent,
    };
    let started = match control.start(mode, config.spec.admin.listen)? {
        Some(started) => started,
        // Terminated while waiting for the control plane: nothing was bound.
        None => return Ok(ExitCode::SUCCESS),
    };
    let served = serve_data_path(
        &args,
        started.snapshots,
        metrics,
        &access_log,
        shutdown_rx,
        serving_tx,
    );
    // The admin listener answers (unready) until the data path has drained.
    let _ = started.stop.send(());
    if started.thread.join().is_err() {
        tracing::error!("the control thread panicked");
    }
    if !access_log.flush(ACCESS_LOG_FLUSH) {
        tracing::warn!("the access log could not be written out completely before exit");
    }
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Reads the config (with the control-plane flags applied) and picks the source; in file
/// mode the source also loads the identity and policies, so their errors come out here.
fn select_mode(args: &ProxyArgs, metrics: &Arc<Metrics>) -> Result<(Mode, ProxyConfig)> {
    let overrides = ControlPlaneOverrides {
        address: args.control_plane.clone(),
        // Relative to where the command runs, not to the config file.
        ca_file: args
            .control_plane_ca
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("--control-plane-ca")?,
        token: args.token.clone().or_else(|| {
            // An empty variable is as good as none (shells export empty values readily).
            std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())
        }),
    };
    let config = load_config_with(&args.config, &overrides)?;
    if config.spec.control_plane.is_some() {
        return Ok((Mode::Controlled(Box::new(config.clone())), config));
    }
    if args.token.is_some() || args.control_plane_ca.is_some() {
        return Err(anyhow!(
            "--token and --control-plane-ca need a control plane: add --control-plane ADDR \
             or spec.controlPlane to {}",
            args.config.display()
        ));
    }
    let source = ConfigSource::load(&args.config, Arc::clone(metrics))?;
    Ok((Mode::File(Arc::new(source)), config))
}

/// Sets up logging to standard error: JSON lines when it is not a terminal, key/value
/// text when it is; the filter can be replaced at runtime through the returned handle.
fn init_tracing(filter: &str) -> Result<LogFilterHandle> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter `{filter}`"))?;
    let (filter_layer, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter_layer);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = if std::io::stderr().is_terminal() {
        registry.with(fmt).try_init()
    } else {
        registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init()
    };
    installed.map_err(|e| anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(handle)
}

/// Binds the data path's listeners, then serves until shutdown is requested and every
/// connection has drained.
fn serve_data_path(
    args: &ProxyArgs,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    access_log: &Arc<AccessLog>,
    mut shutdown: watch::Receiver<bool>,
    serving: watch::Sender<bool>,
) -> Result<()> {
    let runtime = match args.workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .thread_name("bulkhead-data")
            .enable_all()
            .build(),
    }
    .context("cannot start the data-path runtime")?;
    let access_log = Arc::clone(access_log);
    runtime.block_on(async move {
        let bound = Bound::bind(&snapshots.borrow().clone()).await?;
        // Ready before the log line, so that whoever waits for the line finds it ready.
        serving.send_replace(true);
        tracing::info!(
            inbound = ?bound.inbound_addrs(),
            outbound = ?bound.outbound_addrs(),
            workers = args.workers,
            "data path listening"
        );
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            // Unready first, so load balancers stop sending while connections drain.
            serving.send_replace(false);
        };
        bound.serve(snapshots, metrics, access_log, stop).await;
        Ok(())
    })
}

/// What the control thread runs: admin listener, the configuration source, signals,
/// access log switch.
struct Control {
    base_dir: PathBuf,
    metrics: Arc<Metrics>,
    access_log: Arc<AccessLog>,
    log_filter: LogFilterHandle,
    serving: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    /// Also drain when the parent process goes away.
    exit_with_parent: bool,
}

/// The control thread, once the source has a snapshot and the admin listener is bound.
struct Started {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    thread: thread::JoinHandle<()>,
    /// Send to stop the thread.
    stop: tokio::sync::oneshot::Sender<()>,
}

/// What the control thread reports at start-up: the data path's input and the admin
/// address, or `None` when terminated before there was a snapshot.
type Report = Result<Option<(watch::Receiver<Arc<Snapshot>>, SocketAddr)>>;

impl Control {
    /// Starts the control thread and returns once the source has a first snapshot and the
    /// admin listener is bound (or either failed); `None` when SIGTERM came first.
    fn start(self, mode: Mode, admin: SocketAddr) -> Result<Option<Started>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the control runtime")?;
        let (report_tx, report_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("bulkhead-control".into())
            .spawn(move || runtime.block_on(self.serve(mode, admin, report_tx, stop_rx)))
            .context("cannot start the control thread")?;
        let report = report_rx
            .recv()
            .map_err(|_| anyhow!("the control thread stopped during start-up"));
        let snapshots = match report.and_then(|r| r) {
            Ok(Some((snapshots, addr))) => {
                tracing::info!(admin = %addr, "admin listener ready");
                snapshots
            }
            Ok(None) => {
                let _ = thread.join();
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(Started {
            snapshots,
            thread,
            stop: stop_tx,
        }))
    }

    async fn serve(
        self,
        mode: Mode,
        admin: SocketAddr,
        report: mpsc::Sender<Report>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        // Subscribed before anything is reported, so that no SIGTERM sent once the proxy
        // reports ready meets the default action, and one sent while waiting for the
        // control plane ends the wait.
        let mut terminated = Box::pin(stop_requested(self.exit_with_parent));
        let (sources, snapshots) = tokio::select! {
            () = &mut terminated => {
                tracing::info!("termination requested before the first snapshot");
                let _ = report.send(Ok(None));
                return;
            }
            started = self.sources(mode) => match started {
                Ok(started) => started,
                Err(e) => {
                    let _ = report.send(Err(e));
                    return;
                }
            },
        };
        let listener = match bind_admin(admin).await {
            Ok(listener) => listener,
            Err(e) => {
                let _ = report.send(Err(anyhow!("admin listener {admin}: {e}")));
                return;
            }
        };
        self.follow(&sources, &snapshots);
        let state = AdminState {
            snapshots: snapshots.clone(),
            metrics: Arc::clone(&self.metrics),
            log_filter: Some(self.log_filter.clone()),
            reload_status: sources.reload_status(),
            control_status: sources.control_status(),
            serving: Some(self.serving.clone()),
            apps: Some(Arc::default()),
        };
        let addr = listener.local_addr().map_err(Into::into);
        let _ = report.send(addr.map(|addr| Some((snapshots, addr))));
        tokio::spawn(async move {
            if let Err(e) = serve_admin(listener, state).await {
                tracing::error!(error = %e, "admin listener stopped");
            }
        });
        let shutdown = self.shutdown;
        tokio::spawn(async move {
            terminated.await;
            tracing::info!("termination requested: draining");
            shutdown.send_replace(true);
        });
        let _ = stop.await;
        // Keeps the control plane source (and its renewal) alive until the data path
        // has drained.
        drop(sources);
    }

    /// Starts what follows the snapshots: file reloading (SIGHUP is subscribed to here,
    /// before start-up is reported) and the access log switch.
    fn follow(&self, sources: &Sources, snapshots: &watch::Receiver<Arc<Snapshot>>) {
        if let Sources::File(source) = sources {
            let mut stopped = self.shutdown.subscribe();
            let reload_stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            tokio::spawn(Arc::clone(source).run(DEFAULT_POLL_INTERVAL, reload_stop));
        }
        tokio::spawn(Arc::clone(&self.access_log).follow(snapshots.clone()));
    }

    /// The source for `mode` and its snapshots; under a control plane this waits for a
    /// certificate and a first snapshot.
    async fn sources(&self, mode: Mode) -> Result<(Sources, watch::Receiver<Arc<Snapshot>>)> {
        match mode {
            Mode::File(source) => {
                let snapshots = source.subscribe();
                Ok((Sources::File(source), snapshots))
            }
            Mode::Controlled(config) => {
                let metrics = Arc::clone(&self.metrics);
                let source =
                    ControlledSource::start(*config, &self.base_dir, metrics, Options::default())
                        .await?;
                let snapshots = source.subscribe();
                Ok((Sources::Controlled(Box::new(source)), snapshots))
            }
        }
    }
}

/// The running source, kept on the control thread.
enum Sources {
    File(Arc<ConfigSource>),
    Controlled(Box<ControlledSource>),
}

impl Sources {
    fn reload_status(&self) -> Option<watch::Receiver<bulkhead_proxy::reload::ReloadStatus>> {
        match self {
            Sources::File(source) => Some(source.subscribe_status()),
            Sources::Controlled(_) => None,
        }
    }

    fn control_status(&self) -> Option<watch::Receiver<bulkhead_proxy::control::ControlStatus>> {
        match self {
            Sources::File(_) => None,
            Sources::Controlled(source) => Some(source.subscribe_status()),
        }
    }
}

/// How often `--exit-with-parent` checks the parent process.
#[cfg(unix)]
const PARENT_POLL: Duration = Duration::from_millis(500);

/// Completes on SIGTERM or SIGINT and, with `exit_with_parent`, when the parent process
/// goes away (the sidecar is re-parented).
#[cfg(unix)]
fn stop_requested(exit_with_parent: bool) -> impl std::future::Future<Output = ()> + Send {
    let terminated = termination();
    let parent = std::os::unix::process::parent_id();
    async move {
        let orphaned = async move {
            if !exit_with_parent {
                return std::future::pending::<()>().await;
            }
            loop {
                tokio::time::sleep(PARENT_POLL).await;
                if std::os::unix::process::parent_id() != parent {
                    tracing::info!(parent, "the parent process exited");
                    return;
                }
            }
        };
        tokio::select! {
            () = terminated => {}
            () = orphaned => {}
        }
    }
}

/// Completes on termination (no parent tracking off unix).
#[cfg(not(unix))]
fn stop_requested(_exit_with_parent: bool) -> impl std::future::Future<Output = ()> + Send {
    termination()
}

/// Subscribes to SIGTERM and SIGINT (Ctrl-C) now; the future completes on either.
#[cfg(unix)]
fn termination() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let subscribe = |kind: SignalKind, name: &'static str| {
        signal(kind)
            .inspect_err(|e| tracing::warn!(error = %e, signal = name, "cannot listen for signal"))
            .ok()
    };
    let term = subscribe(SignalKind::terminate(), "SIGTERM");
    let int = subscribe(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(term) => {}
            () = wait(int) => {}
        }
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn termination() -> impl std::future::Future<Output = ()> + Send {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
