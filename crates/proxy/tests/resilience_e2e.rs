//! Traffic resilience with real sockets: sidecar A balances over several B sidecars, each
//! in front of its own mock app. No sleeps synchronise anything; loops are bounded.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bulkhead_proxy::config::AppProtocol;
use bulkhead_proxy::resilience::TrafficPolicy;
use bulkhead_proxy::snapshot::{Endpoint, Outbound};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use support::apps::{TestBody, body_string, full, get, h1_client};
use support::{Mesh, Sidecar, any_port, api_sidecar, engine, id, snapshot};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A mock app: `/slow` never answers; otherwise 503 while `failing` is set, else 200
/// with its name.
async fn mock_app(name: &'static str, failing: Arc<AtomicU8>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let failing = failing.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let failing = failing.clone();
                    async move { Ok::<_, Infallible>(answer(name, &failing, &req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, task)
}

async fn answer(name: &str, failing: &AtomicU8, req: &Request<Incoming>) -> Response<TestBody> {
    if req.uri().path() == "/slow" {
        std::future::pending::<()>().await;
    }
    let status = if failing.load(Ordering::Relaxed) == 1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut resp = Response::new(full(name.to_owned()));
    *resp.status_mut() = status;
    resp
}

/// A client sidecar balancing over `n` endpoint sidecars.
struct Cluster {
    a: Sidecar,
    bs: Vec<Option<Sidecar>>,
    apps: Vec<JoinHandle<()>>,
    failing: Vec<Arc<AtomicU8>>,
    _mesh: Mesh,
}

const NAMES: [&str; 3] = ["one", "two", "three"];

async fn cluster(n: usize, traffic: TrafficPolicy) -> Cluster {
    let mesh = Mesh::new();
    let engine = engine("");
    let (mut bs, mut apps, mut failing, mut endpoints) = (vec![], vec![], vec![], vec![]);
    for name in &NAMES[..n] {
        let flag = Arc::new(AtomicU8::new(0));
        let (app, task) = mock_app(name, flag.clone()).await;
        let b = api_sidecar(&mesh, engine.clone(), app, AppProtocol::Http).await;
        endpoints.push(Endpoint {
            address: b.inbound[0],
            identity: id("api"),
        });
        bs.push(Some(b));
        apps.push(task);
        failing.push(flag);
    }
    let outbound = vec![Outbound {
        listen: any_port(),
        service: "api.shop".into(),
        protocol: AppProtocol::Http,
        endpoints,
        traffic: Arc::new(traffic),
    }];
    let svid = mesh.svid("web");
    let a = Sidecar::start(snapshot(&mesh, &svid, "web", engine, vec![], outbound)).await;
    Cluster {
        a,
        bs,
        apps,
        failing,
        _mesh: mesh,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_endpoints_mid_load_loses_no_idempotent_request() {
    let mut c = cluster(3, TrafficPolicy::default()).await;
    let client_addr = c.a.outbound[0];
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let sent = sent.clone();
        clients.push(tokio::spawn(async move {
            let mut client = h1_client(client_addr).await;
            let mut errors = Vec::new();
            for _ in 0..150 {
                let resp = client.send_request(get("/")).await.unwrap();
                let status = resp.status();
                let body = body_string(resp).await;
                if status != StatusCode::OK {
                    errors.push(format!("{status}: {body}"));
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            errors
        }));
    }
    // Kill endpoint two (its sidecar, then its app) once load is under way.
    for _ in 0..10_000 {
        if sent.load(Ordering::Relaxed) >= 100 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    c.bs[1].take().unwrap().stop().await;
    c.apps[1].abort();
    let mut errors = Vec::new();
    for client in clients {
        errors.extend(client.await.unwrap());
    }
    assert!(errors.is_empty(), "client-visible errors: {errors:?}");
    assert_eq!(sent.load(Ordering::Relaxed), 600);
    let metrics = c.a.metrics.encode();
    assert!(
        metrics.contains("bulkhead_proxy_outbound_endpoints_ejected"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_per_try_timeout_yields_504_naming_it_in_the_body_and_the_log() {
    let mut traffic = TrafficPolicy::default();
    traffic.retries.attempts = 0;
    traffic.retries.per_try_timeout = Some(Duration::from_millis(200));
    let c = cluster(1, traffic).await;
    let mut client = h1_client(c.a.outbound[0]).await;
    let resp = client.send_request(get("/slow")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(resp.headers()["x-bulkhead-error"], "timeout");
    let body = body_string(resp).await;
    assert!(
        body.contains("upstream request timeout (per-try timeout 200ms fired)"),
        "{body}"
    );
    let line = c.a.wait_for_log(|l| l["path"] == "/slow").await;
    assert_eq!(line["timeout"], "per_try");
    assert_eq!(line["retries"], 0);
    assert_eq!(
        line["endpoint"],
        c.bs[0].as_ref().unwrap().inbound[0].to_string()
    );
    assert!(
        c.a.metrics
            .encode()
            .contains(r#"bulkhead_proxy_outbound_timeouts_total{kind="per_try"} 1"#)
    );
}

#[tokio::test]
async fn a_request_timeout_covers_retries_and_backoff() {
    let mut traffic = TrafficPolicy::default();
    traffic.timeouts.request = Some(Duration::from_millis(300));
    traffic.retries.per_try_timeout = Some(Duration::from_millis(200));
    let c = cluster(2, traffic).await;
    let mut client = h1_client(c.a.outbound[0]).await;
    let resp = client.send_request(get("/slow")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = body_string(resp).await;
    assert!(
        body.contains("upstream request timeout (request timeout 300ms fired)"),
        "{body}"
    );
    let line = c.a.wait_for_log(|l| l["path"] == "/slow").await;
    assert_eq!(line["timeout"], "request");
    assert_eq!(
        line["retries"], 1,
        "one per-try timeout, one retry cut short"
    );
}

#[tokio::test]
async fn overflow_gets_a_fast_503_naming_the_limit() {
    let mut traffic = TrafficPolicy::default();
    traffic.limits.max_requests = 1;
    let c = cluster(1, traffic).await;
    // One request holds the only slot.
    let mut slow = h1_client(c.a.outbound[0]).await;
    let held = tokio::spawn(async move { slow.send_request(get("/slow")).await });
    let mut client = h1_client(c.a.outbound[0]).await;
    let mut refused = None;
    for _ in 0..1000 {
        let resp = client.send_request(get("/")).await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(resp);
            break;
        }
        let _ = body_string(resp).await;
        tokio::task::yield_now().await;
    }
    let resp = refused.expect("the second request overflows once the first holds the slot");
    assert_eq!(resp.headers()["x-bulkhead-overflow"], "max_requests");
    let line = c.a.wait_for_log(|l| l["overflow"] == "max_requests").await;
    assert_eq!(line["status"], 503);
    assert!(
        c.a.metrics
            .encode()
            .contains(r#"bulkhead_proxy_outbound_overflow_total{limit="max_requests"} 1"#)
    );
    held.abort();
}

#[tokio::test]
async fn a_503_is_retried_on_another_endpoint_and_logged() {
    // Alternating picks make the failing endpoint's five 503s in a row certain.
    let traffic = TrafficPolicy {
        load_balancer: bulkhead_proxy::resilience::policy::LoadBalancer::RoundRobin,
        ..TrafficPolicy::default()
    };
    let c = cluster(2, traffic).await;
    c.failing[0].store(1, Ordering::Relaxed);
    let mut client = h1_client(c.a.outbound[0]).await;
    for i in 0..20 {
        let resp = client.send_request(get(&format!("/r{i}"))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_string(resp).await, "two");
    }
    let line = c.a.wait_for_log(|l| l["retries"] == 1).await;
    assert_eq!(line["status"], 200);
    let metrics = c.a.metrics.encode();
    assert!(
        metrics.contains(r#"bulkhead_proxy_outbound_retries_total{result="success"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bulkhead_proxy_outbound_ejections_total{reason="consecutive_5xx"} 1"#),
        "five 503s in a row eject endpoint one: {metrics}"
    );
}
