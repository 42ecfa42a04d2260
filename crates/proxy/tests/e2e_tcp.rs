//! Opaque TCP through two sidecars: detection, half-close, server-speaks-first ports,
//! idle timeout.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bulkhead_proxy::config::AppProtocol;
use support::apps::tcp_echo_app;
use support::{Pair, PairSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Writes `data`, half-closes, and reads everything until the far side closes.
async fn echo_round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(data).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).await.unwrap();
    back
}

#[tokio::test]
async fn tcp_echo_with_half_close_detected() {
    let app = tcp_echo_app().await;
    let pair = Pair::start(PairSpec::new(app)).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo_round_trip(pair.client_addr(), &data).await, data);
    let line = pair.b.wait_for_log(|l| l["kind"] == "tcp").await;
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["bytes_in"], 200_000);
    assert_eq!(line["bytes_out"], 200_000);
    assert_eq!(line["source"], "spiffe://cluster.local/ns/shop/sa/web");
    let metrics = pair.b.metrics.encode();
    assert!(
        metrics.contains("bulkhead_proxy_tcp_connections_closed_total{direction=\"inbound\"} 1"),
        "{metrics}"
    );
    pair.stop().await;
}

#[tokio::test]
async fn tcp_declared_ports() {
    let app = tcp_echo_app().await;
    let mut spec = PairSpec::new(app);
    spec.outbound = AppProtocol::Tcp;
    spec.inbound = AppProtocol::Tcp;
    let pair = Pair::start(spec).await;
    assert_eq!(
        echo_round_trip(pair.client_addr(), b"GET / HTTP/1.1\r\n\r\n").await,
        b"GET / HTTP/1.1\r\n\r\n"
    );
    pair.stop().await;
}

/// A server that speaks first (like SMTP or MySQL): a banner, then one echoed line.
async fn banner_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                tcp.write_all(b"220 ready\r\n").await.unwrap();
                let mut buf = [0u8; 64];
                let n = tcp.read(&mut buf).await.unwrap();
                tcp.write_all(&buf[..n]).await.unwrap();
            });
        }
    });
    addr
}

#[tokio::test]
async fn opaque_port_server_speaks_first() {
    let mut spec = PairSpec::new(banner_app().await);
    spec.outbound = AppProtocol::Opaque;
    spec.inbound = AppProtocol::Opaque;
    let pair = Pair::start(spec).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    // Nothing sent yet: the banner must arrive without detection waiting for us.
    let mut banner = [0u8; 11];
    tcp.read_exact(&mut banner).await.unwrap();
    assert_eq!(&banner, b"220 ready\r\n");
    tcp.write_all(b"HELO x\r\n").await.unwrap();
    let mut line = [0u8; 8];
    tcp.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"HELO x\r\n");
    drop(tcp);
    pair.stop().await;
}

/// Short enough for a test; long enough that a loaded machine never idles out a connection
/// between its handshakes and its first bytes.
const SHORT_IDLE: Duration = Duration::from_millis(500);

#[tokio::test]
async fn idle_tcp_connection_is_closed_after_the_idle_timeout() {
    let mut spec = PairSpec::new(tcp_echo_app().await);
    spec.outbound = AppProtocol::Tcp;
    spec.inbound = AppProtocol::Tcp;
    spec.settings.idle_timeout = Some(SHORT_IDLE);
    let pair = Pair::start(spec).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    let sent = Instant::now();
    tcp.write_all(b"hello").await.unwrap();
    // Nothing more either way (the echo app answers only after an EOF that never comes),
    // so the sidecars must close the connection.
    let mut rest = Vec::new();
    timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the idle connection was closed")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        sent.elapsed() >= SHORT_IDLE,
        "closed after {:?}",
        sent.elapsed()
    );
    // A, next to the client (which keeps its socket open), can only have ended the
    // connection by its own timer. B may instead see A's close first.
    let a = pair.a.wait_for_log(|l| l["kind"] == "tcp").await;
    assert_eq!(a["reason"], "idle timeout");
    assert_eq!(a["bytes_in"], 5);
    assert_eq!(a["bytes_out"], 0);
    assert!(a["duration_ms"].as_f64().unwrap() >= 500.0, "{a}");
    let metrics = pair.a.metrics.encode();
    assert!(
        metrics.contains("bulkhead_proxy_tcp_idle_timeouts_total{direction=\"outbound\"} 1"),
        "{metrics}"
    );
    let b = pair.b.wait_for_log(|l| l["kind"] == "tcp").await;
    assert_eq!(b["bytes_in"], 5);
    drop(tcp);
    pair.stop().await;
}
