//! The `Watch` stream: subscribe, apply or refuse every snapshot and say so (ACK/NACK),
//! and when the stream or connection fails keep serving what was applied, reconnect with
//! backoff and resume from the applied version and hash.
//!
//! The first snapshot is special: the data path's channel does not exist before it, so
//! the [`Watcher`] hands the channel's receiver to [`super::ControlledSource::start`]
//! when it publishes the first one. With a persisted snapshot (stateDir), that snapshot
//! is published instead when the first attempt fails or does not deliver within
//! [`super::Options::startup_timeout`].

use std::sync::Arc;

use bulkhead_api::proxy::watch_request::Request;
use bulkhead_api::proxy::{self, Ack, InboundPort, Subscribe, UpstreamRef, WatchRequest};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;

use super::Context;
use super::backoff::Backoff;
use super::build::{Built, build};
use super::error::{ControlError, SnapshotError};
use crate::reload::unix_seconds;
use crate::snapshot::Snapshot;

/// Where published snapshots go: to `start` (first) or the live channel (after).
enum Out {
    Pending(Option<oneshot::Sender<watch::Receiver<Arc<Snapshot>>>>),
    Live(watch::Sender<Arc<Snapshot>>),
}

/// How a session ended.
struct SessionEnd {
    error: ControlError,
    /// Whether the stream delivered a snapshot or stayed up long enough to reset backoff.
    healthy: bool,
}

/// What one session achieved before it ended.
#[derive(Default)]
struct Progress {
    opened: Option<Instant>,
    received: bool,
}

/// Follows the control plane for the life of the proxy.
pub(crate) struct Watcher {
    ctx: Arc<Context>,
    out: Out,
    applied: Option<(u64, String)>,
    backoff: Backoff,
    /// Since when the control plane is unreachable; `None` while connected.
    outage: Option<Instant>,
}

impl Watcher {
    /// A watcher that sends the data path's receiver on `first` with the first snapshot.
    pub(crate) fn new(
        ctx: Arc<Context>,
        first: oneshot::Sender<watch::Receiver<Arc<Snapshot>>>,
    ) -> Watcher {
        let backoff = Backoff::new(ctx.options.backoff.clone());
        Watcher {
            ctx,
            out: Out::Pending(Some(first)),
            applied: None,
            backoff,
            outage: None,
        }
    }

    /// Runs sessions forever; `fallback` is the persisted snapshot to serve when the
    /// control plane cannot be reached at start.
    pub(crate) async fn run(mut self, fallback: Option<proxy::Snapshot>) {
        let deadline = Instant::now() + self.ctx.options.startup_timeout;
        let address = self.ctx.client.address().to_string();
        let mut fallback = fallback;
        loop {
            let end = match &fallback {
                Some(_) if self.is_pending() => tokio::select! {
                    end = self.session() => end,
                    () = sleep_until(deadline) => SessionEnd {
                        error: ControlError::Unreachable {
                            address: address.clone(),
                            message: "no snapshot within the startup timeout".into(),
                        },
                        healthy: false,
                    },
                },
                _ => self.session().await,
            };
            if let Some(persisted) = fallback.take()
                && self.is_pending()
            {
                self.apply_persisted(persisted, &end.error).await;
            }
            let delay = self.disconnected(end);
            sleep(delay).await;
        }
    }

    fn is_pending(&self) -> bool {
        matches!(self.out, Out::Pending(_))
    }

    /// One connection and one stream, until either fails.
    async fn session(&mut self) -> SessionEnd {
        let mut progress = Progress::default();
        let error = match self.stream(&mut progress).await {
            Ok(()) => ControlError::Unreachable {
                address: self.ctx.client.address().to_string(),
                message: "the control plane ended the Watch stream".into(),
            },
            Err(e) => e,
        };
        let lasted = progress
            .opened
            .is_some_and(|t| t.elapsed() >= self.ctx.options.healthy_after);
        SessionEnd {
            error,
            healthy: progress.received || lasted,
        }
    }

