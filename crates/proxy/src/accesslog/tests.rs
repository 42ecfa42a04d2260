use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AccessLog, Entry, rfc3339};
use crate::config::AccessLogSpec;
use crate::metrics::{Direction, Metrics};

const WAIT: Duration = Duration::from_secs(10);

fn entry<'a>() -> Entry<'a> {
    Entry {
        kind: "http",
        direction: Direction::Inbound,
        request_id: Some("req-1"),
        source: Some("spiffe://cluster.local/ns/shop/sa/web"),
        source_addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        destination: Some("spiffe://cluster.local/ns/shop/sa/api"),
        upstream: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        method: Some("GET"),
        path: Some("/orders?id=\"1\""),
        status: Some(403),
        bytes_in: 12,
        bytes_out: 34,
        duration: Duration::from_micros(1500),
        decision: "deny",
        layer: Some("authorization"),
        policy: Some("AuthorizationPolicy/shop/deny-orders"),
        reason: Some("a DENY policy matched"),
        retries: 0,
        endpoint: None,
        overflow: None,
        timeout: None,
        waf: None,
    }
}

#[test]
fn a_line_is_json_with_every_field() {
    let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let value: serde_json::Value = serde_json::from_str(&entry().to_json(time)).unwrap();
    let expected = serde_json::json!({
        "time": "2023-11-14T22:13:20.123Z",
        "kind": "http",
        "direction": "inbound",
        "request_id": "req-1",
        "source": "spiffe://cluster.local/ns/shop/sa/web",
        "source_addr": "127.0.0.1:40000",
        "destination": "spiffe://cluster.local/ns/shop/sa/api",
        "upstream": "127.0.0.1:8080",
        "method": "GET",
        "path": "/orders?id=\"1\"",
        "status": 403,
        "bytes_in": 12,
        "bytes_out": 34,
        "duration_ms": 1.5,
        "decision": "deny",
        "layer": "authorization",
        "policy": "AuthorizationPolicy/shop/deny-orders",
        "reason": "a DENY policy matched",
        "retries": 0,
        "endpoint": null,
        "overflow": null,
        "timeout": null,
        "waf": null,
    });
    assert_eq!(value, expected);
}

#[test]
fn unknown_fields_are_null_not_missing() {
    let e = Entry {
        kind: "tcp",
        direction: Direction::Outbound,
        request_id: None,
        source: None,
        destination: None,
        upstream: None,
        method: None,
        path: None,
        status: None,
        layer: None,
        policy: None,
        reason: None,
        retries: 1,
        endpoint: Some("10.0.0.2:4143".parse().unwrap()),
        overflow: Some("max_requests"),
        timeout: Some("per_try"),
        decision: "allow",
        ..entry()
    };
    let value: serde_json::Value = serde_json::from_str(&e.to_json(SystemTime::now())).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), 23);
    assert!(object["source"].is_null() && object["status"].is_null());
    assert_eq!(object["direction"], "outbound");
    assert_eq!(object["retries"], 1);
    assert_eq!(object["endpoint"], "10.0.0.2:4143");
    assert_eq!(
        (&object["overflow"], &object["timeout"]),
        (&"max_requests".into(), &"per_try".into())
    );
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    let end = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
    assert_eq!(rfc3339(end), "2099-12-31T23:59:59.000Z");
}

#[test]
fn lines_are_appended_to_the_file_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AccessLogSpec {
        enabled: true,
        path: Some(PathBuf::from("access.log")),
    };
    let log = AccessLog::new(&spec, dir.path()).unwrap();
    log.write(&entry());
    log.write(&entry());
    assert!(log.flush(WAIT));
    let text = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["policy"], "AuthorizationPolicy/shop/deny-orders");
    }
    assert_eq!(log.dropped(), 0);
}

#[test]
fn disabled_logs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AccessLogSpec {
        enabled: false,
        path: Some(PathBuf::from("access.log")),
    };
    let log = AccessLog::new(&spec, dir.path()).unwrap();
    log.write(&entry());
    assert!(log.flush(WAIT));
    assert!(!log.is_enabled());
    assert!(!dir.path().join("access.log").exists());
}

#[test]
fn switching_off_at_runtime_stops_lines() {
    let sink = Shared::default();
    let log = AccessLog::with_sink(Box::new(sink.clone()), 16).unwrap();
    log.set_enabled(false);
    log.write(&entry());
    log.set_enabled(true);
    log.write(&entry());
    assert!(log.flush(WAIT));
    assert_eq!(sink.lines(), 1);
}

#[test]
fn an_unopenable_file_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AccessLogSpec {
        enabled: true,
        path: Some(PathBuf::from("missing/dir/access.log")),
    };
    let err = AccessLog::new(&spec, dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("spec.accessLog.path: cannot open"), "{err}");
}

/// A sink whose writes fail.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("disk full"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_drop_and_count_lines_without_panicking() {
    let metrics = Metrics::new();
    let log = AccessLog::with_sink(Box::new(Broken), 16)
        .unwrap()
        .with_metrics(Arc::clone(&metrics));
    for _ in 0..3 {
        log.write(&entry());
    }
    assert!(log.flush(WAIT));
    assert_eq!(log.dropped(), 3);
    assert!(
        metrics
            .encode()
            .contains("bulkhead_proxy_access_log_dropped_lines_total 3")
    );
}

/// What a [`Shared`] sink has seen.
#[derive(Default)]
struct SinkState {
    text: String,
    /// While set, writes wait.
    held: bool,
    /// Set once a write is waiting.
    waiting: bool,
}

/// A sink that records what it gets and can be held shut.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<SinkState>>, Arc<Condvar>);

impl Shared {
    fn hold(&self, held: bool) {
        self.0.lock().unwrap().held = held;
        self.1.notify_all();
    }

    fn wait_until_waiting(&self) {
        let state = self.0.lock().unwrap();
        let (_state, timeout) = self
            .1
            .wait_timeout_while(state, WAIT, |s| !s.waiting)
            .unwrap();
        assert!(!timeout.timed_out(), "the writer never reached the sink");
    }

    fn lines(&self) -> u64 {
        self.0.lock().unwrap().text.lines().count() as u64
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock().unwrap();
        state.waiting = state.held;
        self.1.notify_all();
        while state.held {
            state = self.1.wait(state).unwrap();
        }
        state.text.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_instead_of_blocking() {
    let sink = Shared::default();
    sink.hold(true);
    let log = AccessLog::with_sink(Box::new(sink.clone()), 1).unwrap();
    log.write(&entry());
    sink.wait_until_waiting();
    // The writer is stuck in the sink: the queue takes one line, the other eight are
    // dropped, and none of the writes waits.
    for _ in 0..9 {
        log.write(&entry());
    }
    assert_eq!(log.dropped(), 8);
    sink.hold(false);
    assert!(log.flush(WAIT));
    assert_eq!(sink.lines(), 2);
}
