//! The demo server and client against each other on 127.0.0.1:0, in-process and as the
//! real binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bulkhead_demo::call::{self, Call, CallError};
use bulkhead_demo::serve::{Reply, Server};
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A demo server named `name` on 127.0.0.1:0; dropping the sender stops it.
async fn server(name: &str) -> (SocketAddr, oneshot::Sender<()>) {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), name)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(std::io::sink(), async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn url(addr: SocketAddr, path: &str) -> Uri {
    format!("http://{addr}{path}").parse().unwrap()
}

fn quick(url: Uri) -> Call {
    Call {
        interval: Duration::ZERO,
        ..Call::get(url)
    }
}

async fn run(call: &Call) -> (call::Outcomes, String) {
    let mut out = Vec::new();
    let outcomes = call::run(call, &mut out).await.unwrap();
    (outcomes, String::from_utf8(out).unwrap())
}

fn reply(outcome: &Result<call::Answer, CallError>) -> Reply {
    let answer = outcome.as_ref().expect("a response");
    serde_json::from_str(answer.body.trim()).expect("a JSON reply")
}

#[tokio::test]
async fn answers_with_name_path_and_peer_identity_over_http1_and_http2() {
    let (addr, _stop) = server("api").await;
    for http2 in [false, true] {
        let mut call = quick(url(addr, "/hello/there?x=1"));
        call.http2 = http2;
        call.headers = vec![
            (
                HeaderName::from_static("x-bulkhead-peer-identity"),
                HeaderValue::from_static("spiffe://example.org/ns/demo/sa/web"),
            ),
            (
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("req-1"),
            ),
        ];
        let (outcomes, _) = run(&call).await;
        assert!(call::succeeded(&call, &outcomes));
        let got = reply(&outcomes[0]);
        assert_eq!(
            got,
            Reply {
                name: "api".into(),
                method: "GET".into(),
                path: "/hello/there?x=1".into(),
                version: if http2 { "HTTP/2.0" } else { "HTTP/1.1" }.into(),
                peer_identity: Some("spiffe://example.org/ns/demo/sa/web".into()),
                request_id: Some("req-1".into()),
                body_bytes: 0,
            }
        );
    }
}

#[tokio::test]
async fn a_delayed_server_holds_each_answer_for_its_delay() {
    let delayed = Server::bind("127.0.0.1:0".parse().unwrap(), "slow")
        .await
        .unwrap()
        .with_delay(Duration::from_millis(150));
    let addr = delayed.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(delayed.serve(std::io::sink(), async move {
        let _ = stopped.await;
    }));
    let (fast, _stop_fast) = server("fast").await;
    let mut call = quick(url(addr, "/"));
    call.count = 2;
    let started = std::time::Instant::now();
    let (outcomes, _) = run(&call).await;
    let took = started.elapsed();
    assert!(call::succeeded(&call, &outcomes));
    assert_eq!(reply(&outcomes[1]).name, "slow");
    assert!(
        took >= Duration::from_millis(300),
        "two answers took {took:?}"
    );
    // Without a delay the answer comes at once.
    let started = std::time::Instant::now();
    let (outcomes, _) = run(&quick(url(fast, "/"))).await;
    assert!(call::succeeded(&quick(url(fast, "/")), &outcomes));
    assert!(started.elapsed() < Duration::from_millis(150));
    drop(stop);
}

#[tokio::test]
async fn without_the_header_the_peer_identity_is_null() {
    let (addr, _stop) = server("web").await;
    let mut call = quick(url(addr, "/"));
    call.method = Method::POST;
    let (outcomes, _) = run(&call).await;
    let got = reply(&outcomes[0]);
    assert_eq!((got.method.as_str(), got.peer_identity), ("POST", None));
    assert_eq!(got.request_id, None);
}

#[tokio::test]
async fn prints_every_response_of_a_bounded_count() {
    let (addr, _stop) = server("api").await;
    let mut call = quick(url(addr, "/hello"));
    call.count = 3;
    call.expect = Some(StatusCode::OK);
    let (outcomes, out) = run(&call).await;
    assert_eq!(outcomes.len(), 3);
    assert!(call::succeeded(&call, &outcomes));
    let heads: Vec<&str> = out.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(heads.len(), 3, "{out}");
    for (i, head) in heads.iter().enumerate() {
        assert!(
            head.starts_with(&format!("[{}/3] GET /hello -> 200 OK (", i + 1)),
            "{out}"
        );
    }
    let bodies: Vec<&str> = out.lines().filter(|l| l.starts_with("  {")).collect();
    assert_eq!(bodies.len(), 3, "{out}");
}

#[tokio::test]
async fn raw_prints_bodies_only_and_expect_checks_the_status() {
    let (addr, _stop) = server("api").await;
    let mut call = quick(url(addr, "/x"));
    call.raw = true;
    call.expect = Some(StatusCode::FORBIDDEN);
    let (outcomes, out) = run(&call).await;
    assert!(
        !call::succeeded(&call, &outcomes),
        "200 is not the expected 403"
    );
    let got: Reply = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(got.path, "/x");
}

/// A server that closes every connection at once, as a STRICT inbound port does to a
/// plaintext client.
#[tokio::test]
async fn a_closed_connection_is_an_error_line_and_a_failed_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let call = quick(url(addr, "/hello"));
    let (outcomes, out) = run(&call).await;
    assert!(matches!(outcomes[0], Err(CallError::Http(_))), "{out}");
    assert!(out.starts_with("GET /hello -> error: "), "{out}");
    assert!(!call::succeeded(&call, &outcomes));
}

/// One response per connection, each with `Connection: close`: the client reconnects.
#[tokio::test]
async fn reconnects_when_the_server_closed_the_kept_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let resp = "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
                        x-bulkhead-error: no-endpoints\r\ncontent-length: 5\r\n\r\nbusy\n";
            let _ = tcp.write_all(resp.as_bytes()).await;
        }
    });
    let mut call = quick(url(addr, "/"));
    call.count = 2;
    let (outcomes, out) = run(&call).await;
    assert!(call::succeeded(&call, &outcomes), "{out}");
    assert!(
        out.starts_with("[1/2] GET / -> 503 Service Unavailable (",),
        "{out}"
    );
    assert!(
        out.contains(" [x-bulkhead-error: no-endpoints]\n  busy\n[2/2]"),
        "{out}"
    );
}

/// The real binary: `serve` prints its address once bound, `call` exits 0 or 1.
#[test]
fn the_binary_serves_and_calls() {
    let bin = env!("CARGO_BIN_EXE_bulkhead-demo");
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "api",
            "--delay",
            "5ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let mut first = String::new();
    BufReader::new(guard.0.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .strip_prefix("api listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));

    let ok = Command::new(bin)
        .args(["call", "--url", &format!("http://{addr}/hello")])
        .args(["--count", "2", "--interval", "10ms", "--expect", "200"])
        .args(["-H", "x-request-id: abc"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout.contains("[2/2] GET /hello -> 200 OK"), "{stdout}");
    assert!(stdout.contains(r#""request_id":"abc""#), "{stdout}");

    let wrong = Command::new(bin)
        .args([
            "call",
            "--url",
            &format!("http://{addr}/"),
            "--expect",
            "404",
        ])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");

    let usage = Command::new(bin)
        .args(["call", "--url", "http://127.0.0.1:1/", "--count", "0"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

struct KillOnDrop<'c>(&'c mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
