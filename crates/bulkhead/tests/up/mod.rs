//! Shared by the `bulkhead up` tests: the test workloads and process helpers.
//!
//! Why the workloads are the test binary itself: `bulkhead up` must start real processes,
//! and the only binaries a test of this package can name are `bulkhead` and the test
//! binary (`CARGO_BIN_EXE_bulkhead-demo` belongs to another package; finding it next to
//! `bulkhead` would depend on what else cargo happened to build, and could be stale). So
//! each test file has a `workload_role` test that does nothing in a normal run and, when
//! `bulkhead up` starts the binary with `--exact workload_role` and `UP_TEST_ROLE` set,
//! becomes a tiny HTTP app: `api` answers with the caller identity its sidecar verified;
//! `front` calls `api` through its own sidecar (`UPSTREAM_API`) and returns the answer.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A mesh of `api` (behind a Service, /admin denied) and `front`, which calls it.
pub fn write_mesh(dir: &Path) {
    let text = format!(
        "{}---
{}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-admin}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  action: DENY
  rules: [{{to: [{{operation: {{paths: [\"/admin\"]}}}}]}}]
",
        api_workload("api", true),
        api_service_and_front()
    );
    std::fs::write(dir.join("mesh.yaml"), text).unwrap();
}

/// A Workload `name` labelled `app: api`, run by `up` as the `api` role when `run`.
pub fn api_workload(name: &str, run: bool) -> String {
    format!(
        "apiVersion: bulkhead.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, labels: {{app: api}}}}
spec:
  serviceAccount: api
  ports: [{{name: http, port: 8080}}]
{}",
        if run { run_block("api") } else { String::new() }
    )
}

/// The `api` Service and the `front` Workload that calls it through its sidecar, run by
/// `up` as the `front` role: the part every test mesh shares.
pub fn api_service_and_front() -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: api}}
spec:
  selector: {{app: api}}
  ports: [{{port: 8080}}]
---
apiVersion: bulkhead.dev/v1alpha1
kind: Workload
metadata: {{name: front, labels: {{app: front}}}}
spec:
  serviceAccount: front
  ports: [{{port: 8081}}]
  upstreams: [{{service: api.default, port: 8080}}]
{}",
        run_block("front")
    )
}

/// Becomes the workload named by `UP_TEST_ROLE`, if set (never returns then).
pub fn serve_role_if_asked() {
    let Ok(role) = std::env::var("UP_TEST_ROLE") else {
        return;
    };
    let port = std::env::var("PORT").expect("PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    for stream in listener.incoming().map_while(Result::ok) {
        let role = role.clone();
        std::thread::spawn(move || answer(&role, stream));
    }
}

fn answer(role: &str, mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    let _ = reader.read_line(&mut first);
    let path = first.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut identity = String::from("none");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("x-bulkhead-peer-identity")
        {
            identity = v.trim().to_owned();
        }
    }
    let body = if role == "front" {
        let upstream: SocketAddr = std::env::var("UPSTREAM_API").unwrap().parse().unwrap();
        match get(upstream, &path) {
            Some((status, body)) => format!("front got {status}: {body}"),
            None => "front got nothing".to_owned(),
        }
    } else {
        format!("api saw {identity}")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `GET path` (HTTP/1.1, one connection): status and body.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.get(9..12)?.parse().ok()?, body.to_owned()))
}

/// The pids in `DATA/up.children`: (role, workload, pid).
pub fn children(data: &Path) -> Vec<(String, String, u32)> {
    let text = std::fs::read_to_string(data.join("up.children")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// The direct children of `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().map_while(Result::ok) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`; comm may hold spaces, so split after the `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Every process `up` runs: sidecars, `up-exec`s and the workloads under them.
pub fn all_processes(data: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for (role, _, pid) in children(data) {
        pids.push(pid);
        if role == "app" {
            pids.extend(children_of(pid));
        }
    }
    pids
}

/// [`all_processes`] once it lists `expected` processes: an app's own process appears a
/// moment after `up-exec`, which `up` records, so `ready` can come before it (bounded
/// wait).
pub fn settled_processes(data: &Path, expected: usize) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pids = all_processes(data);
        if pids.len() >= expected || std::time::Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Sends `signal` (`-INT`, `-KILL`) to `pid` with the `kill` command.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// The app port of `workload` from the table `up` printed (`APP→SIDECAR`).
pub fn app_port(table_row: &str) -> u16 {
    let ports = table_row
        .split_whitespace()
        .find(|c| c.contains('→'))
        .unwrap_or_else(|| panic!("no ports in `{table_row}`"));
    ports.split('→').next().unwrap().parse().unwrap()
}

/// The `spec.run` block that makes `bulkhead up` start this test binary as `role`.
pub fn run_block(role: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "  run:\n    command: [{:?}, --exact, workload_role, --nocapture, --test-threads, \"1\"]\n    env: {{UP_TEST_ROLE: {role}}}\n",
        exe.display().to_string()
    )
}

/// One workload of a running `up`, from the table and the metrics lines it printed.
#[derive(Debug, Clone)]
pub struct Started {
    /// `ns/name`.
    pub workload: String,
    /// The app's first port.
    pub app: u16,
    /// The sidecar's first inbound port.
    pub inbound: u16,
    /// The sidecar's admin port.
    pub admin: u16,
}

/// Reads what `up` prints (`next_line`: its next stdout line, e.g.
/// `|| proc.stdout_line("")`) until `ready; Ctrl-C`: each started workload's ports.
pub fn started(mut next_line: impl FnMut() -> String) -> Vec<Started> {
    let mut rows: Vec<Started> = Vec::new();
    loop {
        let line = next_line();
        if line.contains("ready; Ctrl-C") {
            return rows;
        }
        if line.contains('→') && !line.contains("PORTS") {
            let workload = line.split_whitespace().next().unwrap().to_owned();
            let ports = line.split_whitespace().find(|c| c.contains('→')).unwrap();
            let first = ports.split(',').next().unwrap();
            let (app, inbound) = first.split_once('→').unwrap();
            rows.push(Started {
                workload,
                app: app.parse().unwrap(),
                inbound: inbound.parse().unwrap(),
                admin: 0,
            });
        }
        if let Some(rest) = line.strip_prefix("metrics ") {
            let (workload, url) = rest.split_once(": ").unwrap();
            let port = url
                .trim_start_matches("http://127.0.0.1:")
                .trim_end_matches("/metrics");
            if let Some(row) = rows.iter_mut().find(|r| r.workload == workload) {
                row.admin = port.parse().unwrap();
            }
        }
    }
}

/// The row of `workload` (`ns/name`).
pub fn row<'a>(rows: &'a [Started], workload: &str) -> &'a Started {
    rows.iter()
        .find(|r| r.workload == workload)
        .unwrap_or_else(|| panic!("{workload} not in {rows:?}"))
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs the CLI against `up`'s control plane (`BULKHEAD_CONTEXT=DATA/context.yaml`),
/// failing the test on a non-zero exit; returns stdout.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .env("BULKHEAD_CONTEXT", data.join("context.yaml"))
        .current_dir(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bulkhead {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The pid of `workload`'s app process (under its `up-exec`).
pub fn app_pid(data: &Path, workload: &str) -> u32 {
    let exec = children(data)
        .into_iter()
        .find(|(role, w, _)| role == "app" && w == workload)
        .unwrap_or_else(|| panic!("no app for {workload}"))
        .2;
    children_of(exec)[0]
}
