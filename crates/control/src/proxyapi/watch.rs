//! `Watch`: one task per proxy stream. It registers the proxy, then sends a snapshot
//! whenever the mesh changes in a way that changes this proxy's snapshot (equal hashes are
//! never re-sent, which also makes a reconnect with `applied_hash` free), and records the
//! proxy's ACKs and NACKs.
//!
//! At most one snapshot waits to be sent: a newer build replaces it, so a slow proxy gets
//! the latest configuration rather than a backlog, and acknowledgements are read while it
//! waits.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use bulkhead_api::proxy::watch_request::Request as Message;
use bulkhead_api::proxy::{Ack, Snapshot, Subscribe, WatchRequest};
use bulkhead_identity::SpiffeId;
use bulkhead_store::Registration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::ProxyApiService;
use super::register::{self, unix_seconds};
use super::snapshot::{self, Subscription};

/// Snapshots queued in the response stream beyond the one pending in the task.
const SEND_BUFFER: usize = 2;
/// Sent snapshots remembered for matching ACKs (a proxy answers in order, so few suffice).
const IN_FLIGHT: usize = 16;

type Sender = mpsc::Sender<Result<Snapshot, Status>>;

/// Handles one `Watch` call: checks and registers the proxy, then leaves the stream to
/// its own task.
pub(super) async fn watch(
    svc: &ProxyApiService,
    request: Request<Streaming<WatchRequest>>,
) -> Result<Response<ReceiverStream<Result<Snapshot, Status>>>, Status> {
    let peer = super::peer(&request);
    let id = peer
        .as_ref()
        .and_then(|p| p.spiffe_id.clone())
        .ok_or_else(|| {
            Status::unauthenticated("Watch needs the proxy's SVID as TLS client certificate")
        })?;
    let mut requests = request.into_inner();
    let subscribe = match requests.next().await {
        Some(Ok(WatchRequest {
            request: Some(Message::Subscribe(subscribe)),
        })) => subscribe,
        Some(Ok(_)) => {
            return Err(Status::invalid_argument(
                "the first message of a Watch stream must be Subscribe",
            ));
        }
        Some(Err(status)) => return Err(status),
        None => {
            return Err(Status::invalid_argument(
                "the Watch stream ended before Subscribe",
            ));
        }
    };
    let session = Session::start(svc, &id, peer.map(|p| p.addr.ip()), &subscribe).await?;
    let (tx, rx) = mpsc::channel(SEND_BUFFER);
    tokio::spawn(session.run(requests, tx));
    Ok(Response::new(ReceiverStream::new(rx)))
}

/// A snapshot waiting to be sent, with the commit time of the first change it carries
/// (`None` for a fresh stream's first snapshot, which is not a push).
struct Pending {
    snapshot: Snapshot,
    at: Option<Instant>,
}

/// A sent snapshot not yet answered.
struct InFlight {
    version: u64,
    hash: String,
    at: Option<Instant>,
}

/// One proxy's stream.
struct Session {
    svc: ProxyApiService,
    sub: Subscription,
    reg: Registration,
    /// This stream's id in the service's instance ownership table.
    stream: u64,
    bundle_pem: String,
    /// What the proxy has, or will have once it takes the last snapshot sent.
    sent_hash: String,
    in_flight: VecDeque<InFlight>,
}

