//! `bulkhead up-exec --parent-pid P -- CMD ARGS...`: runs a workload's command as its
//! child and takes it down (SIGTERM, then SIGKILL after a grace period) when its own
//! parent (`bulkhead up`) disappears or when it is sent SIGTERM or SIGINT. It exits with
//! the command's status, so `up` sees the workload's exit as its own.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::signal;

/// How often the parent is checked.
const PARENT_POLL: Duration = Duration::from_millis(500);
/// How long the command gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Runs `program args` until it exits, or until the parent `parent_pid` is gone or a
/// termination signal arrives (then stops it); returns the exit code to leave with.
pub fn run(parent_pid: u32, program: &Path, args: &[String]) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(supervise(parent_pid, program, args))
}

async fn supervise(parent_pid: u32, program: &Path, args: &[String]) -> Result<i32> {
    let terminated = signal::termination();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let orphaned = async {
        loop {
            tokio::time::sleep(PARENT_POLL).await;
            if std::os::unix::process::parent_id() != parent_pid {
                return;
            }
        }
    };
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        () = terminated => signal::terminate(&mut child, GRACE).await,
        () = orphaned => signal::terminate(&mut child, GRACE).await,
    };
    Ok(status.as_ref().map_or(1, code))
}

/// The exit code that reports `status` (128 + N for a signal, as shells do).
fn code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
