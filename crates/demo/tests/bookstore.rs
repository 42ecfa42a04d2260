//! The bookstore apps: the whole chain as real processes (configured by `PORT` and
//! `UPSTREAM_<NAME>`, as `bulkhead up` starts them), and each app's edge cases in-process.
//! Ports come from binding 127.0.0.1:0; readiness is polled, bounded.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_demo::bookstore::catalog::{self, CatalogService};
use bulkhead_demo::bookstore::frontend::{self, Upstreams};
use bulkhead_demo::bookstore::inventory::{self, INITIAL_STOCK, Inventory};
use bulkhead_demo::bookstore::ratings;
use bulkhead_demo::bookstore::reviews::{self, Version};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_bulkhead-demo");
const READY_WITHIN: Duration = Duration::from_secs(20);

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `serve(shutdown)` in the background until the sender is dropped.
fn spawn<F: Future<Output = ()> + Send + 'static>(
    serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(Box::pin(async move {
        let _ = stopped.await;
    })));
    stop
}

/// Polls until something accepts on `port`.
async fn wait_ready(port: u16) {
    let deadline = Instant::now() + READY_WITHIN;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 exchange on a fresh connection: status, lower-case headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-request-id: test-1\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(body.as_bytes()).await.unwrap();
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("an answer within 20 s");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole answer");
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, "").await
}

