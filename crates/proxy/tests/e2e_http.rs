//! HTTP through two sidecars: client → A (outbound) → mTLS → B (inbound) → app.

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bulkhead_proxy::config::AppProtocol;
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper::body::{Body, Frame};
use hyper_util::rt::TokioIo;
use support::apps::{self, TestBody, body_string, full, get, h1_client, h2_client, http_app};
use support::{Pair, PairSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test]
async fn http1_keep_alive_and_request_hygiene() {
    support::trace();
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut client = h1_client(pair.client_addr()).await;
    for i in 0..3 {
        let req = Request::builder()
            .uri(format!("/echo/{i}"))
            .header("host", "api.shop")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header(
                "x-bulkhead-peer-identity",
                "spiffe://cluster.local/ns/evil/sa/mallory",
            )
            .header("x-bulkhead-orig-proto", "forged")
            .header("connection", "keep-alive, x-hop")
            .header("keep-alive", "timeout=5")
            .header("x-hop", "must not pass")
            .body(full("hello"))
            .unwrap();
        let resp = client.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        assert_eq!(
            h["x-seen-x-bulkhead-peer-identity"],
            "spiffe://cluster.local/ns/shop/sa/web"
        );
        assert_eq!(
            h["x-seen-traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(h["x-seen-x-request-id"].len(), 36);
        assert_eq!(h["x-seen-host"], "api.shop");
        assert_eq!(h["x-seen-version"], "HTTP/1.1");
        for absent in [
            "x-seen-x-hop",
            "x-seen-keep-alive",
            "x-seen-x-bulkhead-orig-proto",
        ] {
            assert!(!h.contains_key(absent), "{absent} leaked: {h:?}");
        }
        assert_eq!(body_string(resp).await, "hello");
    }
    let line = pair
        .b
        .wait_for_log(|l| l["path"] == "/echo/2" && l["direction"] == "inbound")
        .await;
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["source"], "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes_in"], 5);
    assert_eq!(line["bytes_out"], 5);
    pair.stop().await;
}

#[tokio::test]
async fn http1_chunked_body_and_kept_request_id() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut client = h1_client(pair.client_addr()).await;
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(2);
    let req = Request::builder()
        .method("POST")
        .uri("/echo")
        .header("host", "api.shop")
        .header("x-request-id", "req-123")
        .body(body.boxed())
        .unwrap();
    let send = tokio::spawn(async move {
        for part in ["chunk-1;", "chunk-2;", "chunk-3"] {
            tx.send_data(Bytes::from(part)).await.unwrap();
        }
    });
    let resp = client.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-seen-x-request-id"], "req-123");
    assert_eq!(body_string(resp).await, "chunk-1;chunk-2;chunk-3");
    send.await.unwrap();
    pair.stop().await;
}

#[tokio::test]
async fn http1_expect_100_continue() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    tcp.write_all(
        b"POST /echo HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let head = apps::read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 100 Continue"), "{head}");
    tcp.write_all(b"hello").await.unwrap();
    let head = apps::read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("x-seen-expect"),
        "{head}"
    );
    let mut body = [0u8; 5];
    tcp.read_exact(&mut body).await.unwrap();
    assert_eq!(&body, b"hello");
    pair.stop().await;
}

#[tokio::test]
async fn malformed_http1_gets_400() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost api.shop\r\n\r\n")
        .await
        .unwrap();
    let head = apps::read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    pair.stop().await;
}

#[tokio::test]
async fn http2_end_to_end() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut client = h2_client(pair.client_addr()).await;
    let mut handles = Vec::new();
    for i in 0..8 {
        let req = Request::builder()
            .method("POST")
            .uri(format!("http://api.shop/echo/{i}"))
            .body(full(format!("ping-{i}")))
            .unwrap();
        let fut = client.send_request(req);
        handles.push(tokio::spawn(async move {
            let resp = fut.await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-seen-version"], "HTTP/2.0");
            assert_eq!(
                resp.headers()["x-seen-x-bulkhead-peer-identity"],
                "spiffe://cluster.local/ns/shop/sa/web"
            );
            body_string(resp).await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), format!("ping-{i}"));
    }
    pair.stop().await;
}

