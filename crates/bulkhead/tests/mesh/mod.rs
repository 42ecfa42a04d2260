//! Processes for end-to-end tests of a managed mesh: a control plane, sidecars under it,
//! a tiny HTTP app, and the CLI, all on loopback with ephemeral ports.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A policy denying `/admin` in namespace `shop` (the flow the tests flip).
pub const DENY_ADMIN: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [\"/admin\"]}}]}]
";

/// How long any one wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The bulkhead binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bulkhead")
}

/// Runs the CLI with the context file in `dir`.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("BULKHEAD_CONTEXT", dir.join("ctx.yaml"))
        .current_dir(dir)
        .output()
        .expect("spawn bulkhead")
}

/// Runs the CLI and returns its stdout, failing the test on a non-zero exit.
pub fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "bulkhead {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A port nothing listens on right now (the kernel's choice for port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An address nothing listens on right now, for a listener a child process binds later:
/// the kernel's choice for port 0 on a loopback address other than 127.0.0.1
/// (127.0.0.2 upwards, a different one each call). Between our release and the child's
/// bind, 127.0.0.1's ephemeral ports keep going to the test's outgoing connections
/// (whose source is 127.0.0.1), so a port released there can be taken (`free_port`'s
/// race); one on another loopback address cannot.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let host = 2 + NEXT.fetch_add(1, Ordering::Relaxed) % 250;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, host], 0))).unwrap();
    listener.local_addr().unwrap()
}

/// A child process whose output lines are read on threads; killed on drop.
pub struct Proc {
    pub child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

fn reader(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Proc {
    /// Starts `bulkhead args...` in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bulkhead");
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line containing `needle`.
    pub fn stdout_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no stdout line with `{needle}`; stderr: {}",
                    self.drain_stderr()
                ),
            }
        }
    }

    /// The next JSON log line (stderr) whose message is `message`.
    pub fn log(&self, message: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.stderr.recv_timeout(left) else {
                panic!(
                    "no `{message}` log line; stderr so far:\n{}",
                    seen.join("\n")
                );
            };
            seen.push(line.clone());
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value["message"] == message
            {
                return value;
            }
        }
    }

    fn drain_stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILL, and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running control plane: its process, address and the directory of its context file.
pub struct ControlPlane {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub ca_file: PathBuf,
}

impl ControlPlane {
    /// Starts `bulkhead control` with its data in `dir/cp`, writing `dir/ctx.yaml` on the
    /// first start, listening on `listen` (`127.0.0.1:0` for a fresh port).
    pub fn start(dir: &Path, listen: &str) -> ControlPlane {
        let proc = Proc::start(
            dir,
            &[
                "control",
                "--data-dir",
                "cp",
                "--listen",
                listen,
                "--context-out",
                "ctx.yaml",
            ],
        );
        let line = proc.stdout_line("control plane listening on https://");
        let addr = line
            .rsplit("https://")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        ControlPlane {
            proc,
            addr,
            ca_file: dir.join("cp/tls/ca.pem"),
        }
    }
}

/// An HTTP/1.1 app on 127.0.0.1 answering every request `200 app:<name>` (one thread per
/// connection; runs until the test process ends).
pub fn app(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || serve_app(stream, name));
        }
    });
    addr
}

fn serve_app(stream: TcpStream, name: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        let mut content_length = 0usize;
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let text = format!("app:{name}");
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// `GET path` on `addr` (plain HTTP/1.1, one connection): status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.get(9..12)?.parse().ok()?, body.to_owned()))
}

/// Polls `check` (bounded by [`WAIT`]) until it returns true.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}