/// A fake upstream answering every request with `status`, `headers` and `body` — a
/// sidecar denying (or a trailers-only gRPC status, over HTTP/2).
async fn fake(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> (SocketAddr, oneshot::Sender<()>) {
    let (l, addr) = listener().await;
    let stop = spawn(move |shutdown| async move {
        tokio::pin!(shutdown);
        loop {
            let tcp = tokio::select! {
                () = &mut shutdown => return,
                accepted = l.accept() => accepted.unwrap().0,
            };
            let service = service_fn(move |_req| async move {
                let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                for (k, v) in headers {
                    resp.headers_mut().insert(*k, v.parse().unwrap());
                }
                Ok::<_, Infallible>(resp)
            });
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    (addr, stop)
}

/// A round-robin TCP balancer over `backends`, standing in for the sidecar in front of
/// two ratings instances.
async fn balancer(backends: Vec<SocketAddr>) -> SocketAddr {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        for i in 0.. {
            let Ok((mut client, _)) = l.accept().await else {
                return;
            };
            let backend = backends[i % backends.len()];
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bulkhead-demo bookstore <args>` on a fresh `PORT` with `env`; waits until it
/// listens.
async fn start(args: &[&str], env: &[(&str, String)]) -> (App, SocketAddr) {
    let port = free_port();
    let child = Command::new(BIN)
        .arg("bookstore")
        .args(args)
        .env("PORT", port.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let app = App(child);
    wait_ready(port).await;
    (app, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The six processes of the example, wired without sidecars; the ratings instances sit
/// behind a round-robin balancer, as behind the reviews' sidecar.
struct Chain {
    _apps: Vec<App>,
    frontend: App,
    addr: SocketAddr,
}

async fn chain() -> Chain {
    let (inv, inventory) = start(&["inventory"], &[]).await;
    let env = [("UPSTREAM_INVENTORY", inventory.to_string())];
    let (cat, catalog) = start(&["catalog"], &env).await;
    let (r1, ratings1) = start(&["ratings", "--instance", "r1"], &[]).await;
    let (r2, ratings2) = start(&["ratings"], &[("INSTANCE", "r2".to_owned())]).await;
    let ratings = balancer(vec![ratings1, ratings2]).await;
    let env = [("UPSTREAM_RATINGS", ratings.to_string())];
    let (rev, reviews) = start(&["reviews", "--version", "v2"], &env).await;
    let upstreams = [
        ("UPSTREAM_CATALOG", catalog.to_string()),
        ("UPSTREAM_REVIEWS", reviews.to_string()),
    ];
    let (frontend, addr) = start(&["frontend"], &upstreams).await;
    Chain {
        _apps: vec![inv, cat, r1, r2, rev],
        frontend,
        addr,
    }
}

/// Sends SIGTERM and waits (bounded) for a clean exit.
async fn terminate(app: &mut App) {
    let pid = app.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(kill.unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = app.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chain_runs_as_processes() {
    let mut chain = chain().await;
    let frontend = chain.addr;
    assert!(get(frontend, "/").await.body.contains("/api/books"));
    assert_eq!(get(frontend, "/healthz").await.status, 200);

    // frontend -> catalog (gRPC) -> inventory (TCP), and frontend -> reviews v2 -> ratings.
    let book = get(frontend, "/api/books/1").await;
    assert_eq!(book.status, 200, "{}", book.body);
    let book = book.json();
    let title_stock = (book["title"].as_str(), book["stock"].as_u64());
    assert_eq!(title_stock, (Some("The Left Hand of Darkness"), Some(7)));
    assert_eq!(book["reviews_version"], "v2");
    assert!(!book["reviews"].as_array().unwrap().is_empty());
    assert!(book["rating"]["stars"].as_u64().is_some(), "{book}");

    // Ten ratings calls through the balancer: both instances answer.
    let mut instances = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let list = get(frontend, "/api/books").await;
        assert_eq!(list.status, 200, "{}", list.body);
        let books = list.json()["books"].as_array().unwrap().clone();
        assert_eq!(books.len(), 5);
        for b in books {
            instances.insert(b["rating"]["instance"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(instances.into_iter().collect::<Vec<_>>(), ["r1", "r2"]);

    // AddBook (no sidecar here, so allowed), then the new book has no stock.
    let new = r#"{"title": "Piranesi", "author": "Susanna Clarke", "year": 2020}"#;
    let added = request(frontend, "POST", "/api/books", new).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["id"], "6");
    let six = get(frontend, "/api/books/6").await.json();
    let stock_reviews = (
        six["stock"].as_u64(),
        six["reviews"].as_array().map(Vec::len),
    );
    assert_eq!(stock_reviews, (Some(0), Some(0)));
    assert_eq!(get(frontend, "/api/books/99").await.status, 404);
    let bad = request(frontend, "POST", "/api/books", "{").await;
    assert_eq!(bad.status, 400);

    terminate(&mut chain.frontend).await;
}

async fn reviews_app(version: Version) -> (SocketAddr, oneshot::Sender<()>) {
    let (l, addr) = listener().await;
    (addr, spawn(move |s| reviews::serve(l, version, s)))
}

#[tokio::test]
async fn reviews_v1_has_no_ratings() {
    let (addr, _stop) = reviews_app(Version::V1).await;
    let answer = get(addr, "/reviews/3").await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(
        (body["book"].as_str(), body["version"].as_str()),
        (Some("3"), Some("v1"))
    );
    assert_eq!(body["reviews"].as_array().unwrap().len(), 2);
    assert!(
        body.get("rating").is_none() && body.get("ratings_error").is_none(),
        "{body}"
    );
    assert_eq!(get(addr, "/nothing").await.status, 404);
}

#[tokio::test]
async fn reviews_v2_adds_ratings_and_degrades_without_them() {
    let (l, ratings_addr) = listener().await;
    let _ratings = spawn(move |s| async move { ratings::serve(l, "only", s).await });
    let (addr, _stop) = reviews_app(Version::V2 {
        ratings: ratings_addr.to_string(),
    })
    .await;
    let body = get(addr, "/reviews/1").await.json();
    assert_eq!(body["rating"]["instance"], "only");
    assert_eq!(
        body["rating"]["stars"].as_u64(),
        Some(u64::from(ratings::stars("1")))
    );

    // Ratings down: the reviews still come, with the reason.
    let down = format!("127.0.0.1:{}", free_port());
    let (addr, _stop) = reviews_app(Version::V2 { ratings: down }).await;
    let answer = get(addr, "/reviews/1").await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["reviews"].as_array().unwrap().len(), 2);
    assert!(body.get("rating").is_none());
    let reason = body["ratings_error"].as_str().unwrap();
    assert!(
        reason.starts_with("ratings unavailable: cannot connect"),
        "{reason}"
    );

    // Ratings denied by its sidecar: the status and message.
    let (denier, _d) = fake(403, &[], "access denied by policy; request id: r-9\n").await;
    let (addr, _stop) = reviews_app(Version::V2 {
        ratings: denier.to_string(),
    })
    .await;
    let body = get(addr, "/reviews/2").await.json();
    assert_eq!(
        body["ratings_error"],
        "403 Forbidden: access denied by policy; request id: r-9"
    );
}

#[tokio::test]
async fn the_inventory_speaks_its_line_protocol() {
    let (l, addr) = listener().await;
    let _stop = spawn(move |s| inventory::serve(l, Inventory::new(INITIAL_STOCK), s));
    let mut tcp = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let script = [
        ("STOCK 1", "OK 7"),
        ("RESERVE 1 5", "OK 2"),
        ("reserve 1 5", "ERR insufficient"),
        ("STOCK 1", "OK 2"),
        ("SELL 1", "ERR unknown command"),
        ("RESERVE 1", "ERR usage: RESERVE <id> <n>"),
        ("STOCK nope", "OK 0"),
    ];
    for (command, expected) in script {
        tcp.get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        let mut reply = String::new();
        tcp.read_line(&mut reply).await.unwrap();
        assert_eq!(reply, format!("{expected}\n"), "after {command}");
    }
    // Pipelined commands are answered in order.
    tcp.get_mut()
        .write_all(b"STOCK 2\nSTOCK 3\n")
        .await
        .unwrap();
    let mut two = String::new();
    tcp.read_line(&mut two).await.unwrap();
    tcp.read_line(&mut two).await.unwrap();
    assert_eq!(two, "OK 3\nOK 12\n");
    // A line that is too long closes the connection after saying so.
    let long = format!("STOCK {}\n", "x".repeat(inventory::MAX_LINE));
    tcp.get_mut().write_all(long.as_bytes()).await.unwrap();
    let mut rest = String::new();
    tcp.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "ERR line too long\n");
}

#[tokio::test]
async fn idle_inventory_clients_are_closed() {
    let (l, addr) = listener().await;
    let idle = Duration::from_millis(100);
    let _stop = spawn(move |s| inventory::serve_with_idle(l, Inventory::default(), idle, s));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

async fn frontend_app(catalog: String, reviews: String) -> (SocketAddr, oneshot::Sender<()>) {
    let (l, addr) = listener().await;
    let upstreams = Upstreams { catalog, reviews };
    let stop = spawn(move |s| async move {
        frontend::serve(l, &upstreams, s).await.unwrap();
    });
    (addr, stop)
}

/// What a catalog sidecar answers a gRPC request its policy denies.
const GRPC_DENIED: &[(&str, &str)] = &[
    ("content-type", "application/grpc"),
    ("grpc-status", "7"),
    (
        "grpc-message",
        "access denied by route policy; request id: req-42",
    ),
    ("x-request-id", "req-42"),
];

#[tokio::test]
async fn the_frontend_answers_an_upstream_403_as_403() {
    // The catalog's sidecar denies AddBook with PERMISSION_DENIED.
    let (denier, _d) = fake(200, GRPC_DENIED, "").await;
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (addr, _stop) = frontend_app(denier.to_string(), nowhere.clone()).await;
    let answer = request(addr, "POST", "/api/books", r#"{"title": "Forbidden"}"#).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.body,
        "catalog: access denied by route policy; request id: req-42\n"
    );
    assert_eq!(answer.header("x-request-id"), Some("req-42"));

    // The reviews' sidecar denies: its answer is relayed as is.
    let (l, catalog_addr) = listener().await;
    let _catalog = spawn(move |s| async move {
        let _ = catalog::serve(l, CatalogService::new(&nowhere), s).await;
    });
    let (reviews_denier, _r) = fake(
        403,
        &[("x-request-id", "req-7")],
        "access denied by policy; request id: req-7\n",
    )
    .await;
    let (addr, _stop) = frontend_app(catalog_addr.to_string(), reviews_denier.to_string()).await;
    let answer = get(addr, "/api/books").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body, "access denied by policy; request id: req-7\n");
    assert_eq!(answer.header("x-request-id"), Some("req-7"));

    // The catalog cannot reach the inventory: GetBook is UNAVAILABLE, a 503.
    let answer = get(addr, "/api/books/1").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.starts_with("catalog: inventory unavailable: "),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn unreachable_upstreams_are_503s_until_they_come_back() {
    let catalog_port = free_port();
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (addr, _stop) = frontend_app(format!("127.0.0.1:{catalog_port}"), nowhere.clone()).await;
    let answer = get(addr, "/api/books").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.body.starts_with("catalog: "), "{}", answer.body);

    // The catalog comes up: listing now reaches reviews, which is down -> 503 naming it.
    let l = TcpListener::bind(("127.0.0.1", catalog_port))
        .await
        .unwrap();
    let _catalog = spawn(move |s| async move {
        let _ = catalog::serve(l, CatalogService::new(&nowhere), s).await;
    });
    let deadline = Instant::now() + READY_WITHIN;
    let answer = loop {
        let answer = get(addr, "/api/books").await;
        if !answer.body.starts_with("catalog: ") || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.starts_with("reviews: cannot connect"),
        "{}",
        answer.body
    );
}

/// Arguments, environment, and the variable the error must name.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn a_missing_variable_exits_2_naming_it() {
    let cases: &[Case] = &[
        (
            &["frontend"],
            &[("UPSTREAM_REVIEWS", "127.0.0.1:1")],
            "UPSTREAM_CATALOG",
        ),
        (
            &["frontend"],
            &[("UPSTREAM_CATALOG", "127.0.0.1:1")],
            "UPSTREAM_REVIEWS",
        ),
        (&["catalog"], &[], "UPSTREAM_INVENTORY"),
        (&["reviews", "--version", "v2"], &[], "UPSTREAM_RATINGS"),
        (
            &["catalog"],
            &[("UPSTREAM_INVENTORY", "inventory")],
            "UPSTREAM_INVENTORY",
        ),
    ];
    for (args, env, var) in cases {
        let out = Command::new(BIN)
            .arg("bookstore")
            .args(*args)
            .env("PORT", "1")
            .env_remove("UPSTREAM_CATALOG")
            .env_remove("UPSTREAM_REVIEWS")
            .env_remove("UPSTREAM_INVENTORY")
            .env_remove("UPSTREAM_RATINGS")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(var), "{args:?}: {stderr}");
    }
    for app in ["inventory", "ratings"] {
        let out = Command::new(BIN)
            .args(["bookstore", app])
            .env_remove("PORT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{app}: {stderr}");
        assert!(stderr.contains("PORT"), "{app}: {stderr}");
    }
}