#[tokio::test]
async fn grpc_like_streaming_with_trailers() {
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.inbound = AppProtocol::Grpc;
    spec.outbound = AppProtocol::Grpc;
    let pair = Pair::start(spec).await;
    let mut client = h2_client(pair.client_addr()).await;
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(1);
    let req = Request::builder()
        .method("POST")
        .uri("http://api.shop/stream")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body.boxed())
        .unwrap();
    let resp_fut = client.send_request(req);
    tx.send_data(Bytes::from_static(b"message-1"))
        .await
        .unwrap();
    let mut resp = resp_fut.await.unwrap();
    assert_eq!(resp.status(), 200);
    // Each message comes back before the next is sent: the stream is not buffered.
    for next in [Some("message-2"), Some("message-3"), None] {
        let frame = resp.body_mut().frame().await.unwrap().unwrap();
        assert!(frame.data_ref().is_some_and(|d| d.starts_with(b"message-")));
        match next {
            Some(m) => tx.send_data(Bytes::from(m)).await.unwrap(),
            None => break,
        }
    }
    drop(tx);
    let mut trailers = None;
    while let Some(frame) = resp.body_mut().frame().await {
        let frame = frame.unwrap();
        if let Ok(t) = frame.into_trailers() {
            trailers = Some(t);
        }
    }
    let trailers = trailers.expect("trailers arrived");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
    pair.stop().await;
}

/// Upgrades a new connection to A to a WebSocket (the app then echoes raw bytes).
async fn websocket(pair: &Pair) -> TokioIo<hyper::upgrade::Upgraded> {
    let mut client = h1_client(pair.client_addr()).await;
    let req = Request::builder()
        .uri("/ws")
        .header("host", "api.shop")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(full(Bytes::new()))
        .unwrap();
    let resp = client.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    TokioIo::new(hyper::upgrade::on(resp).await.unwrap())
}

/// A masked text frame (RFC 6455 §5.7) carrying `payload`.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Sends `frame` and reads its echo.
async fn ws_echo(ws: &mut TokioIo<hyper::upgrade::Upgraded>, frame: &[u8]) {
    ws.write_all(frame).await.unwrap();
    let mut back = vec![0u8; frame.len()];
    ws.read_exact(&mut back).await.unwrap();
    assert_eq!(back, frame);
}

#[tokio::test]
async fn websocket_upgrade_echo_with_stream_log_lines() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut ws = websocket(&pair).await;
    for payload in [b"hello", b"again"] {
        ws_echo(&mut ws, &ws_frame(payload)).await;
    }
    ws.shutdown().await.unwrap();
    // Each sidecar logs the 101 when it is sent, and the stream (kind `upgrade`, same
    // request id, the stream's bytes) when both sides have closed.
    let frames = 2 * ws_frame(b"hello").len() as u64;
    let mut request_ids = Vec::new();
    for (sidecar, direction) in [(&pair.a, "outbound"), (&pair.b, "inbound")] {
        let switched = sidecar.wait_for_log(|l| l["status"] == 101).await;
        assert_eq!(switched["kind"], "http");
        let stream = sidecar.wait_for_log(|l| l["kind"] == "upgrade").await;
        assert_eq!(stream["direction"], direction);
        assert_eq!(stream["request_id"], switched["request_id"]);
        assert_eq!(stream["method"], "GET");
        assert_eq!(stream["path"], "/ws");
        assert_eq!(stream["status"], 101);
        assert_eq!(stream["bytes_in"], frames);
        assert_eq!(stream["bytes_out"], frames);
        assert_eq!(stream["decision"], switched["decision"]);
        assert_eq!(stream["reason"], switched["reason"]);
        request_ids.push(stream["request_id"].clone());
        let metrics = sidecar.metrics.encode();
        for series in [
            format!("bulkhead_proxy_tcp_connections_closed_total{{direction=\"{direction}\"}} 1"),
            format!(
                "bulkhead_proxy_tcp_received_bytes_total{{direction=\"{direction}\"}} {frames}"
            ),
            format!("bulkhead_proxy_tcp_sent_bytes_total{{direction=\"{direction}\"}} {frames}"),
        ] {
            assert!(metrics.contains(&series), "{series} not in {metrics}");
        }
    }
    // B logs under the request id that A added.
    assert_eq!(request_ids[0], request_ids[1]);
    pair.stop().await;
}