    async fn stream(&mut self, progress: &mut Progress) -> Result<(), ControlError> {
        let client = Arc::clone(&self.ctx.client);
        let mut api = client.connect(Some(Arc::clone(&self.ctx.svid))).await?;
        let (requests, rx) = mpsc::channel(4);
        // Cannot fail: the channel is new and has room.
        let _ = requests.try_send(self.subscribe());
        let mut snapshots = api
            .watch(ReceiverStream::new(rx))
            .await
            .map_err(|s| client.refused("Watch", &s))?
            .into_inner();
        progress.opened = Some(Instant::now());
        self.connected();
        while let Some(message) = snapshots
            .message()
            .await
            .map_err(|s| client.refused("Watch", &s))?
        {
            progress.received = true;
            let ack = self.apply(message).await;
            requests
                .send(ack)
                .await
                .map_err(|_| ControlError::Unreachable {
                    address: client.address().to_string(),
                    message: "the Watch request stream closed".into(),
                })?;
        }
        Ok(())
    }

    /// `Subscribe`: who this proxy is, what it serves and dials, what it applied.
    fn subscribe(&self) -> WatchRequest {
        let cfg = &self.ctx.config;
        let (applied_version, applied_hash) = self.applied.clone().unwrap_or_default();
        let inbound = cfg.spec.inbound.iter().map(|i| InboundPort {
            port: u32::from(i.port),
            address: i.advertise.unwrap_or(i.listen).to_string(),
            protocol: i.protocol.as_str().to_owned(),
        });
        let upstreams = cfg.spec.outbound.iter().map(|o| UpstreamRef {
            service: o.service.clone(),
            port: u32::from(o.port),
        });
        let subscribe = Subscribe {
            workload: cfg.metadata.name.clone(),
            labels: cfg.metadata.labels.clone().into_iter().collect(),
            inbound: inbound.collect(),
            upstreams: upstreams.collect(),
            applied_version,
            applied_hash,
            cert_expiry_unix: unix_seconds(self.ctx.svid.expiry()),
        };
        WatchRequest {
            request: Some(Request::Subscribe(subscribe)),
        }
    }

    /// Builds `message` into a snapshot on a blocking thread (compiling a changed firewall
    /// takes a while), handing the message back with the result.
    async fn build(
        &self,
        message: proxy::Snapshot,
    ) -> (proxy::Snapshot, Result<Built, SnapshotError>) {
        let ctx = Arc::clone(&self.ctx);
        let previous = match &self.out {
            Out::Live(sender) => sender.borrow().waf.clone(),
            Out::Pending(_) => None,
        };
        let work = tokio::task::spawn_blocking(move || {
            let built = build(
                &ctx.config,
                &ctx.svid,
                &ctx.bundle,
                &message,
                previous.as_deref(),
            );
            (message, built)
        });
        match work.await {
            Ok(done) => done,
            // A bug in the build stays a bug of this task, as if it had run here.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down and nothing waits for this session.
            Err(_) => std::future::pending().await,
        }
    }

    /// Builds and publishes `message`, or refuses it; returns the ACK or NACK.
    async fn apply(&mut self, message: proxy::Snapshot) -> WatchRequest {
        let (version, hash) = (message.version, message.hash.clone());
        let (message, built) = self.build(message).await;
        let error = match built {
            Ok(built) => {
                self.publish(built, &hash, false);
                self.persist(message).await;
                String::new()
            }
            Err(e) => {
                self.reject(version, &hash, &e);
                e.to_string()
            }
        };
        WatchRequest {
            request: Some(Request::Ack(Ack {
                version,
                hash,
                error,
            })),
        }
    }