impl Session {
    /// Checks the subscription, stores the registration and marks the proxy connected.
    async fn start(
        svc: &ProxyApiService,
        id: &SpiffeId,
        peer_ip: Option<std::net::IpAddr>,
        subscribe: &Subscribe,
    ) -> Result<Session, Status> {
        let shared = &svc.shared;
        let sub = register::subscription(shared, id, subscribe)?;
        let view = svc.view().await?;
        register::authorize(&view, &sub)?;
        let now = SystemTime::now();
        let reg = register::registration(&view, &sub, id, peer_ip, subscribe.cert_expiry_unix, now);
        let moved = register::moved(&view, &reg);
        // Claimed before the write, so that an older stream of the same instance ending
        // now cannot overwrite the registration with `connected: false`.
        let stream = svc.claim(&reg.instance);
        if let Err(status) = register::persist(shared, reg.clone()).await {
            svc.release(&reg.instance, stream);
            return Err(status);
        }
        shared.update_proxy(&reg.instance, |s| {
            s.workload.clone_from(&reg.workload);
            s.identity.clone_from(&reg.identity);
            s.connected = true;
            s.inbound = reg
                .inbound
                .iter()
                .map(|(p, a, _)| format!("{p}={a}"))
                .collect();
            s.cert_expiry = reg
                .cert_expiry_unix
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| {
                    crate::rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t))
                });
            s.last_seen = crate::rfc3339(now);
        });
        if moved {
            shared.topology_changed();
        }
        tracing::info!(instance = %reg.instance, identity = %id,
            applied_version = subscribe.applied_version, "proxy connected");
        Ok(Session {
            bundle_pem: shared.bundle.to_pem(),
            svc: svc.clone(),
            sub,
            reg,
            stream,
            sent_hash: subscribe.applied_hash.clone(),
            in_flight: VecDeque::new(),
        })
    }

    /// Serves the stream until either side ends it.
    async fn run<S>(mut self, mut requests: S, tx: Sender)
    where
        S: Stream<Item = Result<WatchRequest, Status>> + Unpin + Send,
    {
        let mut changes = self.svc.shared.subscribe_changes();
        changes.borrow_and_update();
        // A failed build was logged; the next change tries again.
        let mut pending: Option<Pending> = self.build(None).await.unwrap_or_default();
        let reason = loop {
            tokio::select! {
                permit = tx.reserve(), if pending.is_some() => match (permit, pending.take()) {
                    (Ok(permit), Some(p)) => permit.send(Ok(self.sent(p))),
                    _ => break "the response stream was dropped".to_owned(),
                },
                changed = changes.changed() => {
                    if changed.is_err() {
                        break "the control plane is shutting down".to_owned();
                    }
                    let change_at = changes.borrow_and_update().at;
                    // A pending snapshot keeps the time of the first change it carries.
                    let at = match &pending {
                        Some(p) => p.at,
                        None => Some(change_at),
                    };
                    if let Ok(rebuilt) = self.build(at).await {
                        pending = rebuilt;
                    }
                }
                message = requests.next() => match message {
                    Some(Ok(message)) => {
                        if let Err(status) = self.received(message) {
                            let reason = status.message().to_owned();
                            let _ = tx.send(Err(status)).await;
                            break reason;
                        }
                    }
                    Some(Err(status)) => break format!("stream error: {status}"),
                    None => break "the proxy closed the stream".to_owned(),
                },
                () = tx.closed(), if pending.is_none() => {
                    break "the proxy went away".to_owned();
                }
            }
        };
        self.disconnect(&reason).await;
    }

    /// Builds this proxy's snapshot from the latest view; `None` when the proxy already
    /// has (or is being sent) exactly this content.
    async fn build(&self, at: Option<Instant>) -> Result<Option<Pending>, Status> {
        let view = self.svc.view().await?;
        let shared = &self.svc.shared;
        let started = Instant::now();
        let built = snapshot::build_unless(
            &view,
            &shared.trust_domain,
            &self.bundle_pem,
            &self.sub,
            &self.sent_hash,
        );
        shared.metrics.observe_snapshot_build(started.elapsed());
        Ok(built.map(|snapshot| Pending { snapshot, at }))
    }

    /// Records a snapshot as sent and returns it.
    fn sent(&mut self, pending: Pending) -> Snapshot {
        let snapshot = pending.snapshot;
        self.sent_hash.clone_from(&snapshot.hash);
        if self.in_flight.len() == IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(InFlight {
            version: snapshot.version,
            hash: snapshot.hash.clone(),
            at: pending.at,
        });
        let shared = &self.svc.shared;
        shared.update_proxy(&self.reg.instance, |s| s.sent_version = snapshot.version);
        shared.metrics.snapshot_sent();
        tracing::debug!(instance = %self.reg.instance, version = snapshot.version,
            hash = %snapshot.hash, "sent a snapshot");
        snapshot
    }

    /// Handles a message after `Subscribe`.
    fn received(&mut self, message: WatchRequest) -> Result<(), Status> {
        match message.request {
            Some(Message::Ack(ack)) => {
                self.acked(ack);
                Ok(())
            }
            Some(Message::Subscribe(_)) => Err(Status::invalid_argument(
                "Subscribe is sent once, as the first message of a Watch stream; open a new \
                 stream to change the subscription",
            )),
            None => Err(Status::invalid_argument(
                "a WatchRequest must hold a Subscribe or an Ack",
            )),
        }
    }

    /// Records an ACK (and the push latency of the change it completes) or a NACK.
    fn acked(&mut self, ack: Ack) {
        let shared = &self.svc.shared;
        let answered = self
            .in_flight
            .iter()
            .position(|f| f.version == ack.version && f.hash == ack.hash);
        let at = answered.and_then(|i| {
            let at = self.in_flight[i].at;
            self.in_flight.drain(..=i);
            at
        });
        let now = crate::rfc3339(SystemTime::now());
        if ack.error.is_empty() {
            if let Some(at) = at {
                shared.metrics.observe_push(at.elapsed());
            }
            shared.update_proxy(&self.reg.instance, |s| {
                s.applied_version = ack.version;
                s.last_nack = None;
                s.last_seen = now;
            });
        } else {
            shared.metrics.nack();
            tracing::warn!(instance = %self.reg.instance, version = ack.version,
                hash = %ack.hash, error = %ack.error, "the proxy refused a snapshot (NACK)");
            shared.update_proxy(&self.reg.instance, |s| {
                s.last_nack = Some(ack.error);
                s.last_seen = now;
            });
        }
    }

    /// Marks the proxy disconnected, unless a newer stream of the same instance took over.
    async fn disconnect(self, reason: &str) {
        let instance = &self.reg.instance;
        if !self.svc.release(instance, self.stream) {
            tracing::debug!(instance = %instance, reason, "the old stream of a reconnected proxy ended");
            return;
        }
        let now = SystemTime::now();
        let shared = &self.svc.shared;
        shared.update_proxy(instance, |s| {
            s.connected = false;
            s.last_seen = crate::rfc3339(now);
        });
        let mut reg = self.reg.clone();
        reg.connected = false;
        reg.last_seen_unix = unix_seconds(now);
        if let Err(status) = register::persist(shared, reg).await {
            tracing::warn!(instance = %instance, error = %status.message(),
                "cannot store that the proxy disconnected");
        }
        tracing::info!(instance = %instance, reason, "proxy disconnected");
    }
}
