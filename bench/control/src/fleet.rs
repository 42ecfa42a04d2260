//! The coordinator's view of the simulated proxies: every snapshot each one received (its
//! version and when), fed by the proxies' stream tasks over one channel. Arrival instants
//! are taken by the proxy tasks themselves, so the coordinator's own delay in reading the
//! channel never shows in a latency.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::mpsc;

/// What a proxy task reports.
#[derive(Debug)]
pub(crate) enum Event {
    /// A snapshot was received (and its ACK queued) at `at`.
    Snapshot {
        proxy: usize,
        version: u64,
        bytes: usize,
        at: Instant,
    },
    /// The stream ended (it never should during the run).
    Ended { proxy: usize, reason: String },
}

/// Per-proxy state, updated from the events.
pub(crate) struct Fleet {
    rx: mpsc::UnboundedReceiver<Event>,
    /// The latest version each proxy received (0: none yet).
    pub(crate) last: Vec<u64>,
    /// How many snapshots each proxy received.
    pub(crate) count: Vec<u64>,
    /// The encoded size of the latest snapshot each proxy received.
    pub(crate) bytes: Vec<usize>,
    /// When the latest snapshot of any proxy arrived.
    pub(crate) latest: Option<Instant>,
}

impl Fleet {
    /// A fleet of `n` proxies reporting on `rx`.
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Event>, n: usize) -> Fleet {
        Fleet {
            rx,
            last: vec![0; n],
            count: vec![0; n],
            bytes: vec![0; n],
            latest: None,
        }
    }

    /// The next event, applied to the state; `None` at `deadline`. A stream that ended is
    /// an error: the measurement would be wrong without it.
    pub(crate) async fn next(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<(usize, u64, Instant)>> {
        let event = match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("every proxy task is gone"),
            Ok(Some(event)) => event,
        };
        match event {
            Event::Snapshot {
                proxy,
                version,
                bytes,
                at,
            } => {
                self.last[proxy] = self.last[proxy].max(version);
                self.count[proxy] += 1;
                self.bytes[proxy] = bytes;
                self.latest = Some(self.latest.map_or(at, |l| l.max(at)));
                Ok(Some((proxy, version, at)))
            }
            Event::Ended { proxy, reason } => bail!("proxy {proxy}'s stream ended: {reason}"),
        }
    }

    /// Reads events until none arrived for `quiet`; fails after `max`. Returns how many
    /// snapshots arrived meanwhile.
    pub(crate) async fn quiesce(&mut self, quiet: Duration, max: Duration) -> Result<u64> {
        let give_up = Instant::now() + max;
        let mut received = 0;
        loop {
            let deadline = (Instant::now() + quiet).min(give_up);
            match self.next(deadline).await? {
                Some(_) => received += 1,
                None if Instant::now() >= give_up => {
                    bail!("snapshots still arriving after {max:?}")
                }
                None => return Ok(received),
            }
        }
    }

    /// Total snapshots received so far.
    pub(crate) fn total(&self) -> u64 {
        self.count.iter().sum()
    }
}
