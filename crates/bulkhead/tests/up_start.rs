//! `bulkhead up DIR` with the real binary: invalid resources stop it before anything
//! starts; a two-workload mesh comes up, calls go through mTLS, a killed workload is
//! restarted, and SIGINT stops every process. The workloads are this test binary (see
//! `up/mod.rs` for why).

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::net::SocketAddr;
use std::process::Command;

use mesh::{Proc, WAIT, bin, eventually};

/// Not a test of its own: the workload `bulkhead up` starts (see `up/mod.rs`).
#[test]
fn workload_role() {
    up::serve_role_if_asked();
}

#[test]
fn invalid_resource_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: bulkhead.dev/v1alpha1\nkind: Workload\nmetadata: {name: api, namespace: shop}\n\
         spec:\n  replicas: 2\n  run: {command: [sh]}\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["up", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(stderr.contains("line 9"), "{stderr}");
    assert!(stderr.contains("spec.replicas"), "{stderr}");
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(!dir.path().join(".bulkhead").exists());
}

#[test]
fn mesh_comes_up_restarts_a_crashed_workload_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".bulkhead");
    up::write_mesh(dir.path());
    let path = dir.path().display().to_string();
    let proc = Proc::start(dir.path(), &["up", &path]);
    let api_row = proc.stdout_line("default/api ");
    let front_row = proc.stdout_line("default/front ");
    assert!(
        api_row.contains("spiffe://cluster.local/ns/default/sa/api"),
        "{api_row}"
    );
    assert!(front_row.ends_with("yes"), "{front_row}");
    proc.stdout_line("export BULKHEAD_CONTEXT=");
    proc.stdout_line("ready; Ctrl-C");
    assert!(data.join("context.yaml").is_file());
    let front = SocketAddr::from(([127, 0, 0, 1], up::app_port(&front_row)));

    // front → its sidecar → mTLS → api's sidecar → api, which sees front's identity.
    let (status, body) = up::get(front, "/books").expect("front answers");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "front got 200: api saw spiffe://cluster.local/ns/default/sa/front"
    );
    let (_, body) = up::get(front, "/admin").unwrap();
    assert!(body.starts_with("front got 403"), "{body}");
    let deny = proc.stdout_line("/admin");
    assert!(
        deny.contains("DENY") && deny.contains("default/front"),
        "{deny}"
    );

    kill_api_and_see_it_restarted(&proc, &data, front);
    stop_with_sigint(proc, &data);
}

/// Kills the api process itself (under its up-exec): it is restarted and answers again.
fn kill_api_and_see_it_restarted(proc: &Proc, data: &std::path::Path, front: SocketAddr) {
    let exec = up::children(data)
        .into_iter()
        .find(|(role, w, _)| role == "app" && w == "default/api")
        .unwrap()
        .2;
    let app = up::children_of(exec)[0];
    up::signal(app, "-KILL");
    proc.stdout_line("default/api app exited");
    proc.stdout_line("default/api app restarting in 1s");
    proc.stdout_line("default/api app started");
    eventually("api to answer again", || {
        up::get(front, "/books").is_some_and(|(_, b)| b.starts_with("front got 200"))
    });
}

/// SIGINT: `up` exits 0 and every process it ran is gone.
fn stop_with_sigint(mut proc: Proc, data: &std::path::Path) {
    let pids = up::settled_processes(data, 6);
    assert_eq!(pids.len(), 6, "2 sidecars, 2 up-exec, 2 apps: {pids:?}");
    up::signal(proc.child.id(), "-INT");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "up did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(!up::alive(pid), "pid {pid} still running after up stopped");
    }
}
