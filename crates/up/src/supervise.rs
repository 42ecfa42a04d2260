//! Supervision of one child (a sidecar or a workload): start it, report its exit, restart
//! it with backoff (1 s doubling to 30 s, back to 1 s after 60 s up), and stop it on
//! request (SIGTERM, then SIGKILL after a grace period).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::signal;
use crate::tail::Request;

/// The first restart delay.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child up this long gets the first delay again when it next exits.
const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// Which of a workload's two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The sidecar (`bulkhead proxy`).
    Sidecar,
    /// The workload's own command (under `bulkhead up-exec`).
    App,
}

impl Role {
    /// `sidecar` or `app`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sidecar => "sidecar",
            Role::App => "app",
        }
    }
}

/// What happened to a child.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    /// Started with this pid.
    Started(u32),
    /// Could not be started.
    Failed(String),
    /// Exited (the status in words).
    Exited(String),
    /// Will be started again after this delay.
    Restarting(Duration),
    /// Stopped on request.
    Stopped,
}

/// Something for the live event log.
#[derive(Debug, Clone)]
pub enum Event {
    /// A child's lifecycle: workload `ns/name`, role, what.
    Lifecycle(String, Role, Lifecycle),
    /// One access log line of a sidecar (workload `ns/name`).
    Request(String, Box<Request>),
}

/// How to start a child.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Workload `ns/name`.
    pub workload: String,
    /// Sidecar or app.
    pub role: Role,
    /// Program.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Where stdout and stderr go (appended).
    pub output: PathBuf,
    /// Between SIGTERM and SIGKILL at stop.
    pub grace: Duration,
}

/// A supervised child: its current pid (0 while not running) and its task.
#[derive(Debug)]
pub struct Supervised {
    /// The spec it runs.
    pub spec: Arc<ChildSpec>,
    /// The pid of the running process, 0 when none.
    pub pid: watch::Receiver<u32>,
    /// The supervising task; ends once the child is stopped.
    pub task: JoinHandle<()>,
}

/// Starts supervising `spec`; the child is stopped when `stop` turns true.
pub fn start(
    spec: ChildSpec,
    events: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
) -> Supervised {
    let spec = Arc::new(spec);
    let (pid_tx, pid) = watch::channel(0);
    let task = tokio::spawn(run(Arc::clone(&spec), events, stop, pid_tx));
    Supervised { spec, pid, task }
}

async fn run(
    spec: Arc<ChildSpec>,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
    pid: watch::Sender<u32>,
) {
    let report = |what| {
        let _ = events.send(Event::Lifecycle(spec.workload.clone(), spec.role, what));
    };
    let mut delay = BACKOFF_START;
    loop {
        let stopped = *stop.borrow();
        if stopped {
            return;
        }
        let started = Instant::now();
        match spawn(&spec) {
            Ok(mut child) => {
                let id = child.id().unwrap_or_default();
                pid.send_replace(id);
                report(Lifecycle::Started(id));
                tokio::select! {
                    status = child.wait() => {
                        pid.send_replace(0);
                        let status = status.map_or_else(|e| e.to_string(), |s| signal::describe(&s));
                        report(Lifecycle::Exited(status));
                    }
                    () = stop_requested(&mut stop) => {
                        signal::terminate(&mut child, spec.grace).await;
                        pid.send_replace(0);
                        report(Lifecycle::Stopped);
                        return;
                    }
                }
            }
            Err(e) => report(Lifecycle::Failed(e.to_string())),
        }
        if started.elapsed() >= BACKOFF_RESET {
            delay = BACKOFF_START;
        }
        let stopped = *stop.borrow();
        if stopped {
            return;
        }
        report(Lifecycle::Restarting(delay));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop_requested(&mut stop) => return,
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn spawn(spec: &ChildSpec) -> std::io::Result<tokio::process::Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.output)?;
    let err = out.try_clone()?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: Ctrl-C in the terminal reaches `up` alone, which then
        // stops everything in order.
        .process_group(0)
        .kill_on_drop(true);
    command.spawn()
}
