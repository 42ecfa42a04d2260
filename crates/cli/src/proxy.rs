//! `bulkhead proxy --config FILE [--workers N]`: the sidecar in standalone mode.
//!
//! Two runtimes, so that operator traffic never takes the data path's latency budget
//! (DESIGN.md §5): the data path runs on the calling thread (one worker, the default) or
//! on N worker threads; the admin listener, configuration reloading and signal handling
//! run on a single-threaded runtime of their own thread. Start-up is ordered so that a bad
//! configuration fails before any socket is bound: config and identity, access log, admin
//! listener, data path listeners, then `/ready` turns 200.

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
use bulkhead_proxy::load::config_dir;
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::reload::{ConfigSource, DEFAULT_POLL_INTERVAL};
use bulkhead_proxy::run::Bound;
use clap::Args;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// How long the access log may take to write out its queue at exit.
const ACCESS_LOG_FLUSH: Duration = Duration::from_secs(5);

/// `bulkhead proxy` flags.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The ProxyConfig file (YAML or JSON); relative paths in it are relative to it.
    #[arg(long)]
    config: PathBuf,
    /// Data-path worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
    /// Log filter (`info`, `debug`, `info,bulkhead_proxy=trace`); defaults to RUST_LOG, then
    /// `info`. Changeable at runtime through the admin listener's `/logging`.
    #[arg(long)]
    log_level: Option<String>,
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
    let source = match ConfigSource::load(&args.config, Arc::clone(&metrics)) {
        Ok(source) => Arc::new(source),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let config = source.config();
    let access_log = AccessLog::new(&config.spec.access_log, &config_dir(&args.config))?
        .with_metrics(Arc::clone(&metrics));
    let access_log = Arc::new(access_log);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (serving_tx, serving_rx) = watch::channel(false);
    let control = Control {
        source: Arc::clone(&source),
        metrics: Arc::clone(&metrics),
        access_log: Arc::clone(&access_log),
        log_filter,
        serving: serving_rx,
        shutdown: shutdown_tx,
    };
    let (control_thread, stop_control) = control.start(config.spec.admin.listen)?;
    let served = serve_data_path(
        &args,
        &source,
        metrics,
        &access_log,
        shutdown_rx,
        serving_tx,
    );
    // The admin listener answers (unready) until the data path has drained.
    let _ = stop_control.send(());
    if control_thread.join().is_err() {
        tracing::error!("the control thread panicked");
    }
    if !access_log.flush(ACCESS_LOG_FLUSH) {
        tracing::warn!("the access log could not be written out completely before exit");
    }
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
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
    source: &ConfigSource,
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
    let snapshots = source.subscribe();
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

/// What the control thread runs: admin listener, reloading, signals, access log switch.
struct Control {
    source: Arc<ConfigSource>,
    metrics: Arc<Metrics>,
    access_log: Arc<AccessLog>,
    log_filter: LogFilterHandle,
    serving: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
}

impl Control {
    /// Starts the control thread and returns once the admin listener is bound (or failed
    /// to bind); send on the returned channel to stop the thread.
    fn start(
        self,
        admin: SocketAddr,
    ) -> Result<(thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the control runtime")?;
        let (bound_tx, bound_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("bulkhead-control".into())
            .spawn(move || runtime.block_on(self.serve(admin, bound_tx, stop_rx)))
            .context("cannot start the control thread")?;
        match bound_rx.recv() {
            Ok(Ok(addr)) => tracing::info!(admin = %addr, "admin listener ready"),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(anyhow!("the control thread stopped during start-up")),
        }
        Ok((thread, stop_tx))
    }

    async fn serve(
        self,
        admin: SocketAddr,
        bound: mpsc::Sender<Result<SocketAddr>>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let listener = match bind_admin(admin).await {
            Ok(listener) => listener,
            Err(e) => {
                let _ = bound.send(Err(anyhow!("admin listener {admin}: {e}")));
                return;
            }
        };
        let state = AdminState {
            snapshots: self.source.subscribe(),
            metrics: self.metrics,
            log_filter: Some(self.log_filter),
            reload_status: Some(self.source.subscribe_status()),
            serving: Some(self.serving),
        };
        let mut stopped = self.shutdown.subscribe();
        let reload_stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        // Both subscribe to their signals here, before start-up is reported, so that no
        // SIGHUP or SIGTERM sent once the proxy reports ready meets the default action.
        let reloading = Arc::clone(&self.source).run(DEFAULT_POLL_INTERVAL, reload_stop);
        let terminated = termination();
        tokio::spawn(reloading);
        tokio::spawn(Arc::clone(&self.access_log).follow(self.source.subscribe()));
        let _ = bound.send(listener.local_addr().map_err(Into::into));
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
    }
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
