//! End-to-end tests of `bulkhead proxy`: start-up failures exit 1 before binding, and a
//! running sidecar serves its admin listener, reloads on SIGHUP and stops on SIGTERM.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn bulkhead(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn bulkhead")
}

/// A directory with a CA and an SVID for shop/web under `web/`.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let init = bulkhead(
        dir.path(),
        &[
            "cert",
            "init",
            "--trust-domain",
            "cluster.local",
            "--out",
            "ca",
        ],
    );
    assert!(init.status.success(), "{init:?}");
    let issue = bulkhead(
        dir.path(),
        &[
            "cert",
            "issue",
            "--ca",
            "ca",
            "--id",
            "spiffe://cluster.local/ns/shop/sa/web",
            "--out",
            "web",
        ],
    );
    assert!(issue.status.success(), "{issue:?}");
    dir
}

const CONFIG: &str = "apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: web, namespace: shop}
spec:
  serviceAccount: web
  identity: {certFile: web/cert.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem}
  admin: {listen: \"127.0.0.1:0\"}
  accessLog: {enabled: false}
";

#[test]
fn an_invalid_config_exits_1_with_the_location() {
    let dir = sandbox();
    std::fs::write(
        dir.path().join("proxy.yaml"),
        CONFIG.replace("serviceAccount: web", "serviceAccount: api"),
    )
    .unwrap();
    let out = bulkhead(dir.path(), &["proxy", "--config", "proxy.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: spec.identity.certFile `./web/cert.pem`: the certificate is for `spiffe://cluster.local/ns/shop/sa/web`"), "{stderr}");

    std::fs::write(
        dir.path().join("proxy.yaml"),
        CONFIG.replace("127.0.0.1:0", "0.0.0.0:15000"),
    )
    .unwrap();
    let out = bulkhead(dir.path(), &["proxy", "--config", "proxy.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: proxy.yaml: document 1 (line 7): ProxyConfig/shop/web: spec.admin.listen: `0.0.0.0:15000` is not a loopback address"), "{stderr}");

    let out = bulkhead(
        dir.path(),
        &["proxy", "--config", "proxy.yaml", "--workers", "0"],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// The JSON log lines of a running proxy, read on a thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    fn start(dir: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
            .args(["proxy", "--config", "proxy.yaml", "--workers", "2"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("stderr is not JSON lines: {line}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The next log line whose message is `message`.
    fn wait_for(&self, message: &str) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no `{message}` log line"));
            assert!(
                line["level"].is_string() && line["timestamp"].is_string(),
                "{line}"
            );
            if line["message"] == message {
                return line;
            }
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

#[test]
fn a_running_proxy_serves_admin_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = sandbox();
    std::fs::write(dir.path().join("proxy.yaml"), CONFIG).unwrap();
    let mut proxy = Running::start(dir.path());
    let admin: SocketAddr = proxy.wait_for("admin listener ready")["admin"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    proxy.wait_for("data path listening");

    assert_eq!(
        get(admin, "/ready"),
        (200, "ready: config version 1\n".to_owned())
    );
    assert_eq!(get(admin, "/live").0, 200);
    let (status, metrics) = get(admin, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("bulkhead_proxy_config_version 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("bulkhead_proxy_certificate_expiry_timestamp_seconds "));
    let config: Value = serde_json::from_str(&get(admin, "/config").1).unwrap();
    assert_eq!(config["identity"], "spiffe://cluster.local/ns/shop/sa/web");

    proxy.signal("-HUP");
    let reloaded = proxy.wait_for("configuration reloaded");
    assert_eq!(reloaded["version"], 2);
    assert_eq!(get(admin, "/ready").1, "ready: config version 2\n");

    proxy.signal("-TERM");
    let (tx, rx) = mpsc::channel();
    let mut child = std::mem::replace(&mut proxy.child, Command::new("true").spawn().unwrap());
    thread::spawn(move || tx.send(child.wait().unwrap()));
    let status = rx
        .recv_timeout(WAIT)
        .expect("the proxy did not stop on SIGTERM");
    assert!(status.success(), "{status:?}");
}
