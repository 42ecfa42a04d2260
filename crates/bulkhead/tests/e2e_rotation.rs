//! End to end through `bulkhead up` (issue 8, e): 60-second certificates rotate under
//! continuous load with zero failed requests. `bulkhead up --svid-ttl 60s` makes the
//! control plane issue one-minute SVIDs; sidecars renew at half the lifetime (± 10 %).
//! Sequential GETs front → api run for at least 65 s, so the first certificates of both
//! sidecars are renewed and then expire while traffic flows (the mTLS connections and new
//! handshakes must pick up the renewed certificate); each sidecar's serial (admin
//! `/config`) must have changed, not before about half the lifetime, and no request may
//! fail.

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::time::{Duration, Instant};

use mesh::Proc;

/// Not a test of its own: the workload `bulkhead up` starts (see `up/mod.rs`).
#[test]
fn workload_role() {
    up::serve_role_if_asked();
}

/// Past the first certificates' expiry (60 s) with some margin.
const LOAD_FOR: Duration = Duration::from_secs(65);
/// When the test gives up waiting for a renewal it has not seen.
const BOUND: Duration = Duration::from_secs(100);

/// The serial of the certificate a sidecar serves with (admin `/config`).
fn serial(admin: u16) -> String {
    let (status, body) = up::get(up::local(admin), "/config").expect("/config answers");
    assert_eq!(status, 200, "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    config["certificate"]["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("no serial in {config}"))
        .to_owned()
}

#[test]
fn short_lived_certificates_rotate_under_load_without_failures() {
    let dir = tempfile::tempdir().unwrap();
    up::write_mesh(dir.path());
    let path = dir.path().display().to_string();
    let proc = Proc::start(dir.path(), &["up", &path, "--svid-ttl", "60s"]);
    let rows = up::started(|| proc.stdout_line(""));
    let front = up::row(&rows, "default/front");
    let api = up::row(&rows, "default/api");
    let through_front = up::local(front.app);
    let admins = [("front", front.admin), ("api", api.admin)];
    let first: Vec<String> = admins.iter().map(|(_, a)| serial(*a)).collect();
    let mut renewed_at: [Option<Duration>; 2] = [None, None];

    let started = Instant::now();
    let mut last_check = started;
    let (mut requests, mut failures) = (0usize, Vec::new());
    while started.elapsed() < LOAD_FOR || renewed_at.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < BOUND,
            "no renewal seen within {BOUND:?}: {renewed_at:?}"
        );
        let answer = up::get(through_front, "/books");
        requests += 1;
        match answer {
            Some((200, body)) if body.starts_with("front got 200: api saw") => {}
            other => failures.push(format!("{:?}: {other:?}", started.elapsed())),
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            for (i, (_, admin)) in admins.iter().enumerate() {
                if renewed_at[i].is_none() && serial(*admin) != first[i] {
                    renewed_at[i] = Some(started.elapsed());
                }
            }
        }
        // Pacing, not synchronisation: about 100 requests a second.
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "rotation under load (60 s SVIDs): {requests} requests over {} s, {} failed; first \
         renewal seen after {:?} (front) and {:?} (api)",
        started.elapsed().as_secs(),
        failures.len(),
        renewed_at[0].unwrap(),
        renewed_at[1].unwrap()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    // Renewal is due at 50 % ± 10 % of the lifetime counted from when the certificate was
    // installed (24-36 s), not from its backdated notBefore (which put it at once).
    for (i, (name, _)) in admins.iter().enumerate() {
        let at = renewed_at[i].unwrap();
        assert!(
            at >= Duration::from_secs(20),
            "{name} renewed after {at:?}, long before half the lifetime"
        );
    }
}

#[test]
fn an_svid_ttl_below_thirty_seconds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    up::write_mesh(dir.path());
    let out = std::process::Command::new(mesh::bin())
        .args(["up", ".", "--svid-ttl", "10s"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("below the minimum of 30s"), "{stderr}");
    assert!(!dir.path().join(".bulkhead").exists());
}
