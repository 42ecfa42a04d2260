//! `bulkhead up DIR [--data-dir D] [--detach]`, `bulkhead down [DIR]` and the hidden
//! `bulkhead up-exec`: flags and output; the work is in `bulkhead-up`.

use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bulkhead_up::{Event, Layout, Lifecycle, Mesh, Request, Summary, signal};
use clap::Args;

/// How long `--detach` waits for the background `up` to report ready.
const DETACH_WAIT: Duration = Duration::from_secs(180);
/// How long `down` waits for `up` to stop.
const DOWN_WAIT: Duration = Duration::from_secs(60);
/// Poll period of `--detach` and `down`.
const POLL: Duration = Duration::from_millis(100);

/// `bulkhead up` flags.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The directory of resources (Workloads with `spec.run`, Services, policies).
    dir: PathBuf,
    /// Where the control plane's state, sidecar configs and logs live (default DIR/.bulkhead).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run in the background; stop with `bulkhead down`.
    #[arg(long)]
    detach: bool,
    /// Lifetime of the sidecars' certificates, e.g. `60s` (at least 30s; sidecars renew at
    /// half of it). Default: 24h.
    #[arg(long, value_name = "DURATION", value_parser = crate::cert::parse_duration)]
    svid_ttl: Option<Duration>,
    /// Give exposed workloads (annotation `bulkhead.dev/expose`) a free port instead of
    /// their fixed one.
    #[arg(long)]
    no_expose: bool,
}

