//! Following the sidecars' access logs (JSON lines) for the live event log.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::supervise::Event;

/// How often a log at its end is checked for more.
const POLL: Duration = Duration::from_millis(200);

/// One request or connection, as the access log records it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// RFC 3339 time.
    pub time: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The caller's identity, when known.
    pub source: Option<String>,
    /// The destination (service or workload), when known.
    pub destination: Option<String>,
    /// HTTP method (none for TCP).
    pub method: Option<String>,
    /// HTTP path.
    pub path: Option<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why it was denied, when it was.
    pub reason: Option<String>,
}

impl Request {
    /// Parses one access log line; `None` for anything else.
    pub fn parse(line: &str) -> Option<Request> {
        let v: Value = serde_json::from_str(line).ok()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Request {
            time: s("time")?,
            direction: s("direction").unwrap_or_default(),
            source: s("source"),
            destination: s("destination"),
            method: s("method"),
            path: s("path"),
            status: v
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok()),
            decision: s("decision").unwrap_or_default(),
            reason: s("reason"),
        })
    }

    /// Whether the request was refused by policy.
    pub fn denied(&self) -> bool {
        self.decision == "deny"
    }

    /// Whether the live log shows it: every inbound line (where policy is enforced), and
    /// outbound lines that were refused or failed.
    pub fn worth_showing(&self) -> bool {
        self.direction != "outbound" || self.denied() || self.status.is_none_or(|s| s >= 500)
    }
}

/// Follows `path` from its current end (or its start, once it appears) until `stop`.
pub async fn follow(
    workload: String,
    path: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let start = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
    let mut pos = start;
    let mut pending = String::new();
    loop {
        if let Ok(mut file) = tokio::fs::File::open(&path).await {
            let len = file.metadata().await.map_or(0, |m| m.len());
            if len < pos {
                pos = 0; // truncated or replaced
            }
            if file.seek(SeekFrom::Start(pos)).await.is_ok() {
                let mut reader = BufReader::new(file);
                while let Ok(n) = reader.read_line(&mut pending).await {
                    if n == 0 || !pending.ends_with('\n') {
                        break;
                    }
                    pos += pending.len() as u64;
                    if let Some(request) = Request::parse(pending.trim_end())
                        && request.worth_showing()
                    {
                        let _ = events.send(Event::Request(workload.clone(), Box::new(request)));
                    }
                    pending.clear();
                }
                // A partial last line is read again next time.
                pending.clear();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
