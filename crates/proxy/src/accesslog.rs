//! The access log: one JSON line per HTTP request and per TCP connection.
//!
//! The data path must never wait on a disk. [`AccessLog::write`] renders the line on the
//! caller's thread (a few hundred bytes, no I/O) and hands it to a dedicated writer thread
//! through a bounded channel; when the channel is full, or the file cannot be written, the
//! line is dropped and counted instead. The writer flushes whenever it catches up, so lines
//! appear promptly under light load and are batched under heavy load.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::AccessLogSpec;
use crate::metrics::{Direction, Metrics};
use crate::snapshot::Snapshot;
use crate::waf::WafEvent;

/// Lines that may wait for the writer before new ones are dropped (a few MB at most).
const QUEUE_LINES: usize = 8192;

/// Why the access log could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessLogError {
    /// `spec.accessLog.path` could not be opened for appending.
    #[error("spec.accessLog.path: cannot open `{}` for appending: {source}", path.display())]
    Open {
        /// The resolved path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the access log writer thread: {0}")]
    Thread(#[source] io::Error),
}

/// One access log record, borrowed from the connection or request it describes.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// `http` or `tcp`.
    pub kind: &'static str,
    /// Which listener the traffic arrived on.
    pub direction: Direction,
    /// The `x-request-id` (HTTP only).
    pub request_id: Option<&'a str>,
    /// The peer's SPIFFE ID; `None` for plaintext.
    pub source: Option<&'a str>,
    /// The peer's address.
    pub source_addr: SocketAddr,
    /// The destination's SPIFFE ID (outbound: the upstream's), when known.
    pub destination: Option<&'a str>,
    /// The address traffic was forwarded to.
    pub upstream: Option<SocketAddr>,
    /// HTTP method.
    pub method: Option<&'a str>,
    /// HTTP path (with query, as received).
    pub path: Option<&'a str>,
    /// HTTP response status.
    pub status: Option<u16>,
    /// Bytes received from the downstream side.
    pub bytes_in: u64,
    /// Bytes sent to the downstream side.
    pub bytes_out: u64,
    /// Time from accept (TCP) or request head (HTTP) to the end.
    pub duration: Duration,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The deciding layer (`network`, `authentication`, `authorization`).
    pub layer: Option<&'a str>,
    /// The deciding policy, `Kind/namespace/name`.
    pub policy: Option<&'a str>,
    /// Why it was decided so.
    pub reason: Option<&'a str>,
    /// Retries sent (outbound HTTP).
    pub retries: u32,
    /// The endpoint of the last try or connection attempt (outbound), even when it failed.
    pub endpoint: Option<SocketAddr>,
    /// The circuit breaker that refused the request (`max_requests`, ...).
    pub overflow: Option<&'static str>,
    /// The timeout that fired (`connect`, `request`, `per_try`).
    pub timeout: Option<&'static str>,
    /// What the web application firewall found and did (inbound HTTP, when it logged a
    /// match or refused).
    pub waf: Option<&'a WafEvent>,
}

/// The JSON shape of a line; every key is always present (`null` when unknown) so that
/// consumers see one schema.
#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    kind: &'static str,
    direction: &'static str,
    request_id: Option<&'a str>,
    source: Option<&'a str>,
    source_addr: String,
    destination: Option<&'a str>,
    upstream: Option<String>,
    method: Option<&'a str>,
    path: Option<&'a str>,
    status: Option<u16>,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    decision: &'static str,
    layer: Option<&'a str>,
    policy: Option<&'a str>,
    reason: Option<&'a str>,
    retries: u32,
    endpoint: Option<String>,
    overflow: Option<&'static str>,
    timeout: Option<&'static str>,
    waf: Option<&'a WafEvent>,
}

