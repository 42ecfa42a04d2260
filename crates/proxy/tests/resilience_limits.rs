//! Traffic resilience with real sockets, continued: the circuit breakers' overflow, the
//! retry budget in a total outage, retries on a gRPC status, the connect and idle
//! timeouts of the policy, and `/config`'s per-endpoint state. Sidecar A balances over B
//! sidecars, each in front of a scripted app. Waits are bounded polls of a condition.
//! (Timer arithmetic is checked with paused time in `src/outbound/retry/tests.rs`.)

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bulkhead_proxy::Settings;
use bulkhead_proxy::admin::{AdminState, bind_admin, serve_admin};
use bulkhead_proxy::config::AppProtocol;
use bulkhead_proxy::resilience::policy::LoadBalancer;
use bulkhead_proxy::resilience::{Limit, TrafficPolicy, Upstream};
use bulkhead_proxy::snapshot::{Endpoint, Outbound};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use support::apps::{TestBody, body_string, full, get, h1_client, h2_client, tcp_echo_app};
use support::{Mesh, Sidecar, any_port, api_sidecar, blackhole, engine, id, snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upper bound on any one wait; nothing is slept for.
const STEP: Duration = Duration::from_secs(20);

/// What a scripted app answers.
const OK: u8 = 0;
/// 503 to everything.
const UNAVAILABLE: u8 = 1;
/// A trailers-only gRPC answer with `grpc-status: 14` to everything.
const GRPC_UNAVAILABLE: u8 = 2;

/// A scripted app: `mode` says how it answers (`/slow` never answers in mode [`OK`]);
/// `hits` counts requests.
struct App {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn app(name: &'static str, mode: u8) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (m, hits) = (Arc::new(AtomicU8::new(mode)), Arc::new(AtomicUsize::new(0)));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (m, h) = (m.clone(), h.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    h.fetch_add(1, Ordering::Relaxed);
                    let mode = m.load(Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(answer(name, mode, &req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    App { addr, hits }
}

async fn answer(name: &str, mode: u8, req: &Request<Incoming>) -> Response<TestBody> {
    let resp = Response::builder().header("x-endpoint", name);
    let resp = match mode {
        UNAVAILABLE => resp.status(StatusCode::SERVICE_UNAVAILABLE),
        GRPC_UNAVAILABLE => resp
            .header("content-type", "application/grpc")
            .header("grpc-status", "14")
            .header("grpc-message", "going away"),
        _ if req.uri().path() == "/slow" => return std::future::pending().await,
        _ if req.headers().contains_key("grpc-timeout") || is_grpc(req) => resp
            .header("content-type", "application/grpc")
            .header("grpc-status", "0"),
        _ => resp,
    };
    resp.body(full(name.to_owned())).unwrap()
}

fn is_grpc(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Client sidecar A over B sidecars (one per app) plus any `extra` raw endpoints.
struct Cluster {
    a: Sidecar,
    _bs: Vec<Sidecar>,
    apps: Vec<App>,
    _mesh: Mesh,
}

const NAMES: [&str; 3] = ["one", "two", "three"];

async fn cluster(
    modes: &[u8],
    extra: &[SocketAddr],
    protocol: AppProtocol,
    traffic: TrafficPolicy,
    settings: Settings,
) -> Cluster {
    let mesh = Mesh::new();
    let engine = engine("");
    let (mut bs, mut apps, mut endpoints) = (vec![], vec![], vec![]);
    for (name, mode) in NAMES.iter().zip(modes) {
        let app = app(name, *mode).await;
        let b = api_sidecar(&mesh, engine.clone(), app.addr, protocol).await;
        endpoints.push(Endpoint {
            address: b.inbound[0],
            identity: id("api"),
        });
        bs.push(b);
        apps.push(app);
    }
    endpoints.extend(extra.iter().map(|address| Endpoint {
        address: *address,
        identity: id("api"),
    }));
    let outbound = vec![Outbound {
        listen: any_port(),
        service: "api.shop".into(),
        protocol,
        endpoints,
        traffic: Arc::new(traffic),
    }];
    let svid = mesh.svid("web");
    let a = snapshot(&mesh, &svid, "web", engine, vec![], outbound);
    let a = Sidecar::start_with(a, settings).await;
    Cluster {
        a,
        _bs: bs,
        apps,
        _mesh: mesh,
    }
}

fn round_robin() -> TrafficPolicy {
    TrafficPolicy {
        load_balancer: LoadBalancer::RoundRobin,
        ..TrafficPolicy::default()
    }
}

impl Cluster {
    /// A's upstream state (the one outbound listener).
    fn upstream(&self) -> Arc<Upstream> {
        self.a.metrics.upstreams().get((any_port(), 0)).unwrap()
    }

    /// Waits (bounded) until `limit` has `n` slots taken.
    async fn wait_for_slots(&self, limit: Limit, n: u32) {
        let up = self.upstream();
        until(|| up.breakers.current(limit) == n).await;
    }

    fn metric(&self, series: &str) -> bool {
        self.a.metrics.encode().contains(series)
    }

    fn hits(&self) -> usize {
        self.apps
            .iter()
            .map(|a| a.hits.load(Ordering::Relaxed))
            .sum()
    }
}

/// Polls `cond` (bounded) until it holds.
async fn until(cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition never held");
}

async fn step<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut).await.expect("in time")
}

#[tokio::test]
async fn max_connections_overflow_refuses_a_new_connection() {
    let mut traffic = round_robin();
    traffic.limits.max_connections = 1;
    let c = cluster(
        &[OK, OK],
        &[],
        AppProtocol::Http,
        traffic,
        Settings::default(),
    )
    .await;
    let mut client = h1_client(c.a.outbound[0]).await;
    // The first request opens the pooled connection to endpoint one, which keeps the slot.
    let resp = client.send_request(get("/first")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_string(resp).await, "one");
    assert_eq!(c.upstream().breakers.current(Limit::Connections), 1);
    // The next goes to endpoint two, which needs a connection of its own.
    let resp = client.send_request(get("/second")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["x-bulkhead-error"], "overflow");
    assert_eq!(resp.headers()["x-bulkhead-overflow"], "max_connections");
    let line = c.a.wait_for_log(|l| l["path"] == "/second").await;
    assert_eq!(line["overflow"], "max_connections");
    assert_eq!(line["retries"], 0, "an overflow is not retried");
    assert!(c.metric(r#"bulkhead_proxy_outbound_overflow_total{limit="max_connections"} 1"#));
    assert_eq!(c.apps[1].hits.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn max_pending_requests_overflow_while_a_connect_hangs() {
    let hole = blackhole().await;
    let mut traffic = TrafficPolicy::default();
    traffic.limits.max_pending_requests = 1;
    let c = cluster(
        &[],
        &[hole.addr],
        AppProtocol::Http,
        traffic,
        Settings::default(),
    )
    .await;
    // The first request waits for a connection that does not come.
    let mut waiting = h1_client(c.a.outbound[0]).await;
    let held = tokio::spawn(async move { waiting.send_request(get("/waiting")).await });
    c.wait_for_slots(Limit::PendingRequests, 1).await;
    let mut client = h1_client(c.a.outbound[0]).await;
    let resp = step(client.send_request(get("/refused"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers()["x-bulkhead-overflow"],
        "max_pending_requests"
    );
    let line = c.a.wait_for_log(|l| l["path"] == "/refused").await;
    assert_eq!(line["overflow"], "max_pending_requests");
    assert!(c.metric(r#"bulkhead_proxy_outbound_overflow_total{limit="max_pending_requests"} 1"#));
    held.abort();
}

#[tokio::test]
async fn max_retries_overflow_ends_retrying_with_the_last_answer() {
    let mut traffic = round_robin();
    traffic.limits.max_retries = 1;
    let c = cluster(
        &[UNAVAILABLE, OK],
        &[],
        AppProtocol::Http,
        traffic,
        Settings::default(),
    )
    .await;
    // 503 from endpoint one, then the retry hangs on endpoint two, holding the one slot.
    let mut slow = h1_client(c.a.outbound[0]).await;
    let held = tokio::spawn(async move { slow.send_request(get("/slow")).await });
    let up = c.upstream();
    until(|| up.views().get(1).is_some_and(|(_, v)| v.in_flight == 1)).await;
    assert_eq!(up.breakers.current(Limit::Retries), 1);
    // Endpoint one's 503 would be retried, but no retry slot is free.
    let mut client = h1_client(c.a.outbound[0]).await;
    let resp = step(client.send_request(get("/next"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !resp.headers().contains_key("x-bulkhead-overflow"),
        "the upstream's own answer, not a refusal"
    );
    assert_eq!(resp.headers()["x-endpoint"], "one");
    assert!(c.metric(r#"bulkhead_proxy_outbound_overflow_total{limit="max_retries"} 1"#));
    let line = c.a.wait_for_log(|l| l["path"] == "/next").await;
    assert_eq!(line["retries"], 0);
    assert_eq!(line["status"], 503);
    held.abort();
}

/// A gRPC POST with an empty message.
fn grpc_call(path: &str) -> Request<TestBody> {
    Request::post(format!("http://api.shop{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full(bytes::Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn a_trailers_only_grpc_unavailable_is_retried_on_another_endpoint() {
    // gRPC calls are POSTs: retried only with `nonIdempotent`.
    let mut traffic = round_robin();
    traffic.retries.non_idempotent = true;
    let c = cluster(
        &[GRPC_UNAVAILABLE, OK],
        &[],
        AppProtocol::Grpc,
        traffic,
        Settings::default(),
    )
    .await;
    let mut client = h2_client(c.a.outbound[0]).await;
    for i in 0..4 {
        let resp = step(client.send_request(grpc_call(&format!("/echo.Echo/Say{i}"))))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "0", "call {i}");
        assert_eq!(resp.headers()["x-endpoint"], "two");
    }
    let line = c.a.wait_for_log(|l| l["retries"] == 1).await;
    assert_eq!(line["status"], 200);
    assert!(c.metric(r#"bulkhead_proxy_outbound_retries_total{result="success"}"#));
    assert!(c.apps[0].hits.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn by_default_a_listed_grpc_status_retries_a_grpc_call_but_nothing_else_does() {
    let c = cluster(
        &[GRPC_UNAVAILABLE, OK],
        &[],
        AppProtocol::Grpc,
        round_robin(),
        Settings::default(),
    )
    .await;
    let mut client = h2_client(c.a.outbound[0]).await;
    let resp = step(client.send_request(grpc_call("/echo.Echo/Say")))
        .await
        .unwrap();
    assert_eq!(resp.headers()["grpc-status"], "0", "UNAVAILABLE is retried");
    assert_eq!(c.hits(), 2);

    // A gRPC call is a POST: an HTTP 503 (not a listed gRPC status) is not retried.
    let c = cluster(
        &[UNAVAILABLE, OK],
        &[],
        AppProtocol::Grpc,
        round_robin(),
        Settings::default(),
    )
    .await;
    let mut client = h2_client(c.a.outbound[0]).await;
    let resp = step(client.send_request(grpc_call("/echo.Echo/Say")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(c.hits(), 1);
}

#[tokio::test]
async fn the_retry_budget_caps_retries_in_a_total_outage() {
    let mut traffic = TrafficPolicy::default();
    traffic.retries.backoff_base = Duration::from_millis(1);
    traffic.retries.backoff_max = Duration::from_millis(1);
    let budget = &mut traffic.retries.budget;
    budget.ratio = 0.2;
    budget.min_per_second = 1;
    budget.window = Duration::from_secs(10);
    let (ratio, floor) = (0.2, 10.0);
    let c = cluster(
        &[UNAVAILABLE, UNAVAILABLE, UNAVAILABLE],
        &[],
        AppProtocol::Http,
        traffic,
        Settings::default(),
    )
    .await;
    let mut client = h1_client(c.a.outbound[0]).await;
    let requests = 100;
    for i in 0..requests {
        let resp = step(client.send_request(get(&format!("/r{i}"))))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let _ = body_string(resp).await;
    }
    let retries = c.hits() - requests;
    // Without the budget: 2 retries each, 200.
    let cap = ratio * requests as f64 + floor;
    assert!(retries as f64 <= cap, "{retries} retries > {cap}");
    assert!(retries >= 20, "the budget is used, not starved: {retries}");
    assert!(c.metric("bulkhead_proxy_outbound_retry_budget_exhausted_total "));
    assert!(!c.metric("bulkhead_proxy_outbound_retry_budget_exhausted_total 0"));
}

/// `GET /config` from an admin listener over A's state.
async fn config(admin: SocketAddr) -> serde_json::Value {
    let mut tcp = TcpStream::connect(admin).await.unwrap();
    let request = "GET /config HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    step(tcp.read_to_string(&mut raw)).await.unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

fn states(config: &serde_json::Value) -> Vec<serde_json::Value> {
    let endpoints = config["outbound"][0]["endpoints"].as_array().unwrap();
    endpoints.iter().map(|e| e["state"].clone()).collect()
}

#[tokio::test]
async fn config_shows_each_endpoint_state_after_an_ejection() {
    let mut traffic = round_robin();
    traffic.outlier.consecutive_5xx = 1;
    let c = cluster(
        &[UNAVAILABLE, OK],
        &[],
        AppProtocol::Http,
        traffic,
        Settings::default(),
    )
    .await;
    let listener = bind_admin(any_port()).await.unwrap();
    let admin = listener.local_addr().unwrap();
    tokio::spawn(serve_admin(
        listener,
        AdminState::new(c.a.subscribe(), c.a.metrics.clone()),
    ));
    let before = states(&config(admin).await);
    assert!(before.iter().all(serde_json::Value::is_null), "{before:?}");

    // Endpoint one's 503 ejects it (threshold 1); the retry gets endpoint two's 200.
    let mut client = h1_client(c.a.outbound[0]).await;
    let resp = client.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = body_string(resp).await;
    let after = states(&config(admin).await);
    let (one, two) = (&after[0], &after[1]);
    assert_eq!(one["healthy"], false, "{one}");
    assert_eq!(one["ejections"], 1);
    let ejected_for = one["ejected_for_ms"].as_u64().unwrap();
    assert!((20_000..=30_000).contains(&ejected_for), "{one}");
    assert_eq!(one["consecutive_5xx"], 0, "the ejection resets the count");
    assert!(one["ewma_ms"].as_f64().unwrap() > 0.0, "{one}");
    assert_eq!(one["in_flight"], 0);
    assert_eq!(two["healthy"], true, "{two}");
    assert!(two["ejected_for_ms"].is_null());
    assert!(two["ewma_ms"].as_f64().unwrap() > 0.0, "{two}");
    assert_eq!(two["in_flight"], 0);
    assert!(c.metric("bulkhead_proxy_outbound_endpoints_ejected 1"));

    // A request in flight to endpoint two (the only one eligible) shows up.
    let mut slow = h1_client(c.a.outbound[0]).await;
    let held = tokio::spawn(async move { slow.send_request(get("/slow")).await });
    for _ in 0..2000 {
        if states(&config(admin).await)[1]["in_flight"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = states(&config(admin).await);
    assert_eq!(during[1]["in_flight"], 1, "{during:?}");
    assert_eq!(during[0]["in_flight"], 0);
    held.abort();
}

#[tokio::test]
async fn the_connect_timeout_is_the_shorter_of_policy_and_settings() {
    let hole = blackhole().await;
    let mut traffic = TrafficPolicy::default();
    traffic.retries.attempts = 0;
    traffic.timeouts.connect = Duration::from_millis(200);
    let by_policy = cluster(
        &[],
        &[hole.addr],
        AppProtocol::Http,
        traffic.clone(),
        Settings::default(),
    )
    .await;
    traffic.timeouts.connect = Duration::from_secs(10);
    let settings = Settings {
        connect_timeout: Duration::from_millis(150),
        ..Settings::default()
    };
    let by_settings = cluster(&[], &[hole.addr], AppProtocol::Http, traffic, settings).await;
    for (c, expected) in [(by_policy, "200ms"), (by_settings, "150ms")] {
        let mut client = h1_client(c.a.outbound[0]).await;
        let resp = step(client.send_request(get("/"))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(resp.headers()["x-bulkhead-error"], "timeout");
        let body = body_string(resp).await;
        let want = format!("(connect timeout {expected} fired)");
        assert!(body.contains(&want), "{body}");
        let line = c.a.wait_for_log(|l| l["path"] == "/").await;
        assert_eq!(line["timeout"], "connect");
        assert_eq!(line["endpoint"], hole.addr.to_string());
        assert!(c.metric(r#"bulkhead_proxy_outbound_timeouts_total{kind="connect"} 1"#));
    }
}

#[tokio::test]
async fn the_policy_idle_timeout_closes_a_quiet_tcp_connection() {
    let echo = tcp_echo_app().await;
    let mesh = Mesh::new();
    let engine = engine("");
    let b = api_sidecar(&mesh, engine.clone(), echo, AppProtocol::Tcp).await;
    let mut traffic = TrafficPolicy::default();
    traffic.timeouts.idle = Duration::from_millis(300);
    let outbound = vec![Outbound {
        listen: any_port(),
        service: "api.shop".into(),
        protocol: AppProtocol::Tcp,
        endpoints: vec![Endpoint {
            address: b.inbound[0],
            identity: id("api"),
        }],
        traffic: Arc::new(traffic),
    }];
    let svid = mesh.svid("web");
    // The proxy-wide idle timeout (an hour by default) is longer: the policy's applies.
    let a = Sidecar::start(snapshot(&mesh, &svid, "web", engine, vec![], outbound)).await;
    let mut tcp = TcpStream::connect(a.outbound[0]).await.unwrap();
    tcp.write_all(b"ping").await.unwrap();
    let start = tokio::time::Instant::now();
    let mut rest = Vec::new();
    step(tcp.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "the echo app answers only at EOF");
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "{:?}",
        start.elapsed()
    );
    let line = a.wait_for_log(|l| l["reason"] == "idle timeout").await;
    assert_eq!(line["bytes_in"], 4);
    assert!(
        a.metrics
            .encode()
            .contains(r#"bulkhead_proxy_tcp_idle_timeouts_total{direction="outbound"} 1"#)
    );
}
