//! `bulkhead up` lifecycle with the real binary: when `up` is killed with SIGKILL its
//! sidecars and workloads exit by themselves; `--detach` runs it in the background, a
//! second `up` on the same DIR is refused, and `bulkhead down` stops it. The workloads are
//! this test binary (see `up/mod.rs` for why).

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::process::Command;

use mesh::{Proc, bin, eventually};

/// Not a test of its own: the workload `bulkhead up` starts (see `up/mod.rs`).
#[test]
fn workload_role() {
    up::serve_role_if_asked();
}

#[test]
fn sigkill_of_up_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".bulkhead");
    up::write_mesh(dir.path());
    let path = dir.path().display().to_string();
    let mut proc = Proc::start(dir.path(), &["up", &path]);
    proc.stdout_line("ready; Ctrl-C");
    let pids = up::settled_processes(&data, 6);
    assert_eq!(pids.len(), 6, "{pids:?}");
    proc.kill();
    eventually("every child of the killed up to exit", || {
        pids.iter().all(|pid| !up::alive(*pid))
    });
}

#[test]
fn detach_then_down() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".bulkhead");
    up::write_mesh(dir.path());
    let path = dir.path().display().to_string();
    let out = Command::new(bin())
        .args(["up", &path, "--detach"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("spiffe://cluster.local/ns/default/sa/front"),
        "{stdout}"
    );
    assert!(stdout.contains("bulkhead down"), "{stdout}");
    let pid: u32 = std::fs::read_to_string(data.join("up.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(up::alive(pid));
    let pids = up::settled_processes(&data, 6);
    assert_eq!(pids.len(), 6, "{pids:?} {:?}", up::children(&data));

    let again = Command::new(bin()).args(["up", &path]).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already running"), "{stderr}");

    let down = Command::new(bin()).args(["down", &path]).output().unwrap();
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert!(down.status.success(), "{stdout}");
    assert!(stdout.contains("stopped"), "{stdout}");
    assert!(!up::alive(pid));
    assert!(!data.join("up.pid").exists());
    for pid in pids {
        assert!(!up::alive(pid), "pid {pid} still running after down");
    }
}
