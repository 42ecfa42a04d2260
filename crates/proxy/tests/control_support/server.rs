//! The fake control plane: `ProxyApi` served by tonic over a tokio-rustls acceptor that
//! records each connection's client certificate, so renewals and `Watch` can be
//! authenticated by SVID as the real one does.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulkhead_api::proxy::proxy_api_server::{ProxyApi, ProxyApiServer};
use bulkhead_api::proxy::watch_request::Request as WatchMessage;
use bulkhead_api::proxy::{
    Ack, CertifyRequest, CertifyResponse, Snapshot, Subscribe, WatchRequest,
};
use bulkhead_identity::ca::CertificateAuthority;
use bulkhead_identity::svid::inspect_leaf;
use bulkhead_identity::verify::verify_svid_chain;
use bulkhead_identity::{SpiffeId, TrustDomain};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::WAIT;

/// Something a proxy did, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A `Certify` call that succeeded; `client` is the SVID presented (renewals).
    Certify {
        token: String,
        client: Option<SpiffeId>,
        serial: String,
    },
    /// A `Watch` stream's `Subscribe`, with the serial of the client certificate.
    Subscribe {
        message: Subscribe,
        client_serial: String,
    },
    /// An `Ack` (or NACK) on a stream of `workload`.
    Ack { workload: String, ack: Ack },
}

/// Where a workload's stream takes its snapshots from.
type SnapshotSender = mpsc::Sender<Result<Snapshot, Status>>;

/// What the control plane knows, kept across restarts.
struct State {
    ca: CertificateAuthority,
    ttl: Mutex<Duration>,
    tokens: Mutex<HashMap<String, SpiffeId>>,
    snapshots: Mutex<HashMap<String, Snapshot>>,
    streams: Mutex<Vec<(String, SnapshotSender)>>,
    events: Mutex<Vec<Event>>,
    /// Bumped with every event, so that tests can wait for one.
    changes: watch::Sender<usize>,
}

impl State {
    fn record(&self, event: Event) {
        let mut events = self.events.lock().unwrap();
        events.push(event);
        let len = events.len();
        self.changes.send_replace(len);
    }
}

/// The fake control plane; restartable on the same port.
pub struct FakeControlPlane {
    state: Arc<State>,
    tls: Arc<ServerConfig>,
    addr: SocketAddr,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl FakeControlPlane {
    /// A CA for `cluster.local`, an API certificate for 127.0.0.1, serving on a fresh port.
    pub async fn start() -> FakeControlPlane {
        let td = TrustDomain::new("cluster.local").unwrap();
        let ca = CertificateAuthority::init(&td, SystemTime::now()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("api-ca.pem");
        let tls = server_tls(&ca, &ca_file);
        let (changes, _) = watch::channel(0);
        let state = Arc::new(State {
            ca,
            ttl: Mutex::new(Duration::from_secs(3600)),
            tokens: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(HashMap::new()),
            streams: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            changes,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cp = FakeControlPlane {
            state,
            tls,
            addr,
            ca_file,
            _dir: dir,
            running: None,
        };
        cp.serve(listener);
        cp
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API CA's PEM file (the proxy's `caFile`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The mesh trust bundle, PEM.
    pub fn bundle_pem(&self) -> String {
        self.state.ca.bundle().to_pem()
    }

    /// Lets `token` buy one certificate for `shop/<sa>`.
    pub fn add_token(&self, token: &str, sa: &str) {
        let id = SpiffeId::parse(&super::spiffe(sa)).unwrap();
        self.state
            .tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), id);
    }

    /// The lifetime of certificates issued from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        *self.state.ttl.lock().unwrap() = ttl;
    }

    /// Sets the snapshot of `workload` and sends it on its open streams.
    pub fn push(&self, workload: &str, snapshot: Snapshot) {
        self.state
            .snapshots
            .lock()
            .unwrap()
            .insert(workload.to_owned(), snapshot.clone());
        let mut streams = self.state.streams.lock().unwrap();
        streams.retain(|(_, tx)| !tx.is_closed());
        for (_, tx) in streams.iter().filter(|(w, _)| w == workload) {
            let _ = tx.try_send(Ok(snapshot.clone()));
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.state.events.lock().unwrap().clone()
    }

    /// Waits (bounded) for an event satisfying `pred` and returns it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let mut changes = self.state.changes.subscribe();
        let found = async {
            loop {
                if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                    return e;
                }
                changes.changed().await.unwrap();
            }
        };
        tokio::time::timeout(WAIT, found)
            .await
            .unwrap_or_else(|_| panic!("no {what} in {:#?}", self.events()))
    }

    /// Stops serving: ends every stream, closes the listener and the connections.
    pub async fn stop(&mut self) {
        let Some((shutdown, task)) = self.running.take() else {
            return;
        };
        self.state.streams.lock().unwrap().clear();
        let _ = shutdown.send(());
        let mut task = task;
        if tokio::time::timeout(WAIT, &mut task).await.is_err() {
            task.abort();
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(128).unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let (conns_tx, conns_rx) = mpsc::channel::<io::Result<PeerTls>>(16);
        let acceptor = TlsAcceptor::from(Arc::clone(&self.tls));
        let accepting = tokio::spawn(accept(listener, acceptor, conns_tx));
        let (shutdown, stop) = oneshot::channel::<()>();
        let service = ProxyApiServer::new(Api {
            state: Arc::clone(&self.state),
        });
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder().serve_with_incoming_shutdown(
                service,
                ReceiverStream::new(conns_rx),
                async move {
                    let _ = stop.await;
                    accepting.abort();
                },
            );
            let _ = served.await;
        });
        self.running = Some((shutdown, task));
    }
}

