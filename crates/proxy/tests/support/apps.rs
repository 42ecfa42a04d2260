//! Test apps behind sidecar B, and clients in front of sidecar A.
//!
//! The HTTP app (HTTP/1.1 and HTTP/2 on one port, with upgrades) answers:
//! - `/count`: reads the body, counting bytes into [`HttpApp::received`] as they arrive,
//!   and answers with the count;
//! - `/stream`: echoes each body frame as it arrives, then trailers `grpc-status: 0`;
//! - `/ws` with `Upgrade: websocket`: 101, then echoes bytes;
//! - anything else: echoes the body, and reports what it saw in `x-seen-*` headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, channel::Channel};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A running HTTP app.
pub struct HttpApp {
    pub addr: SocketAddr,
    /// Body bytes `/count` has read so far.
    pub received: Arc<AtomicU64>,
}

/// Starts the HTTP app on 127.0.0.1:0.
pub async fn http_app() -> HttpApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let counter = counter.clone();
                    async move { Ok::<_, Infallible>(route(req, counter).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    HttpApp { addr, received }
}

async fn route(req: Request<Incoming>, counter: Arc<AtomicU64>) -> Response<TestBody> {
    match req.uri().path() {
        "/count" => count(req, counter).await,
        "/stream" => stream(req),
        "/ws" => websocket(req),
        _ => echo(req),
    }
}

async fn count(req: Request<Incoming>, counter: Arc<AtomicU64>) -> Response<TestBody> {
    let mut body = req.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .body(full("body error"))
                .unwrap();
        };
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    Response::new(full(total.to_string()))
}

fn stream(req: Request<Incoming>) -> Response<TestBody> {
    let (mut tx, body) = Channel::<Bytes, Box<dyn std::error::Error + Send + Sync>>::new(4);
    let mut incoming = req.into_body();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = incoming.frame().await {
            if let Ok(data) = frame.into_data()
                && tx.send_data(data).await.is_err()
            {
                return;
            }
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static("done"));
        let _ = tx.send_trailers(trailers).await;
    });
    Response::builder()
        .header("content-type", "application/grpc")
        .body(body.boxed())
        .unwrap()
}

fn websocket(mut req: Request<Incoming>) -> Response<TestBody> {
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(full(Bytes::new()))
        .unwrap()
}

fn echo(req: Request<Incoming>) -> Response<TestBody> {
    let mut resp = Response::builder().status(StatusCode::OK);
    let seen = |name: &str| req.headers().get(name).cloned();
    for name in [
        "x-bulkhead-peer-identity",
        "x-request-id",
        "traceparent",
        "connection",
        "keep-alive",
        "x-bulkhead-orig-proto",
        "x-hop",
        "host",
        "expect",
    ] {
        if let Some(v) = seen(name) {
            resp = resp.header(format!("x-seen-{name}"), v);
        }
    }
    let version = format!("{:?}", req.version());
    resp = resp.header("x-seen-version", version);
    if let Some(len) = req.body().size_hint().exact() {
        resp = resp.header("x-seen-length", len.to_string());
    }
    resp.body(req.into_body().map_err(Into::into).boxed())
        .unwrap()
}

/// A TCP echo app: reads until the client half-closes, then writes everything back and
/// closes. Proves half-close travels both ways.
pub async fn tcp_echo_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut data = Vec::new();
                if tcp.read_to_end(&mut data).await.is_ok() {
                    let _ = tcp.write_all(&data).await;
                    let _ = tcp.shutdown().await;
                }
            });
        }
    });
    addr
}

/// An HTTP/1.1 client connection.
pub async fn h1_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    send
}

/// An HTTP/2 (prior knowledge) client connection.
pub async fn h2_client(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<TestBody> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Reads a whole response body.
pub async fn body_string(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A GET request for `path` with `Host: api.shop`.
pub fn get(path: &str) -> Request<TestBody> {
    Request::builder()
        .uri(path)
        .header("host", "api.shop")
        .body(full(Bytes::new()))
        .unwrap()
}

/// Reads from `tcp` until the end of an HTTP/1.1 response head; returns it as text.
pub async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await.unwrap();
        assert!(n > 0, "connection closed inside a response head: {head:?}");
        head.push(byte[0]);
        assert!(head.len() < 64 * 1024);
    }
    String::from_utf8(head).unwrap()
}

/// Frames for a data frame of a body with a known end.
pub fn data(bytes: &'static [u8]) -> Frame<Bytes> {
    Frame::data(Bytes::from_static(bytes))
}