#[tokio::test]
async fn idle_websocket_is_closed_after_the_idle_timeout() {
    const SHORT_IDLE: Duration = Duration::from_millis(500);
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.settings.idle_timeout = Some(SHORT_IDLE);
    let pair = Pair::start(spec).await;
    let mut ws = websocket(&pair).await;
    let frame = ws_frame(b"hello");
    // The sidecars see the last bytes move after this instant.
    let sent = Instant::now();
    ws_echo(&mut ws, &frame).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), ws.read_to_end(&mut rest))
        .await
        .expect("the idle stream was closed")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        sent.elapsed() >= SHORT_IDLE,
        "closed after {:?}",
        sent.elapsed()
    );
    // A, next to the client (which keeps its side open), can only have ended the stream
    // by its own timer.
    let a = pair.a.wait_for_log(|l| l["kind"] == "upgrade").await;
    assert_eq!(a["reason"], "idle timeout");
    assert_eq!(a["bytes_in"], frame.len());
    assert_eq!(a["bytes_out"], frame.len());
    let metrics = pair.a.metrics.encode();
    assert!(
        metrics.contains("bulkhead_proxy_tcp_idle_timeouts_total{direction=\"outbound\"} 1"),
        "{metrics}"
    );
    drop(ws);
    pair.stop().await;
}

/// Generates `remaining` bytes in 64 KiB chunks and records how far ahead of the app's
/// reads the sender ever got: the bytes held inside the proxies and sockets.
struct Generated {
    remaining: u64,
    sent: u64,
    chunk: Bytes,
    received: Arc<AtomicU64>,
    max_ahead: Arc<AtomicU64>,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let ahead = self.sent - self.received.load(Ordering::Relaxed);
        self.max_ahead.fetch_max(ahead, Ordering::Relaxed);
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        self.sent += n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }
}

#[tokio::test]
async fn large_streamed_body_is_not_buffered() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    // In flight at once: socket buffers of three TCP hops plus HTTP/2 windows (about
    // 6 MiB measured on loopback). Far below the body, so a proxy holding the body
    // would fail this.
    const MAX_AHEAD: u64 = 24 * 1024 * 1024;
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut client = h1_client(pair.client_addr()).await;
    let max_ahead = Arc::new(AtomicU64::new(0));
    let body = Generated {
        remaining: TOTAL,
        sent: 0,
        chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        received: app.received.clone(),
        max_ahead: max_ahead.clone(),
    };
    let req = Request::builder()
        .method("POST")
        .uri("/count")
        .header("host", "api.shop")
        .header("content-length", TOTAL.to_string())
        .body(TestBody::new(body))
        .unwrap();
    let resp = client.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body_string(resp).await, TOTAL.to_string());
    let ahead = max_ahead.load(Ordering::Relaxed);
    eprintln!("max bytes in flight: {ahead}");
    assert!(ahead < MAX_AHEAD, "{ahead} bytes were held in flight");
    pair.stop().await;
}

#[tokio::test]
async fn unreachable_app_gives_502_with_reason() {
    // An address nothing listens on: bind, read the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pair = Pair::start(PairSpec::new(closed)).await;
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["x-bulkhead-error"], "connect");
    assert!(resp.headers().contains_key("x-request-id"));
    pair.stop().await;
}