/// TLS-accepts connections and hands them to tonic; a failed handshake is dropped.
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    conns: mpsc::Sender<io::Result<PeerTls>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, conns) = (acceptor.clone(), conns.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = conns.send(Ok(PeerTls(tls))).await;
            }
        });
    }
}

/// A TLS connection whose connect info is the client's certificate chain.
struct PeerTls(TlsStream<TcpStream>);

/// The client certificate chain of the connection a request came on, if any.
#[derive(Clone)]
struct PeerCerts(Option<Arc<Vec<CertificateDer<'static>>>>);

impl Connected for PeerTls {
    type ConnectInfo = PeerCerts;

    fn connect_info(&self) -> PeerCerts {
        let certs = self.0.get_ref().1.peer_certificates();
        PeerCerts(certs.map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())))
    }
}

impl AsyncRead for PeerTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The API's serving certificate for 127.0.0.1, from a CA written to `ca_file`; client
/// certificates are optional (join) and, when sent, must chain to the mesh CA.
fn server_tls(mesh: &CertificateAuthority, ca_file: &Path) -> Arc<ServerConfig> {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(mesh.root().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

struct Api {
    state: Arc<State>,
}

impl Api {
    /// The SVID of the connection, verified against the mesh bundle.
    fn client<T>(&self, request: &Request<T>) -> Result<(SpiffeId, String), Status> {
        let certs = request
            .extensions()
            .get::<PeerCerts>()
            .and_then(|p| p.0.clone())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let id = verify_svid_chain(&certs, self.state.ca.bundle(), SystemTime::now(), None)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        let serial = inspect_leaf(&certs[0]).unwrap().serial;
        Ok((id, serial))
    }
}

#[tonic::async_trait]
impl ProxyApi for Api {
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let (id, client) = if request.get_ref().join_token.is_empty() {
            let (id, _) = self.client(&request)?;
            (id.clone(), Some(id))
        } else {
            // Join tokens are single-use, as the real control plane's are by default.
            let token = &request.get_ref().join_token;
            let id = self.state.tokens.lock().unwrap().remove(token);
            (
                id.ok_or_else(|| Status::unauthenticated("unknown or spent join token"))?,
                None,
            )
        };
        let csr =
            CertificateSigningRequestDer::from_pem_slice(request.get_ref().csr_pem.as_bytes())
                .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?;
        let ttl = *self.state.ttl.lock().unwrap();
        let svid = self
            .state
            .ca
            .issue(csr.as_ref(), &id, Some(ttl), SystemTime::now())
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        self.state.record(Event::Certify {
            token: request.get_ref().join_token.clone(),
            client,
            serial: svid.serial().to_owned(),
        });
        let expires = svid.not_after().duration_since(UNIX_EPOCH).unwrap();
        Ok(Response::new(CertifyResponse {
            cert_chain_pem: svid.chain_pem(),
            trust_bundle_pem: self.state.ca.bundle().to_pem(),
            expires_unix: i64::try_from(expires.as_secs()).unwrap(),
        }))
    }

    type WatchStream = ReceiverStream<Result<Snapshot, Status>>;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (_, client_serial) = self.client(&request)?;
        let mut inbound = request.into_inner();
        let Some(WatchMessage::Subscribe(subscribe)) =
            inbound.message().await?.and_then(|m| m.request)
        else {
            return Err(Status::invalid_argument("expected Subscribe first"));
        };
        let workload = subscribe.workload.clone();
        self.state.record(Event::Subscribe {
            message: subscribe.clone(),
            client_serial,
        });
        let (tx, rx) = mpsc::channel(16);
        let current = self.state.snapshots.lock().unwrap().get(&workload).cloned();
        // As the real one: an unchanged snapshot is not sent again after a reconnect.
        if let Some(snapshot) = current.filter(|s| s.hash != subscribe.applied_hash) {
            let _ = tx.try_send(Ok(snapshot));
        }
        self.state
            .streams
            .lock()
            .unwrap()
            .push((workload.clone(), tx));
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                if let Some(WatchMessage::Ack(ack)) = message.request {
                    let workload = workload.clone();
                    state.record(Event::Ack { workload, ack });
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