    /// The persisted snapshot, when the control plane could not be reached at start.
    async fn apply_persisted(&mut self, message: proxy::Snapshot, why: &ControlError) {
        let (message, built) = self.build(message).await;
        match built {
            Ok(built) => {
                tracing::warn!(version = message.version, error = %why,
                    "control plane unreachable at start; serving the snapshot persisted in stateDir");
                self.publish(built, &message.hash, true);
                // That was the outage's warning: the retries that follow log quietly.
                self.outage = Some(Instant::now());
            }
            Err(e) => tracing::warn!(version = message.version, error = %e,
                "the snapshot persisted in stateDir no longer loads; waiting for the control plane"),
        }
    }

    fn publish(&mut self, built: Built, hash: &str, from_state_dir: bool) {
        if let Some(bundle) = built.bundle
            && let Err(e) = self.ctx.bundle.replace(bundle)
        {
            // `build` prepared the same bundle successfully; kept for completeness.
            tracing::warn!(error = %e, "trust bundle from the snapshot not installed");
        }
        let snapshot = Arc::new(built.snapshot);
        let version = snapshot.version;
        self.ctx.metrics.set_config_version(version);
        self.applied = Some((version, hash.to_owned()));
        self.ctx.status.send_modify(|s| {
            s.applied_version = version;
            s.applied_hash = hash.to_owned();
            s.from_state_dir = from_state_dir;
            s.last_nack = None;
        });
        match &mut self.out {
            Out::Live(sender) => {
                self.ctx.metrics.config_reload(true);
                sender.send_replace(snapshot);
            }
            Out::Pending(first) => {
                let (sender, receiver) = watch::channel(snapshot);
                if let Some(first) = first.take() {
                    let _ = first.send(receiver);
                }
                self.out = Out::Live(sender);
            }
        }
        tracing::info!(version, hash, "control plane snapshot applied");
    }

    /// Keeps the snapshot for the next start; failing to is logged, not NACKed.
    async fn persist(&self, message: proxy::Snapshot) {
        let Some(state) = self.ctx.state.clone() else {
            return;
        };
        let saved = tokio::task::spawn_blocking(move || state.save_snapshot(&message)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot persist the snapshot"),
            Err(e) => tracing::warn!(error = %e, "the persisting task failed"),
        }
    }

    fn reject(&mut self, version: u64, hash: &str, error: &SnapshotError) {
        self.ctx.metrics.config_reload(false);
        let applied = self.applied.as_ref().map_or(0, |(v, _)| *v);
        self.ctx.status.send_modify(|s| {
            s.rejected += 1;
            s.last_nack = Some(format!("version {version}: {error}"));
        });
        tracing::warn!(version, hash, applied_version = applied, error = %error,
            "control plane snapshot rejected (NACK); the previous snapshot stays in force");
    }

    fn connected(&mut self) {
        if let Some(since) = self.outage.take() {
            tracing::info!(address = %self.ctx.client.address(),
                down_secs = since.elapsed().as_secs_f64(), "control plane reachable again");
        }
        self.ctx.status.send_modify(|s| {
            s.connected = true;
            s.streams += 1;
        });
    }

    /// Records a failed session and returns how long to wait before the next one.
    fn disconnected(&mut self, end: SessionEnd) -> std::time::Duration {
        if end.healthy {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay();
        let message = end.error.to_string();
        self.ctx.status.send_modify(|s| {
            s.connected = false;
            s.last_error = Some(message);
        });
        let retry_in_secs = delay.as_secs_f64();
        let address = self.ctx.client.address();
        if self.outage.is_some() {
            tracing::debug!(%address, error = %end.error, retry_in_secs, "control plane still unreachable");
        } else if self.is_pending() {
            tracing::warn!(%address, error = %end.error, retry_in_secs,
                "no snapshot from the control plane yet; the proxy serves nothing until one arrives");
        } else {
            tracing::warn!(%address, error = %end.error, retry_in_secs,
                "lost the control plane; serving the last good snapshot and certificate until it is back");
        }
        self.outage.get_or_insert_with(Instant::now);
        delay
    }
}