/// `bulkhead down` flags.
#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    /// The directory `bulkhead up` ran on.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The data directory, when `up` was given one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// `bulkhead up-exec` flags (internal: how `up` runs each workload).
#[derive(Debug, Args)]
pub(crate) struct UpExecArgs {
    /// Stop the command when this process is no longer the parent.
    #[arg(long)]
    parent_pid: u32,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn layout(dir: &Path, data_dir: Option<&Path>) -> Layout {
    Layout::new(&data_dir.map_or_else(|| dir.join(".bulkhead"), Path::to_owned))
}

/// Runs `bulkhead up`.
pub(crate) fn run_up(args: UpArgs) -> Result<ExitCode> {
    let layout = layout(&args.dir, args.data_dir.as_deref());
    let mut plan = match bulkhead_up::plan::load(&args.dir, &layout.data) {
        Ok(plan) => plan,
        Err(report) => {
            eprintln!(
                "error: {}: invalid resources; nothing was started\n{report}",
                args.dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    plan.svid_ttl = args.svid_ttl;
    if args.no_expose {
        plan.expose_on_free_ports();
    }
    if let Some(ttl) = plan.svid_ttl
        && ttl < bulkhead_control::MIN_SVID_TTL
    {
        return Err(anyhow!(
            "--svid-ttl {}s is below the minimum of {}s (sidecars renew at half the lifetime)",
            ttl.as_secs(),
            bulkhead_control::MIN_SVID_TTL.as_secs()
        ));
    }
    if let Some(pid) = running(&layout) {
        return Err(anyhow!(
            "bulkhead up is already running for {} (pid {pid}); stop it with `bulkhead down`",
            layout.data.display()
        ));
    }
    create_private_dir(&layout.data)?;
    if args.detach {
        return detach(&args, &layout);
    }
    init_tracing(&layout)?;
    std::fs::write(layout.pid_file(), format!("{}\n", std::process::id()))?;
    let _ = std::fs::remove_file(layout.ready_file());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let code = runtime.block_on(serve(&plan, &layout));
    let _ = std::fs::remove_file(layout.ready_file());
    let _ = std::fs::remove_file(layout.pid_file());
    code
}

async fn serve(plan: &bulkhead_up::Plan, layout: &Layout) -> Result<ExitCode> {
    let terminated = signal::termination();
    println!(
        "starting {} workloads from {}",
        plan.workloads.len(),
        plan.dir.display()
    );
    let mut progress = |step: &str| println!("  {step}");
    let started = tokio::select! {
        started = Mesh::start(plan, layout, &mut progress) => started,
        () = terminated => {
            println!("interrupted during start-up");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (mesh, summary, mut events) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let terminated = signal::termination();
    let url = format!("https://{}", summary.control);
    crate::context::write_context(
        &layout.context(),
        &url,
        &summary.ca_pem,
        &summary.operator_token,
    )?;
    print_summary(&summary, layout);
    std::fs::write(layout.ready_file(), "ready\n")?;
    let style = Style::detect();
    tokio::pin!(terminated);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => println!("{}", style.event(&event)),
                None => break,
            },
            () = &mut terminated => break,
        }
        let _ = std::io::stdout().flush();
    }
    println!("stopping: workloads, then sidecars, then the control plane");
    mesh.shutdown().await;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &Summary, layout: &Layout) {
    let mut table =
        crate::output::Table::new(&["WORKLOAD", "IDENTITY", "PORTS (app → sidecar)", "READY"]);
    for row in &summary.rows {
        let ports: Vec<String> = row.ports.iter().map(|(a, s)| format!("{a}→{s}")).collect();
        let ports = if ports.is_empty() {
            "-".to_owned()
        } else {
            ports.join(",")
        };
        let ready = if row.ready { "yes" } else { "no" };
        table.row(vec![
            row.workload.clone(),
            row.identity.clone(),
            ports,
            ready.to_owned(),
        ]);
    }
    println!();
    for line in table.lines() {
        println!("{line}");
    }
    for name in &summary.not_started {
        println!("{name}: declared without spec.run (not started)");
    }
    println!();
    println!("control plane: https://{}", summary.control);
    println!("  export BULKHEAD_CONTEXT={}", layout.context().display());
    for row in &summary.rows {
        println!(
            "metrics {}: http://127.0.0.1:{}/metrics",
            row.workload, row.admin
        );
    }
    println!("access logs: {}", layout.logs().display());
    for row in &summary.rows {
        if let Some(addr) = row.exposed {
            println!("exposed {}: http://{addr}/", row.workload);
        }
    }
    println!("ready; Ctrl-C stops everything");
    let _ = std::io::stdout().flush();
}

/// How event lines are marked: ANSI colour on a terminal, a `DENY` word otherwise.
struct Style {
    colour: bool,
}

impl Style {
    fn detect() -> Style {
        Style {
            colour: std::io::stdout().is_terminal(),
        }
    }

    fn event(&self, event: &Event) -> String {
        match event {
            Event::Lifecycle(workload, role, what) => {
                let what = match what {
                    Lifecycle::Started(pid) => format!("started (pid {pid})"),
                    Lifecycle::Failed(e) => format!("could not start: {e}"),
                    Lifecycle::Exited(status) => format!("exited: {status}"),
                    Lifecycle::Restarting(d) => format!("restarting in {}s", d.as_secs()),
                    Lifecycle::Stopped => "stopped".to_owned(),
                };
                format!("{} {workload} {} {what}", clock_now(), role.as_str())
            }
            Event::Request(workload, request) => self.request(workload, request),
        }
    }

    fn request(&self, workload: &str, r: &Request) -> String {
        let time = r.time.get(11..19).unwrap_or(&r.time);
        let source = r
            .source
            .as_deref()
            .map_or_else(|| "-".to_owned(), short_identity);
        let destination = r
            .destination
            .as_deref()
            .map_or_else(|| workload.to_owned(), short_identity);
        let status = r.status.map_or("-".to_owned(), |s| s.to_string());
        let line = format!(
            "{time} {source} → {destination} {} {} {status} {}",
            r.method.as_deref().unwrap_or("TCP"),
            r.path.as_deref().unwrap_or("-"),
            r.decision
        );
        match (r.denied(), self.colour) {
            (false, _) => line,
            (true, true) => format!("\x1b[31m{line}\x1b[0m"),
            (true, false) => {
                let reason = r
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!("{line} DENY{reason}")
            }
        }
    }
}

/// `spiffe://td/ns/NS/sa/SA` → `NS/SA`; anything else as is.
fn short_identity(id: &str) -> String {
    match id
        .split_once("/ns/")
        .and_then(|(_, rest)| rest.split_once("/sa/"))
    {
        Some((ns, sa)) => format!("{ns}/{sa}"),
        None => id.to_owned(),
    }
}

fn clock_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

/// The pid in `DATA/up.pid` when that process is alive.
fn running(layout: &Layout) -> Option<u32> {
    let text = std::fs::read_to_string(layout.pid_file()).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (pid != std::process::id() && signal::alive(pid)).then_some(pid)
}

fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// The control plane's and `up`'s own logs go to `DATA/logs/up.log`.
fn init_tracing(layout: &Layout) -> Result<()> {
    std::fs::create_dir_all(layout.logs())?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.logs().join("control.log"))?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("invalid log filter `{filter}`"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow!("cannot install the log subscriber: {e}"))
}

/// Starts `up` again in the background and returns once it is ready.
fn detach(args: &UpArgs, layout: &Layout) -> Result<ExitCode> {
    let _ = std::fs::remove_file(layout.ready_file());
    let log = std::fs::File::create(layout.up_log())
        .with_context(|| layout.up_log().display().to_string())?;
    let dir = std::path::absolute(&args.dir)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("up")
        .arg(&dir)
        .arg("--data-dir")
        .arg(&layout.data)
        .args(
            args.svid_ttl
                .map(|t| vec!["--svid-ttl".to_owned(), format!("{}s", t.as_secs())])
                .unwrap_or_default(),
        )
        .args(args.no_expose.then_some("--no-expose"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start bulkhead up in the background")?;
    let deadline = Instant::now() + DETACH_WAIT;
    while !layout.ready_file().exists() {
        if let Some(status) = child.try_wait()? {
            print_log(layout);
            eprintln!("error: bulkhead up exited during start-up ({status})");
            return Ok(ExitCode::FAILURE);
        }
        if Instant::now() >= deadline {
            print_log(layout);
            return Err(anyhow!(
                "bulkhead up was not ready within {}s",
                DETACH_WAIT.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    }
    std::fs::write(layout.pid_file(), format!("{}\n", child.id()))?;
    print_log(layout);
    println!(
        "running in the background (pid {}); output in {}",
        child.id(),
        layout.up_log().display()
    );
    println!(
        "stop with: bulkhead down {}{}",
        dir.display(),
        data_flag(args)
    );
    Ok(ExitCode::SUCCESS)
}

fn data_flag(args: &UpArgs) -> String {
    args.data_dir
        .as_ref()
        .map(|d| format!(" --data-dir {}", d.display()))
        .unwrap_or_default()
}

fn print_log(layout: &Layout) {
    if let Ok(text) = std::fs::read_to_string(layout.up_log()) {
        print!("{text}");
    }
}

/// Runs `bulkhead down`.
pub(crate) fn run_down(args: DownArgs) -> Result<ExitCode> {
    let layout = layout(&args.dir, args.data_dir.as_deref());
    let Some(pid) = running(&layout) else {
        println!("bulkhead up is not running for {}", layout.data.display());
        let _ = std::fs::remove_file(layout.pid_file());
        return Ok(ExitCode::SUCCESS);
    };
    signal::send(pid, nix::sys::signal::Signal::SIGTERM);
    println!("stopping bulkhead up (pid {pid})");
    let deadline = Instant::now() + DOWN_WAIT;
    while signal::alive(pid) {
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "bulkhead up (pid {pid}) still running after {}s",
                DOWN_WAIT.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    }
    let _ = std::fs::remove_file(layout.pid_file());
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Runs `bulkhead up-exec`.
pub(crate) fn run_exec(args: UpExecArgs) -> Result<ExitCode> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| anyhow!("expected a command after --"))?;
    let code = bulkhead_up::exec::run(args.parent_pid, Path::new(program), rest)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
