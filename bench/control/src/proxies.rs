//! The simulated proxies: join tokens, one `Certify` per proxy (fresh key and CSR, new
//! connection, join token), then one `Watch` stream per proxy presenting its SVID, which
//! subscribes as its workload and ACKs every snapshot as soon as it is decoded. Every
//! received snapshot is reported to the [`crate::fleet::Fleet`] with the instant it
//! arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bulkhead_api::proxy::watch_request::Request as Message;
use bulkhead_api::proxy::{Ack, CertifyRequest, InboundPort, Subscribe, UpstreamRef, WatchRequest};
use bulkhead_identity::ca::KeyAndCsr;
use bulkhead_identity::{SpiffeId, TrustDomain};
use prost::Message as _;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::fleet::Event;
use crate::grpc::{self, Identity};
use crate::mesh::{Layout, ProxySpec, SERVICE_PORT, TRUST_DOMAIN, WORKLOAD_PORT};
use crate::rest::Rest;

/// How long one Certify (connect + call) may take.
const CERTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a proxy may wait for its first snapshot after it starts connecting.
const FIRST_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the proxies connect, and what they trust.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) roots: Arc<RootCertStore>,
}

/// A certified proxy: its SVID and key, and the SVID's notAfter.
pub(crate) struct Certified {
    identity: Identity,
    expires_unix: i64,
}

/// Creates one join token per identity, with as many uses as proxies share it; returns
/// the secrets by (namespace, service account) and the seconds it took.
pub(crate) async fn join_tokens(
    rest: &Rest,
    layout: &Layout,
) -> Result<(HashMap<(String, String), String>, f64)> {
    let started = Instant::now();
    let mut tokens = HashMap::new();
    for (ns, sa, uses) in layout.identities() {
        let body = json!({"namespace": ns, "serviceAccount": sa, "maxUses": uses,
            "ttlSeconds": 3600});
        let answer = rest.post_json("/api/v1/jointokens", &body).await?;
        let secret = answer["secret"]
            .as_str()
            .context("the join-token answer has no secret")?;
        tokens.insert((ns, sa), secret.to_owned());
    }
    Ok((tokens, started.elapsed().as_secs_f64()))
}

/// Certifies every proxy, `concurrency` at a time; returns the certificates in proxy
/// order and each call's latency (connect + Certify), in seconds.
pub(crate) async fn certify_all(
    target: &Target,
    layout: &Layout,
    tokens: &HashMap<(String, String), String>,
    concurrency: usize,
) -> Result<(Vec<Certified>, Vec<f64>)> {
    let td = TrustDomain::new(TRUST_DOMAIN)?;
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(layout.proxies);
    for i in 0..layout.proxies {
        let spec = layout.proxy(i);
        let id = SpiffeId::for_workload(&td, &spec.namespace, &spec.service_account)?;
        let token = tokens
            .get(&(spec.namespace.clone(), spec.service_account.clone()))
            .context("no join token for a proxy's identity")?
            .clone();
        let (gate, target) = (Arc::clone(&gate), target.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let certify = certify(&target, &id, &token);
            tokio::time::timeout(CERTIFY_TIMEOUT, certify)
                .await
                .map_err(|_| anyhow!("Certify for {id} timed out"))?
        }));
    }
    let mut certified = Vec::with_capacity(tasks.len());
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (c, seconds) = task.await??;
        certified.push(c);
        latencies.push(seconds);
    }
    Ok((certified, latencies))
}

