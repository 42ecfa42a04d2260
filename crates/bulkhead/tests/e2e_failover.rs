//! End to end through `bulkhead up` (issue 8, f): two instances of api behind one Service,
//! front calling it with idempotent GETs in a loop. The test kills one instance's app
//! process (not `up`, not the sidecar): that sidecar's `/ready` turns 503 (its readiness
//! probes the app behind its inbound port, at most once a second), and front sees no error
//! at all: api-1's sidecar answers 503 while its app refuses connections, and front's
//! sidecar retries the GET on api-2 (default retry policy: 503 and connect failures,
//! idempotent methods; outlier ejection then keeps api-1 out). `up` restarts the killed
//! app with a 1 s backoff; the load runs through the whole window, restart included, and
//! must see zero errors.

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mesh::Proc;

/// Not a test of its own: the workload `bulkhead up` starts (see `up/mod.rs`).
#[test]
fn workload_role() {
    up::serve_role_if_asked();
}

/// How long the sidecar may take to report the dead app (probe period 1 s, plus slack).
const UNREADY_BOUND: Duration = Duration::from_secs(10);

fn write_dir(dir: &std::path::Path) {
    let text = format!(
        "{}---\n{}---\n{}",
        up::api_workload("api-1", true),
        up::api_workload("api-2", true),
        up::api_service_and_front()
    );
    std::fs::write(dir.join("mesh.yaml"), text).unwrap();
}

/// Sequential GETs through front until `stop`; counts requests and failures (anything but
/// front relaying api's 200), keeping the first few failures.
struct Load {
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(front: std::net::SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, r) = (Arc::clone(&stop), Arc::clone(&requests));
        let thread = std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let answer = up::get(front, "/books");
                r.fetch_add(1, Ordering::Relaxed);
                match answer {
                    Some((200, body)) if body.starts_with("front got 200: api saw") => {}
                    other => failures.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            failures
        });
        Load {
            stop,
            requests,
            thread: Some(thread),
        }
    }

    /// Stops the loop: (requests, failures).
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.thread.take().unwrap().join().unwrap();
        (self.requests.load(Ordering::Relaxed), failures)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ready(admin: u16) -> Option<(u16, String)> {
    up::get(up::local(admin), "/ready")
}

#[test]
fn a_killed_instance_turns_unready_and_callers_fail_over_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".bulkhead");
    write_dir(dir.path());
    let path = dir.path().display().to_string();
    let proc = Proc::start(dir.path(), &["up", &path]);
    let rows = up::started(|| proc.stdout_line(""));
    let front = up::local(up::row(&rows, "default/front").app);
    let api1 = up::row(&rows, "default/api-1").admin;
    assert_eq!(ready(api1).map(|r| r.0), Some(200));

    let load = Load::start(front);
    mesh::eventually("a few calls through front", || {
        load.requests.load(Ordering::Relaxed) >= 20
    });
    let killed = Instant::now();
    up::signal(up::app_pid(&data, "default/api-1"), "-KILL");
    let reason = loop {
        if let Some((503, body)) = ready(api1) {
            break body;
        }
        assert!(
            killed.elapsed() < UNREADY_BOUND,
            "api-1's sidecar still ready {UNREADY_BOUND:?} after its app was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let unready_after = killed.elapsed();
    assert!(reason.contains("refuses connections"), "{reason}");
    proc.stdout_line("default/api-1 app started");
    mesh::eventually("api-1's sidecar to be ready again", || {
        ready(api1).map(|r| r.0) == Some(200)
    });
    let back_after = killed.elapsed();
    // Keep calling a little after the restart too.
    let settled = load.requests.load(Ordering::Relaxed) + 100;
    mesh::eventually("more calls after the restart", || {
        load.requests.load(Ordering::Relaxed) >= settled
    });
    let (requests, failures) = load.finish();
    println!(
        "failover: api-1 unready {} ms after its app was killed (`{}`), ready again after {} \
         ms; {requests} GETs through front, {} failed",
        unready_after.as_millis(),
        reason.trim(),
        back_after.as_millis(),
        failures.len()
    );
    assert!(failures.is_empty(), "client-visible errors: {failures:?}");
}