impl Entry<'_> {
    /// The entry as one JSON object (no trailing newline), stamped with `now`.
    pub fn to_json(&self, now: SystemTime) -> String {
        let time = rfc3339(now);
        let line = Line {
            time: &time,
            kind: self.kind,
            direction: self.direction.as_str(),
            request_id: self.request_id,
            source: self.source,
            source_addr: self.source_addr.to_string(),
            destination: self.destination,
            upstream: self.upstream.map(|a| a.to_string()),
            method: self.method,
            path: self.path,
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_ms: (self.duration.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            decision: self.decision,
            layer: self.layer,
            policy: self.policy,
            reason: self.reason,
            retries: self.retries,
            endpoint: self.endpoint.map(|a| a.to_string()),
            overflow: self.overflow,
            timeout: self.timeout,
            waf: self.waf,
        };
        // Serializing strings, numbers and options into a String cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

enum Message {
    Line(String),
    /// Flush everything queued before this message, then acknowledge.
    Flush(mpsc::Sender<()>),
}

/// Counters shared with the writer thread.
#[derive(Debug, Default)]
struct Shared {
    dropped: AtomicU64,
    metrics: OnceLock<Arc<Metrics>>,
}

impl Shared {
    fn drop_lines(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
        if let Some(metrics) = self.metrics.get() {
            metrics.access_log_dropped(lines);
        }
    }
}

/// The access log writer; share it as `Arc<AccessLog>`.
#[derive(Debug)]
pub struct AccessLog {
    sender: Option<SyncSender<Message>>,
    enabled: AtomicBool,
    shared: Arc<Shared>,
}

impl AccessLog {
    /// Opens the log `spec` describes: the file at `spec.path` (relative to `base_dir`,
    /// appended to, created when missing) or standard output. A log disabled here stays
    /// off until restart; one enabled here can be switched off and on with
    /// [`AccessLog::set_enabled`].
    pub fn new(spec: &AccessLogSpec, base_dir: &Path) -> Result<AccessLog, AccessLogError> {
        if !spec.enabled {
            return Ok(AccessLog::disabled());
        }
        let sink: Box<dyn Write + Send> = match &spec.path {
            Some(path) => {
                let path = base_dir.join(path);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| AccessLogError::Open { path, source })?;
                Box::new(file)
            }
            None => Box::new(io::stdout()),
        };
        AccessLog::with_sink(sink, QUEUE_LINES)
    }

    /// A log that writes nothing.
    pub fn disabled() -> AccessLog {
        AccessLog {
            sender: None,
            enabled: AtomicBool::new(false),
            shared: Arc::default(),
        }
    }

    /// A log writing to `sink` from its own thread, queueing at most `capacity` lines.
    pub(crate) fn with_sink(
        sink: Box<dyn Write + Send>,
        capacity: usize,
    ) -> Result<AccessLog, AccessLogError> {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared::default());
        let writer_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("bulkhead-access-log".into())
            .spawn(move || writer_loop(receiver, sink, &writer_shared))
            .map_err(AccessLogError::Thread)?;
        Ok(AccessLog {
            sender: Some(sender),
            enabled: AtomicBool::new(true),
            shared,
        })
    }

    /// Also counts dropped lines in `metrics` (`bulkhead_proxy_access_log_dropped_lines_total`).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> AccessLog {
        let _ = self.shared.metrics.set(metrics);
        self
    }

    /// True when lines are being written.
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some() && self.enabled.load(Ordering::Relaxed)
    }

    /// Switches writing off or back on (a reloaded `spec.accessLog.enabled`).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Queues one line; never blocks and never fails (a line that cannot be queued is
    /// counted in [`AccessLog::dropped`]).
    pub fn write(&self, e: &Entry<'_>) {
        if !self.is_enabled() {
            return;
        }
        let Some(sender) = &self.sender else { return };
        let mut line = e.to_json(SystemTime::now());
        line.push('\n');
        match sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.shared.drop_lines(1),
        }
    }

    /// Keeps writing switched on or off as each published snapshot's `access_log` says,
    /// until the snapshot source is gone.
    pub async fn follow(self: Arc<Self>, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        loop {
            let enabled = snapshots.borrow_and_update().access_log;
            self.set_enabled(enabled);
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    }

    /// Lines dropped so far (queue full or write errors).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` until every line queued so far is written and flushed; true
    /// when that happened. For shutdown and tests; blocks the calling thread.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(sender) = &self.sender else {
            return true;
        };
        let (ack, done) = mpsc::channel();
        // A blocking send is fine here: this is never called from the data path.
        if sender.send(Message::Flush(ack)).is_err() {
            return false;
        }
        !matches!(
            done.recv_timeout(timeout),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected)
        )
    }
}

/// The writer thread's side: a byte buffer in front of the sink, so that a failed write
/// drops exactly the lines in the buffer and nothing is retried forever.
struct Sink<'s> {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    lines: u64,
    failures: u64,
    shared: &'s Shared,
}

/// Buffer size at which the writer flushes even if more lines are queued.
const FLUSH_BYTES: usize = 64 * 1024;

impl Sink<'_> {
    fn push(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.lines += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes and flushes the buffer; its lines are counted as dropped when that fails.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let written = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        if let Err(e) = written {
            self.failures += 1;
            report_failure(&e, self.failures);
            self.shared.drop_lines(self.lines);
        }
        self.buf.clear();
        self.lines = 0;
    }
}

/// Writes queued lines until every sender is gone, flushing whenever the queue is empty.
fn writer_loop(receiver: Receiver<Message>, out: Box<dyn Write + Send>, shared: &Shared) {
    let mut sink = Sink {
        out,
        buf: Vec::with_capacity(FLUSH_BYTES),
        lines: 0,
        failures: 0,
        shared,
    };
    while let Ok(message) = receiver.recv() {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => sink.push(&line),
                Message::Flush(ack) => {
                    sink.flush();
                    let _ = ack.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        sink.flush();
    }
    sink.flush();
}

/// Logs the first write failure and then every 1000th, so a full disk does not flood the
/// process log.
fn report_failure(e: &io::Error, failures: u64) {
    if failures == 1 || failures.is_multiple_of(1000) {
        tracing::warn!(error = %e, failures, "access log write failed; lines are being dropped");
    }
}

/// `2024-05-01T12:34:56.789Z`: RFC 3339 in UTC with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
    out
}

/// Days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
