//! `bulkhead up examples/bookstore` with the real binary: every flow of the example works
//! through the sidecars (frontend → catalog over gRPC → inventory over TCP, frontend →
//! reviews v1/v2 → both ratings instances), an anonymous POST is denied with a request
//! id, a SQL injection is refused by the frontend's web application firewall, and SIGINT
//! leaves no process behind. The apps are `bulkhead demo bookstore ...`,
//! the binary under test itself, so nothing can be stale. `--no-expose`: ephemeral ports
//! only (the example's frontend otherwise asks for 127.0.0.1:8080).

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use mesh::{Proc, WAIT};
use serde_json::Value;

/// The example's workloads, in file order (the order `up` starts them in).
const WORKLOADS: [&str; 7] = [
    "frontend",
    "catalog",
    "reviews-v1",
    "reviews-v2",
    "ratings-1",
    "ratings-2",
    "inventory",
];

/// One HTTP/1.1 request on its own connection: status, headers (lower case) and body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: bookstore\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, _, body) = request(addr, "GET", path, "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn the_bookstore_runs_every_flow_and_stops_cleanly() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookstore");
    let example = std::path::absolute(example).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut proc = Proc::start(
        tmp.path(),
        &[
            "up",
            example.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--no-expose",
        ],
    );
    // Step by step, in the order `up` reports them: each step gets the full wait, so a
    // loaded machine (seven sidecars and apps starting) does not fail the test.
    proc.stdout_line("control plane listening");
    for step in ["sidecar ready", "workload ready"] {
        for workload in WORKLOADS {
            proc.stdout_line(&format!("bookstore/{workload}: {step}"));
        }
    }
    let inventory_row = proc.stdout_line("bookstore/inventory ");
    assert!(
        inventory_row.contains("spiffe://cluster.local/ns/bookstore/sa/inventory")
            && inventory_row.ends_with("yes"),
        "{inventory_row}"
    );
    let exposed = proc.stdout_line("exposed bookstore/frontend: http://");
    let frontend: SocketAddr = exposed
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_ne!(
        frontend.port(),
        8080,
        "--no-expose must not use the fixed port"
    );
    proc.stdout_line("ready; Ctrl-C");

    books_with_reviews_and_ratings_from_both_instances(frontend);

    // One book: the catalog (gRPC) asked the inventory (TCP line protocol) for its stock.
    let book = get_json(frontend, "/api/books/1");
    assert_eq!(book["stock"], 7, "{book}");
    assert_eq!(book["title"], "The Left Hand of Darkness", "{book}");

    // No identity from the host: POST is for the admin identity only.
    let (status, head, body) = request(
        frontend,
        "POST",
        "/api/books",
        r#"{"title": "Kindred", "author": "Octavia E. Butler", "year": 1979}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("access denied by authorization policy; request id: "),
        "{body}"
    );
    assert!(head.contains("x-request-id: "), "{head}");
    let deny = proc.stdout_line("POST /api/books");
    assert!(
        deny.contains("403") && deny.contains("DENY"),
        "the live log marks the denial: {deny}"
    );

    // The frontend's web application firewall (examples/bookstore/waf.yaml, Blocking): a
    // SQL injection the policy lets through (GET /api/books*) never reaches the app.
    let (status, head, body) = request(frontend, "GET", "/api/books?title=1%27%20OR%201=1--", "");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("request blocked by the web application firewall; request id: "),
        "{body}"
    );
    assert!(head.contains("x-request-id: "), "{head}");
    let blocked = proc.stdout_line("GET /api/books?title=1%27%20OR%201=1--");
    assert!(
        blocked.contains("403") && blocked.contains("DENY (Inbound Anomaly Score Exceeded"),
        "the live log shows the firewall's refusal: {blocked}"
    );
    // Ordinary reads still pass the firewall.
    assert_eq!(get_json(frontend, "/api/books/1")["stock"], 7);
    stop_with_sigint(&mut proc, &data);
}

/// `GET /api/books` until reviews v1 and v2 and both ratings instances have answered
/// (round robin: one call normally suffices; bounded).
fn books_with_reviews_and_ratings_from_both_instances(frontend: SocketAddr) {
    let mut versions = BTreeSet::new();
    let mut instances = BTreeSet::new();
    for _ in 0..10 {
        let answer = get_json(frontend, "/api/books");
        let books = answer["books"].as_array().unwrap();
        assert_eq!(books.len(), 5, "{answer}");
        for book in books {
            assert!(
                !book["reviews"].as_array().unwrap().is_empty(),
                "reviews of {book}"
            );
            let version = book["reviews_version"].as_str().unwrap().to_owned();
            if version == "v2" {
                let instance = &book["rating"]["instance"];
                assert!(book["rating"]["stars"].is_u64(), "{book}");
                instances.insert(instance.as_str().unwrap().to_owned());
            } else {
                assert!(book.get("rating").is_none(), "v1 has no ratings: {book}");
            }
            versions.insert(version);
        }
        if versions.len() == 2 && instances.len() == 2 {
            return;
        }
    }
    panic!("after 10 calls: reviews versions {versions:?}, ratings instances {instances:?}");
}

/// SIGINT: `up` exits 0 and every process it ran is gone.
fn stop_with_sigint(proc: &mut Proc, data: &Path) {
    let pids = up::settled_processes(data, 21);
    assert_eq!(pids.len(), 21, "7 sidecars, 7 up-exec, 7 apps: {pids:?}");
    up::signal(proc.child.id(), "-INT");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(!up::alive(pid), "pid {pid} still running after up stopped");
    }
}