/// One proxy's first certificate: key and CSR, a new connection without client
/// certificate, `Certify` with the join token.
async fn certify(target: &Target, id: &SpiffeId, token: &str) -> Result<(Certified, f64)> {
    let key = KeyAndCsr::generate(id)?;
    let csr_pem = pem::encode(&pem::Pem::new(
        "CERTIFICATE REQUEST",
        key.csr_der().to_vec(),
    ));
    let started = Instant::now();
    let mut client = grpc::connect(target.addr, &target.roots, None).await?;
    let request = CertifyRequest {
        csr_pem,
        join_token: token.to_owned(),
    };
    let response = client
        .certify(request)
        .await
        .map_err(|s| anyhow!("Certify for {id}: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    let chain = CertificateDer::pem_slice_iter(response.cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the SVID chain is not PEM")?;
    anyhow::ensure!(!chain.is_empty(), "Certify returned no certificate");
    let identity = Identity {
        chain,
        key: PrivateKeyDer::Pkcs8(key.key_der()),
    };
    let certified = Certified {
        identity,
        expires_unix: response.expires_unix,
    };
    Ok((certified, seconds))
}

/// Running proxies: their stream tasks, aborted on drop.
pub(crate) struct Proxies {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Opens every proxy's Watch stream, `concurrency` proxies at a time, each slot held until
/// that proxy has ACKed its first snapshot. Returns the running proxies and each proxy's
/// time from starting to connect to receiving its first snapshot, in seconds.
pub(crate) async fn connect_all(
    target: &Target,
    layout: &Layout,
    certified: Vec<Certified>,
    events: &mpsc::UnboundedSender<Event>,
    concurrency: usize,
) -> Result<(Proxies, Vec<f64>)> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut proxies = Proxies { tasks: Vec::new() };
    let mut waits = Vec::with_capacity(certified.len());
    for (i, c) in certified.into_iter().enumerate() {
        let (first_tx, first_rx) = oneshot::channel();
        let stream = Stream {
            index: i,
            spec: layout.proxy(i),
            target: target.clone(),
            events: events.clone(),
            first: Some(first_tx),
        };
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let started = Instant::now();
        proxies.tasks.push(tokio::spawn(stream.run(c)));
        waits.push(tokio::spawn(async move {
            let first = tokio::time::timeout(FIRST_SNAPSHOT_TIMEOUT, first_rx).await;
            drop(permit);
            match first {
                Ok(Ok(at)) => Ok(at.duration_since(started).as_secs_f64()),
                Ok(Err(_)) => bail!("proxy {i}: the stream ended before its first snapshot"),
                Err(_) => bail!("proxy {i}: no first snapshot within {FIRST_SNAPSHOT_TIMEOUT:?}"),
            }
        }));
    }
    let mut firsts = Vec::with_capacity(waits.len());
    for wait in waits {
        firsts.push(wait.await??);
    }
    Ok((proxies, firsts))
}

/// One proxy's Watch stream.
struct Stream {
    index: usize,
    spec: ProxySpec,
    target: Target,
    events: mpsc::UnboundedSender<Event>,
    /// Told when the first snapshot was received and ACKed.
    first: Option<oneshot::Sender<Instant>>,
}

impl Stream {
    /// Runs the stream until it ends; reports the end to the fleet.
    async fn run(mut self, certified: Certified) {
        let reason = match self.serve(certified).await {
            Ok(()) => "the control plane closed the stream".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        let _ = self.events.send(Event::Ended {
            proxy: self.index,
            reason,
        });
    }

    async fn serve(&mut self, certified: Certified) -> Result<()> {
        let mut client = grpc::connect(
            self.target.addr,
            &self.target.roots,
            Some(certified.identity),
        )
        .await?;
        let (tx, rx) = mpsc::channel(4);
        let subscribe = self.subscribe(certified.expires_unix);
        tx.send(subscribe).await?;
        let mut snapshots = client
            .watch(ReceiverStream::new(rx))
            .await
            .map_err(|s| anyhow!("Watch: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        loop {
            let snapshot = match snapshots.message().await {
                Ok(Some(snapshot)) => snapshot,
                Ok(None) => return Ok(()),
                Err(s) => bail!("Watch: {:?}: {}", s.code(), s.message()),
            };
            let at = Instant::now();
            let ack = Ack {
                version: snapshot.version,
                hash: snapshot.hash.clone(),
                error: String::new(),
            };
            tx.send(WatchRequest {
                request: Some(Message::Ack(ack)),
            })
            .await?;
            let _ = self.events.send(Event::Snapshot {
                proxy: self.index,
                version: snapshot.version,
                bytes: snapshot.encoded_len(),
                at,
            });
            if let Some(first) = self.first.take() {
                let _ = first.send(at);
            }
        }
    }

    fn subscribe(&self, cert_expiry_unix: i64) -> WatchRequest {
        let upstreams = self
            .spec
            .upstreams
            .iter()
            .map(|service| UpstreamRef {
                service: service.clone(),
                port: u32::from(SERVICE_PORT),
            })
            .collect();
        let subscribe = Subscribe {
            workload: self.spec.workload.clone(),
            labels: HashMap::new(),
            inbound: vec![InboundPort {
                port: u32::from(WORKLOAD_PORT),
                address: self.spec.inbound.clone(),
                protocol: "http".to_owned(),
            }],
            upstreams,
            applied_version: 0,
            applied_hash: String::new(),
            cert_expiry_unix,
        };
        WatchRequest {
            request: Some(Message::Subscribe(subscribe)),
        }
    }
}
