//! `bulkhead-bench-control`: the control-plane benchmark.
//!
//! Starts a real `bulkhead control` process (so that its memory is its own), loads a
//! generated mesh over the REST API (5,000 Workloads in 50 namespaces with Services and
//! policies), certifies and connects 1,000 simulated proxies (lightweight tonic clients in
//! this process, each with its own SVID and TLS 1.3 connection), then measures push
//! latency: the time from sending a policy change to each concerned proxy receiving the
//! new snapshot, for mesh-wide changes (every proxy) and namespace changes (~20 proxies).
//! It also reads the control plane's own histograms from `/metrics` and its resident
//! memory from `/proc`. `--json` prints the results as JSON on stdout (the table goes to
//! stderr). Everything runs on 127.0.0.1; every wait is bounded.

mod control;
mod fleet;
mod grpc;
mod mesh;
mod metrics;
mod proxies;
mod push;
mod report;
mod rest;
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::sync::mpsc;

use crate::control::{ControlPlane, Memory};
use crate::fleet::Fleet;
use crate::mesh::Layout;
use crate::metrics::Scrape;
use crate::proxies::Target;
use crate::push::Push;
use crate::rest::Rest;

/// Control-plane benchmark: push latency, snapshot builds and memory at 1,000 proxies.
#[derive(Debug, Clone, Parser)]
#[command(name = "bulkhead-bench-control", version)]
pub(crate) struct Args {
    /// The `bulkhead` binary to run as control plane.
    #[arg(long, default_value = "target/release/bulkhead")]
    bulkhead: PathBuf,
    /// Namespaces in the mesh.
    #[arg(long, default_value_t = 50)]
    namespaces: usize,
    /// Workloads per namespace (a Service per 5).
    #[arg(long, default_value_t = 100)]
    workloads_per_namespace: usize,
    /// Simulated proxies (spread evenly over the namespaces).
    #[arg(long, default_value_t = 1000)]
    proxies: usize,
    /// Proxies certifying or connecting at the same time during the ramp.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Namespaces per apply request while loading the mesh.
    #[arg(long, default_value_t = 5)]
    namespaces_per_batch: usize,
    /// Rounds of (mesh-wide change, namespace change).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Worker threads of this process's runtime (the simulated proxies).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Revision to record in the results (control.sh passes `git describe`).
    #[arg(long)]
    commit: Option<String>,
    /// `KEY=VALUE` added to the control plane's environment (repeatable), e.g.
    /// `MALLOC_ARENA_MAX=2`.
    #[arg(long = "control-env", value_parser = parse_env)]
    control_env: Vec<(String, String)>,
    /// Keep the control plane's data directory and log (the path is printed).
    #[arg(long)]
    keep: bool,
    /// Print results as JSON on stdout; the human table goes to stderr.
    #[arg(long)]
    json: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}`: expected KEY=VALUE")),
    }
}

impl Args {
    fn layout(&self) -> Layout {
        Layout {
            namespaces: self.namespaces,
            workloads_per_namespace: self.workloads_per_namespace,
            proxies: self.proxies,
        }
    }
}

/// Everything measured, for the report.
pub(crate) struct Run {
    pub(crate) layout: Layout,
    pub(crate) objects: usize,
    pub(crate) load_s: f64,
    pub(crate) batch_ms: Vec<f64>,
    pub(crate) join_tokens: usize,
    pub(crate) join_tokens_s: f64,
    pub(crate) certify_s: f64,
    pub(crate) certify_ms: Vec<f64>,
    pub(crate) connect_s: f64,
    pub(crate) first_snapshot_ms: Vec<f64>,
    pub(crate) quiet_after_ramp_s: f64,
    pub(crate) ramp_snapshots: u64,
    pub(crate) snapshot_bytes: Vec<f64>,
    pub(crate) pushes: Vec<Push>,
    /// The control plane's memory at each phase's end.
    pub(crate) memory: Vec<(&'static str, Memory)>,
    /// `/metrics` after loading, after the ramp, after the pushes.
    pub(crate) scrapes: Vec<Scrape>,
    /// This process's memory and CPU time at the end (the 1,000 simulated proxies).
    pub(crate) client_memory: Memory,
    /// Share of the machine's CPU time, during the run, used by processes other than the
    /// control plane and this benchmark (noise).
    pub(crate) other_cpu_share: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    args.layout().check()?;
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let run = runtime.block_on(async {
        tokio::select! {
            run = run(&args) => run,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })?;
    let results = report::results(&args, &run);
    let table = report::table(&results);
    if args.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

/// The whole benchmark; the control plane is stopped when this returns or is dropped.
async fn run(args: &Args) -> Result<Run> {
    let layout = args.layout();
    let (busy_before, total_before) = control::machine_cpu()?;
    let bench_before = Memory::of("/proc/self")?.cpu_s;
    let mut cp = ControlPlane::start(&args.bulkhead, args.keep, &args.control_env)?;
    eprintln!("control plane pid {} on {}", cp.pid(), cp.addr);
    let mut memory = vec![("started", cp.memory()?)];
    let roots = rest::roots(&cp.ca_pem)?;
    let rest = Rest::new(cp.addr, &cp.token, roots.clone())?;
    let target = Target {
        addr: cp.addr,
        roots,
    };
    let mut run = load(&rest, &layout, args.namespaces_per_batch).await?;
    memory.push(("mesh loaded", cp.memory()?));
    run.scrapes.push(metrics::scrape(&rest).await?);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut fleet = Fleet::new(rx, layout.proxies);
    let _proxies = ramp(&mut run, &rest, &target, &mut fleet, &tx, args.concurrency).await?;
    memory.push(("proxies connected", cp.memory()?));
    run.scrapes.push(metrics::scrape(&rest).await?);
    eprintln!("measuring pushes: {} rounds", args.rounds);
    let mut read_memory = || cp.memory();
    run.pushes = push::rounds(&mut fleet, &rest, &layout, args.rounds, &mut read_memory).await?;
    run.scrapes.push(metrics::scrape(&rest).await?);
    memory.push(("end", cp.memory()?));
    run.memory = memory;
    run.client_memory = Memory::of("/proc/self")?;
    let (busy, total) = control::machine_cpu()?;
    let ours =
        run.memory.last().map_or(0.0, |(_, m)| m.cpu_s) + run.client_memory.cpu_s - bench_before;
    run.other_cpu_share = ((busy - busy_before - ours) / (total - total_before)).max(0.0);
    if args.keep {
        eprintln!("control-plane log: {}", cp.log.display());
    }
    Ok(run)
}

/// Applies the mesh in batches; the start of the [`Run`].
async fn load(rest: &Rest, layout: &Layout, per_batch: usize) -> Result<Run> {
    let batches = layout.batches(per_batch)?;
    let objects = batches.iter().map(|(_, n)| n).sum();
    eprintln!(
        "loading {objects} objects ({} workloads) in {} apply requests",
        layout.workloads(),
        batches.len()
    );
    let started = Instant::now();
    let mut batch_ms = Vec::with_capacity(batches.len());
    for (yaml, _) in batches {
        let t = Instant::now();
        rest.apply(yaml).await.context("loading the mesh")?;
        batch_ms.push(push::ms(t.elapsed()));
    }
    Ok(Run {
        layout: *layout,
        objects,
        load_s: started.elapsed().as_secs_f64(),
        batch_ms,
        join_tokens: 0,
        join_tokens_s: 0.0,
        certify_s: 0.0,
        certify_ms: Vec::new(),
        connect_s: 0.0,
        first_snapshot_ms: Vec::new(),
        quiet_after_ramp_s: 0.0,
        ramp_snapshots: 0,
        snapshot_bytes: Vec::new(),
        pushes: Vec::new(),
        memory: Vec::new(),
        scrapes: Vec::new(),
        client_memory: Memory::default(),
        other_cpu_share: 0.0,
    })
}

/// Join tokens, certificates, then every proxy's Watch stream; waits until the fleet is
/// quiet (the endpoint updates caused by proxies registering are done).
async fn ramp(
    run: &mut Run,
    rest: &Rest,
    target: &Target,
    fleet: &mut Fleet,
    events: &mpsc::UnboundedSender<fleet::Event>,
    concurrency: usize,
) -> Result<proxies::Proxies> {
    let layout = run.layout;
    let (tokens, seconds) = proxies::join_tokens(rest, &layout).await?;
    (run.join_tokens, run.join_tokens_s) = (tokens.len(), seconds);
    eprintln!(
        "certifying {} proxies ({} join tokens)",
        layout.proxies,
        tokens.len()
    );
    let started = Instant::now();
    let (certified, latencies) =
        proxies::certify_all(target, &layout, &tokens, concurrency).await?;
    run.certify_s = started.elapsed().as_secs_f64();
    run.certify_ms = latencies.iter().map(|s| s * 1000.0).collect();
    eprintln!("connecting {} proxies", layout.proxies);
    let started = Instant::now();
    let (running, firsts) =
        proxies::connect_all(target, &layout, certified, events, concurrency).await?;
    run.connect_s = started.elapsed().as_secs_f64();
    run.first_snapshot_ms = firsts.iter().map(|s| s * 1000.0).collect();
    fleet.quiesce(push::QUIET, push::MAX_QUIET).await?;
    let latest = fleet.latest.context("no snapshot arrived")?;
    run.quiet_after_ramp_s = latest.duration_since(started).as_secs_f64();
    run.ramp_snapshots = fleet.total();
    run.snapshot_bytes = fleet.bytes.iter().map(|&b| b as f64).collect();
    if fleet.last.contains(&0) {
        bail!("a proxy has no snapshot after the ramp");
    }
    eprintln!(
        "all connected in {:.1} s; quiet {:.1} s after the ramp began",
        run.connect_s, run.quiet_after_ramp_s
    );
    Ok(running)
}
