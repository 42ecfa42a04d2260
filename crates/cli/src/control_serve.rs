//! `bulkhead control --data-dir DIR`: runs the control plane until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bulkhead_control::{Bootstrap, Options, Server};
use clap::Args;
use tracing_subscriber::EnvFilter;

/// Flags of `bulkhead control` (serving).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where the store, the CA and the API's TLS material live (created on first start).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The TLS listener for the REST and gRPC APIs.
    #[arg(long, default_value = "127.0.0.1:15010")]
    listen: SocketAddr,
    /// Use this CA directory (as `bulkhead cert init` writes it) instead of DATA/ca.
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// The trust domain (first start only; later starts check it).
    #[arg(long)]
    trust_domain: Option<String>,
    /// Extra DNS name or IP address for the API's serving certificate (repeatable).
    #[arg(long = "san")]
    sans: Vec<String>,
    /// On first start, also write a CLI context file (address, API CA, admin token).
    #[arg(long)]
    context_out: Option<PathBuf>,
    /// Seconds a disconnected proxy's endpoints stay registered.
    #[arg(long, default_value_t = 600)]
    registration_ttl: u64,
    /// Lifetime of the certificates (SVIDs) issued to proxies, e.g. `1h`, `60s` (at least
    /// 30s; proxies renew at half of it). Default: the CA's, 24h.
    #[arg(long, value_name = "DURATION", value_parser = crate::cert::parse_duration)]
    svid_ttl: Option<Duration>,
    /// Log filter (`info`, `debug`, ...); defaults to RUST_LOG, then `info`.
    #[arg(long)]
    log_level: Option<String>,
}

/// Runs the control plane.
pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    let Some(data_dir) = args.data_dir.clone() else {
        return Err(anyhow!(
            "--data-dir is required to run the control plane (or use `bulkhead control status`)"
        ));
    };
    init_tracing(args.log_level.as_deref())?;
    let mut options = Options::new(data_dir);
    options.listen = args.listen;
    options.ca_dir = args.ca_dir.clone();
    options.trust_domain = args.trust_domain.clone();
    options.sans = args.sans.clone();
    options.registration_ttl = Duration::from_secs(args.registration_ttl);
    options.svid_ttl = args.svid_ttl;
    // A bounded blocking pool: each thread that allocates keeps a malloc arena of its own,
    // so hundreds of short-lived blocking threads during a proxy ramp would each hold
    // memory long after (see BENCHMARKS.md, Control plane).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bulkhead-control")
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(args, options))
}

async fn serve(args: ServeArgs, options: Options) -> Result<ExitCode> {
    let boot = match Bootstrap::open(&options) {
        Ok(boot) => boot,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let config = boot.tls.server_config(boot.shared.bundle.clone())?;
    let server = Server::bind(Arc::clone(&boot.shared), config, options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = server.local_addr()?;
    let url = format!("https://{addr}");
    announce(&args, &boot, &url)?;
    bulkhead_control::proxyapi::spawn_registration_gc(
        Arc::clone(&boot.shared),
        options.registration_ttl,
    );
    tracing::info!(listen = %addr, data_dir = %options.data_dir.display(), "control plane serving");
    server.serve(termination()).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Prints the first start's admin token (once) and writes the context file.
fn announce(args: &ServeArgs, boot: &Bootstrap, url: &str) -> Result<()> {
    match (&boot.admin_token, &args.context_out) {
        (Some(token), context) => {
            println!("admin token (shown once; the store keeps only its hash): {token}");
            if let Some(path) = context {
                crate::context::write_context(path, url, &boot.tls.ca_pem, token)?;
                println!("context written to {}", path.display());
            }
        }
        (None, Some(path)) => tracing::warn!(
            context = %path.display(),
            "--context-out is only written on the first start, when the admin token is \
             known; create a token with `bulkhead token create` for a new context"
        ),
        (None, None) => {}
    }
    println!("control plane listening on {url}");
    Ok(())
}

fn init_tracing(level: Option<&str>) -> Result<()> {
    let filter = level
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter =
        EnvFilter::try_new(&filter).with_context(|| format!("invalid log filter `{filter}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    installed.map_err(|e| anyhow!("cannot install the log subscriber: {e}"))
}

/// Completes on SIGTERM or SIGINT.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
