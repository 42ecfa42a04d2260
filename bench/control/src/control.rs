//! The control plane under test: a real `bulkhead control` process in a temporary data
//! directory, listening on 127.0.0.1 with an OS-chosen port. Its address and admin token
//! come from its stdout; it is killed when the [`ControlPlane`] is dropped, whatever the
//! exit path of the benchmark.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long the control plane may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the control plane may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of stdout read before giving up on finding the address.
const MAX_START_LINES: usize = 20;

/// A running control plane; killed on drop.
pub(crate) struct ControlPlane {
    child: Child,
    /// The API address (`127.0.0.1:PORT`).
    pub(crate) addr: SocketAddr,
    /// The admin token (`bht_...`).
    pub(crate) token: String,
    /// The API CA (`DATA/tls/ca.pem`), PEM.
    pub(crate) ca_pem: Vec<u8>,
    /// Where the control plane writes its logs (stderr).
    pub(crate) log: PathBuf,
    /// The temporary directory holding the data directory and the log; removed on drop
    /// unless kept.
    _dir: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// Starts `bulkhead control` with a fresh data directory under a temporary directory
    /// (kept, and its path printed, when `keep`).
    /// `env` is added to its environment (allocator settings, profilers).
    pub(crate) fn start(
        bulkhead: &Path,
        keep: bool,
        env: &[(String, String)],
    ) -> Result<ControlPlane> {
        let dir = tempfile::Builder::new()
            .prefix("bulkhead-control-bench.")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let root = dir.path().to_owned();
        let data = root.join("data");
        let log = root.join("control.log");
        let mut child = Command::new(bulkhead)
            .arg("control")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--context-out")
            .arg(root.join("ctx.yaml"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).context("cannot create the control-plane log")?)
            .spawn()
            .with_context(|| format!("cannot run {}", bulkhead.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        // From here on the guard owns the child: any error below kills it.
        let mut guard = ControlPlane {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
            ca_pem: Vec::new(),
            log,
            _dir: None,
        };
        if keep {
            eprintln!("data directory kept: {}", dir.keep().display());
        } else {
            guard._dir = Some(dir);
        }
        let (addr, token) = read_announcement(stdout)?;
        guard.addr = addr;
        guard.token = token;
        let ca = data.join("tls").join("ca.pem");
        guard.ca_pem =
            std::fs::read(&ca).with_context(|| format!("cannot read {}", ca.display()))?;
        Ok(guard)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` and `VmHWM` of the control plane, MiB.
    pub(crate) fn memory(&mut self) -> Result<Memory> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the control plane exited ({status}); see {}",
                self.log.display()
            );
        }
        Memory::of(&format!("/proc/{}", self.pid()))
    }
}

impl Drop for ControlPlane {
    /// SIGTERM (a graceful stop, through `kill(1)`: this crate has no unsafe code), then
    /// SIGKILL if it is still running after [`STOP_TIMEOUT`].
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        eprintln!("the control plane did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the admin token and the listening address from the first lines of stdout, on a
/// helper thread so that a silent process cannot hang the benchmark. The thread keeps
/// draining stdout afterwards so that the process never blocks on a full pipe.
fn read_announcement(stdout: std::process::ChildStdout) -> Result<(SocketAddr, String)> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            // The receiver is gone once the address was found; keep draining.
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    for _ in 0..MAX_START_LINES {
        let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            anyhow!("the control plane printed no address within {START_TIMEOUT:?}")
        })?;
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("bht_")) {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("control plane listening on https://") {
            let addr: SocketAddr = url.trim().parse().context("the announced address")?;
            let token = token.context("the control plane announced no admin token")?;
            return Ok((addr, token));
        }
    }
    bail!("no `control plane listening on` line in the first {MAX_START_LINES} lines")
}

/// Resident memory (MiB), threads and CPU time of a process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_mib: f64,
    /// `VmHWM`: the peak resident set so far.
    pub(crate) hwm_mib: f64,
    /// `Threads`: threads of the process.
    pub(crate) threads: f64,
    /// User + system CPU time so far, seconds.
    pub(crate) cpu_s: f64,
}

impl Memory {
    /// Reads `status` and `stat` of a `/proc/PID` directory.
    pub(crate) fn of(dir: &str) -> Result<Memory> {
        let path = format!("{dir}/status");
        let path = path.as_str();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        let field = |key: &str| -> Result<f64> {
            let line = text
                .lines()
                .find(|l| l.starts_with(key))
                .with_context(|| format!("no {key} in {path}"))?;
            let value: f64 = line
                .split_whitespace()
                .nth(1)
                .with_context(|| format!("{key}: no value"))?
                .parse()
                .with_context(|| format!("{key}: not a number"))?;
            Ok(value)
        };
        Ok(Memory {
            rss_mib: field("VmRSS:")? / 1024.0,
            hwm_mib: field("VmHWM:")? / 1024.0,
            threads: field("Threads:")?,
            cpu_s: cpu_seconds(dir)?,
        })
    }
}

/// utime + stime of `/proc/PID/stat`, seconds.
fn cpu_seconds(dir: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a malformed stat file")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields.get(i).context("a short stat file")?.parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, the Linux value, if that fails).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Busy and total CPU seconds of the machine (all cores) from `/proc/stat`.
pub(crate) fn machine_cpu() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("an empty /proc/stat")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    anyhow::ensure!(ticks.len() == 8, "a short /proc/stat");
    // user nice system idle iowait irq softirq steal
    let idle = ticks[3] + ticks[4];
    let total: f64 = ticks.iter().sum();
    Ok(((total - idle) / clock_ticks(), total / clock_ticks()))
}
