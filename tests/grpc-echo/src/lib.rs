//! A tonic test service for the proxy's integration tests: the `bulkhead.test.Echo`
//! service of `proto/echo.proto` with its generated client and server, a ready-made
//! implementation ([`EchoService`]) and a server on an ephemeral loopback port
//! ([`TestServer`]).
//!
//! What the implementation does, so tests can check it arrived intact:
//! - every response carries the header metadata [`SERVED_BY`] and the binary
//!   [`TAG_BIN`] = [`TAG_BIN_VALUE`];
//! - `Echo` answers with the request's message and the request metadata it saw;
//! - `Count` streams `count` replies (`seq` 1..=count), then ends with OK or the status
//!   `fail_with` asks for — an error then travels in real HTTP/2 trailers, after data;
//! - `Chat` answers each request as it arrives, so a client can wait for each answer
//!   before it sends the next;
//! - a request with `fail_with` set fails with that code and its message as the
//!   status message, the details [`DETAILS`] and the metadata [`DETAIL`] =
//!   [`DETAIL_VALUE`] (in trailers, or in the headers of a trailers-only response).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, KeyAndValueRef, MetadataMap};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Code, Request, Response, Status, Streaming};

/// The generated messages, client and server.
pub mod pb {
    tonic::include_proto!("bulkhead.test");
}

pub use pb::echo_client::EchoClient;
pub use pb::echo_server::{Echo, EchoServer};
pub use pb::{CountRequest, EchoReply, EchoRequest};

/// Response header metadata on every response.
pub const SERVED_BY: &str = "x-echo-served-by";
/// The value of [`SERVED_BY`].
pub const SERVED_BY_VALUE: &str = "bulkhead-test-grpc";
/// Binary response header metadata on every response.
pub const TAG_BIN: &str = "x-echo-tag-bin";
/// The value of [`TAG_BIN`]: bytes that are not valid in an ASCII header.
pub const TAG_BIN_VALUE: &[u8] = &[0x00, 0xff, 0x10, b'\n', 0x80];
/// Metadata on every failed call.
pub const DETAIL: &str = "x-echo-detail";
/// The value of [`DETAIL`].
pub const DETAIL_VALUE: &str = "failed-on-request";
/// The status details (`grpc-status-details-bin`) of every failed call.
pub const DETAILS: &[u8] = b"\x00echo-details\xff";

/// Receive buffer for streamed replies; small, so streams stay flow-controlled.
const STREAM_BUFFER: usize = 4;

/// The ready-made `Echo` implementation. Clones share one call counter.
#[derive(Clone, Debug, Default)]
pub struct EchoService {
    calls: Arc<AtomicU64>,
}

impl EchoService {
    /// Calls that reached a handler so far (any method).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// The status a request with `fail_with = code` fails with; `None` for 0 (succeed).
pub fn failure(code: i32, message: &str) -> Option<Status> {
    if code == 0 {
        return None;
    }
    let mut metadata = MetadataMap::new();
    metadata.insert(DETAIL, AsciiMetadataValue::from_static(DETAIL_VALUE));
    Some(Status::with_details_and_metadata(
        Code::from_i32(code),
        message,
        DETAILS.to_vec().into(),
        metadata,
    ))
}

/// `inner` with [`SERVED_BY`] and [`TAG_BIN`] in its header metadata.
fn respond<T>(inner: T) -> Response<T> {
    let mut resp = Response::new(inner);
    let md = resp.metadata_mut();
    md.insert(SERVED_BY, AsciiMetadataValue::from_static(SERVED_BY_VALUE));
    md.insert_bin(TAG_BIN, BinaryMetadataValue::from_bytes(TAG_BIN_VALUE));
    resp
}

type ReplyStream = ReceiverStream<Result<EchoReply, Status>>;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.count_call();
        let metadata = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                KeyAndValueRef::Ascii(k, v) => Some((k.to_string(), v.as_bytes().to_vec())),
                KeyAndValueRef::Binary(k, v) => Some((k.to_string(), v.to_bytes().ok()?.to_vec())),
            })
            .collect();
        let req = request.into_inner();
        if let Some(status) = failure(req.fail_with, &req.message) {
            return Err(status);
        }
        Ok(respond(EchoReply {
            message: req.message,
            seq: 1,
            metadata,
        }))
    }

    type CountStream = ReplyStream;

    async fn count(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        self.count_call();
        let req = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            for seq in 1..=req.count {
                let reply = EchoReply {
                    message: req.message.clone(),
                    seq,
                    ..EchoReply::default()
                };
                if tx.send(Ok(reply)).await.is_err() {
                    return; // the client went away
                }
            }
            if let Some(status) = failure(req.fail_with, &req.message) {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(respond(ReceiverStream::new(rx)))
    }

    type ChatStream = ReplyStream;

    async fn chat(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        self.count_call();
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let mut seq = 0;
            loop {
                let reply = match inbound.message().await {
                    Ok(Some(req)) => match failure(req.fail_with, &req.message) {
                        Some(status) => Err(status),
                        None => {
                            seq += 1;
                            Ok(EchoReply {
                                message: req.message,
                                seq,
                                ..EchoReply::default()
                            })
                        }
                    },
                    Ok(None) => return, // the client finished sending: end with OK
                    Err(status) => Err(status),
                };
                let last = reply.is_err();
                if tx.send(reply).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(respond(ReceiverStream::new(rx)))
    }
}

/// An [`EchoService`] served (HTTP/2 only, as tonic serves) on 127.0.0.1:0.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    service: EchoService,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestServer {
    /// Binds 127.0.0.1:0 and serves until [`TestServer::stop`] or drop.
    pub async fn start() -> std::io::Result<TestServer> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let service = EchoService::default();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
            EchoServer::new(service.clone()),
            TcpIncoming::from(listener),
            async {
                let _ = stop.await;
            },
        ));
        Ok(TestServer {
            addr,
            service,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls that reached a handler so far.
    pub fn calls(&self) -> u64 {
        self.service.calls()
    }

    /// Stops accepting, waits for open connections to close, and returns how serving
    /// ended.
    pub async fn stop(mut self) -> Result<(), tonic::transport::Error> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("the server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A client that connects (HTTP/2 with prior knowledge, as gRPC clients do) to `addr`
/// and sends `authority` as the `:authority` of its requests, e.g. `api.shop`.
pub async fn connect(
    addr: SocketAddr,
    authority: &str,
) -> Result<EchoClient<Channel>, Box<dyn std::error::Error + Send + Sync>> {
    let origin = Uri::try_from(format!("http://{authority}"))?;
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .origin(origin)
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    Ok(EchoClient::new(channel))
}
