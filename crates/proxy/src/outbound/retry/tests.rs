//! The retry loop with tokio's clock paused, over a scripted [`Transport`]: each try
//! does what the script says (answer after a delay, hang, refuse the connection), so the
//! instants at which per-try and request timeouts fire and backoffs end are exact (up to
//! the timer wheel's 1 ms resolution) and nothing waits in real time. The backoff's
//! jitter is reproduced from the same seed: round robin draws no randomness, so the
//! backoff is the only consumer of the upstream's generator.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulkhead_identity::SpiffeId;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::{Sent, Transport, Tried, send_via};
use crate::config::AppProtocol;
use crate::error::ProxyError;
use crate::forward::{Body, full};
use crate::metrics::Metrics;
use crate::resilience::backoff::backoff;
use crate::resilience::endpoint::EndpointState;
use crate::resilience::policy::LoadBalancer;
use crate::resilience::rng::Rng;
use crate::resilience::upstream::EndpointSet;
use crate::resilience::{TimeoutKind, TrafficPolicy, Upstream};
use crate::snapshot::{Endpoint, Outbound};

const SEED: u64 = 42;
const MS: Duration = Duration::from_millis(1);

/// What one try does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Answers with this status after this long.
    Answer(u16, Duration),
    /// A trailers-only gRPC answer with this `grpc-status`, at once.
    Grpc(u32),
    /// Never answers.
    Hang,
    /// The connection is refused at once: nothing was sent.
    Refused,
}

/// A transport following a script, recording when each try started and where.
struct Script {
    set: Arc<EndpointSet>,
    steps: Mutex<VecDeque<Step>>,
    tries: Mutex<Vec<(Instant, SocketAddr)>>,
}

impl Transport for Script {
    fn endpoints(&self) -> Arc<EndpointSet> {
        Arc::clone(&self.set)
    }

    async fn attempt(&self, endpoint: &EndpointState, req: Request<Body>) -> Tried {
        let addr = endpoint.endpoint.address;
        self.tries.lock().unwrap().push((Instant::now(), addr));
        let step = self.steps.lock().unwrap().pop_front();
        match step.expect("a try beyond the script") {
            Step::Answer(status, after) => {
                tokio::time::sleep(after).await;
                let mut resp = Response::new(full(""));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                Tried::Response(resp)
            }
            Step::Grpc(code) => {
                let mut resp = Response::new(full(""));
                let headers = resp.headers_mut();
                headers.insert("content-type", "application/grpc".parse().unwrap());
                headers.insert("grpc-status", code.to_string().parse().unwrap());
                Tried::Response(resp)
            }
            Step::Hang => std::future::pending().await,
            Step::Refused => {
                let source = io::Error::from(io::ErrorKind::ConnectionRefused);
                Tried::NotSent(ProxyError::Connect { addr, source }, req)
            }
        }
    }
}

/// An upstream of `n` endpoints (ports 1..=n) under `policy`, round robin unless the
/// policy says otherwise.
struct Fixture {
    up: Upstream,
    metrics: Arc<Metrics>,
    outbound: Outbound,
    script: Script,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn fixture(n: u16, policy: TrafficPolicy, steps: &[Step]) -> Fixture {
    let identity = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/api").unwrap();
    let endpoints: Vec<Endpoint> = (1..=n)
        .map(|port| Endpoint {
            address: addr(port),
            identity: identity.clone(),
        })
        .collect();
    let up = Upstream::new(Rng::seeded(SEED));
    let set = up.endpoints(&Arc::new(()), &endpoints);
    let outbound = Outbound {
        listen: addr(0),
        service: "api.shop".into(),
        protocol: AppProtocol::Http,
        endpoints,
        traffic: Arc::new(policy),
    };
    Fixture {
        up,
        metrics: Metrics::new(),
        outbound,
        script: Script {
            set,
            steps: Mutex::new(steps.iter().copied().collect()),
            tries: Mutex::default(),
        },
    }
}

impl Fixture {
    /// Sends one GET; returns what came of it and when it ended.
    async fn send(&self) -> (Sent, Instant) {
        let req = Request::get("/").body(full("")).unwrap();
        let sent = send_via(&self.script, &self.metrics, &self.up, &self.outbound, req).await;
        (sent, Instant::now())
    }

    fn tries(&self) -> Vec<(Instant, SocketAddr)> {
        self.script.tries.lock().unwrap().clone()
    }

    fn metric(&self, series: &str) -> bool {
        self.metrics.encode().contains(series)
    }
}

/// Round robin, no per-try or request timeout, and the given backoff.
fn policy(base: Duration, max: Duration) -> TrafficPolicy {
    let mut p = TrafficPolicy {
        load_balancer: LoadBalancer::RoundRobin,
        ..TrafficPolicy::default()
    };
    p.timeouts.request = None;
    p.retries.backoff_base = base;
    p.retries.backoff_max = max;
    p
}

/// The backoffs the upstream will draw, in order.
fn backoffs(base: Duration, max: Duration, n: u32) -> Vec<Duration> {
    let rng = Rng::seeded(SEED);
    (1..=n)
        .map(|retry| backoff(retry, base, max, &rng))
        .collect()
}

/// `at` is `expected` up to the timer wheel's resolution (deadlines round up to 1 ms).
#[track_caller]
fn assert_at(at: Instant, expected: Instant) {
    assert!(
        at >= expected && at - expected <= MS,
        "{:?} off: expected {expected:?}, got {at:?}",
        at.checked_duration_since(expected)
            .map_or_else(|| format!("-{:?}", expected - at), |d| format!("+{d:?}"))
    );
}

fn timeout_of(sent: &Sent) -> (TimeoutKind, Duration) {
    match &sent.result {
        Err(ProxyError::Timeout { kind, after }) => (*kind, *after),
        other => panic!("not a timeout: {:?}", other.as_ref().map(Response::status)),
    }
}

fn status_of(sent: &Sent) -> u16 {
    match &sent.result {
        Ok(resp) => resp.status().as_u16(),
        Err(e) => panic!("no response: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn per_try_timeouts_fire_and_backoffs_end_on_schedule() {
    let (base, max) = (Duration::from_millis(40), Duration::from_millis(60));
    let per_try = Duration::from_millis(100);
    let mut p = policy(base, max);
    p.retries.per_try_timeout = Some(per_try);
    let f = fixture(2, p, &[Step::Hang, Step::Hang, Step::Hang]);
    let t0 = Instant::now();
    let (sent, end) = f.send().await;
    let b = backoffs(base, max, 2);
    let tries = f.tries();
    assert_eq!(tries.len(), 3, "the first try and two retries");
    assert_at(tries[0].0, t0);
    // Each try is cut at the per-try timeout, then the backoff runs before the next.
    assert_at(tries[1].0, tries[0].0 + per_try + b[0]);
    assert_at(tries[2].0, tries[1].0 + per_try + b[1]);
    assert_at(end, tries[2].0 + per_try);
    // Each retry goes to the other endpoint.
    let endpoints: Vec<u16> = tries.iter().map(|(_, a)| a.port()).collect();
    assert_eq!(endpoints, [1, 2, 1]);
    assert_eq!(timeout_of(&sent), (TimeoutKind::PerTry, per_try));
    assert_eq!(sent.retries, 2);
    assert_eq!(sent.endpoint.unwrap().endpoint.address, addr(1));
    assert!(f.metric(r#"bulkhead_proxy_outbound_timeouts_total{kind="per_try"} 3"#));
    assert!(f.metric(r#"bulkhead_proxy_outbound_retries_total{result="failure"} 2"#));
    // A per-try timeout counts as a failure of its endpoint and as its latency.
    let views = f.up.views();
    assert_eq!(views[0].1.consecutive_5xx, 2);
    assert_eq!(views[1].1.consecutive_5xx, 1);
    assert!(views.iter().all(|(_, v)| v.ewma_ms.unwrap() > 90.0));
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_within_the_per_try_timeout_ends_the_tries() {
    let (base, max) = (Duration::from_millis(25), Duration::from_millis(250));
    let per_try = Duration::from_millis(100);
    let mut p = policy(base, max);
    p.retries.per_try_timeout = Some(per_try);
    let f = fixture(2, p, &[Step::Hang, Step::Answer(200, 99 * MS)]);
    let t0 = Instant::now();
    let (sent, end) = f.send().await;
    let b = backoffs(base, max, 1);
    let tries = f.tries();
    assert_at(tries[1].0, t0 + per_try + b[0]);
    assert_at(end, tries[1].0 + 99 * MS);
    assert_eq!((status_of(&sent), sent.retries), (200, 1));
    assert!(f.metric(r#"bulkhead_proxy_outbound_retries_total{result="success"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn the_request_timeout_cuts_a_backoff_short() {
    // A backoff long enough to outlast the request timeout (the seed makes it so).
    let (base, max) = (Duration::from_secs(1), Duration::from_secs(1));
    let b = backoffs(base, max, 1);
    let (per_try, request) = (Duration::from_millis(100), Duration::from_millis(150));
    assert!(per_try + b[0] > request, "seed {SEED} draws {:?}", b[0]);
    let mut p = policy(base, max);
    p.retries.per_try_timeout = Some(per_try);
    p.timeouts.request = Some(request);
    let f = fixture(2, p, &[Step::Hang, Step::Hang]);
    let t0 = Instant::now();
    let (sent, end) = f.send().await;
    assert_at(end, t0 + request);
    assert_eq!(timeout_of(&sent), (TimeoutKind::Request, request));
    assert_eq!(f.tries().len(), 1, "the retry never went out");
    assert_eq!(sent.retries, 1, "it was counted when its backoff began");
    assert!(f.metric(r#"bulkhead_proxy_outbound_timeouts_total{kind="per_try"} 1"#));
    assert!(f.metric(r#"bulkhead_proxy_outbound_timeouts_total{kind="request"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn the_request_timeout_covers_tries_and_backoff() {
    let (base, max) = (Duration::from_millis(40), Duration::from_millis(40));
    let request = Duration::from_millis(250);
    let mut p = policy(base, max);
    p.timeouts.request = Some(request);
    let f = fixture(2, p, &[Step::Answer(503, 30 * MS), Step::Hang]);
    let t0 = Instant::now();
    let (sent, end) = f.send().await;
    let b = backoffs(base, max, 1);
    let tries = f.tries();
    assert_at(tries[1].0, t0 + 30 * MS + b[0]);
    // Measured from the start of the request, not of the try under way.
    assert_at(end, t0 + request);
    assert_eq!(timeout_of(&sent), (TimeoutKind::Request, request));
    assert_eq!(sent.retries, 1);
    assert_eq!(
        sent.endpoint.unwrap().endpoint.address,
        addr(2),
        "the endpoint of the try the timeout cut short"
    );
    assert!(f.metric(r#"bulkhead_proxy_outbound_timeouts_total{kind="request"} 1"#));
    assert!(!f.metric(r#"kind="per_try"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn without_timeouts_backoffs_alone_space_the_tries() {
    let (base, max) = (Duration::from_millis(25), Duration::from_millis(30));
    let f = fixture(
        3,
        policy(base, max),
        &[
            Step::Answer(503, 5 * MS),
            Step::Answer(503, 5 * MS),
            Step::Answer(503, 5 * MS),
        ],
    );
    let (sent, end) = f.send().await;
    let b = backoffs(base, max, 2);
    assert!(b.iter().all(|b| *b <= max), "{b:?}");
    let tries = f.tries();
    assert_at(tries[1].0, tries[0].0 + 5 * MS + b[0]);
    assert_at(tries[2].0, tries[1].0 + 5 * MS + b[1]);
    assert_at(end, tries[2].0 + 5 * MS);
    // Attempts exhausted: the last answer goes to the client.
    assert_eq!((status_of(&sent), sent.retries), (503, 2));
}

#[tokio::test(start_paused = true)]
async fn a_connect_failure_is_retried_without_a_retry_slot() {
    let mut p = policy(Duration::ZERO, Duration::ZERO);
    p.limits.max_retries = 0;
    let f = fixture(2, p.clone(), &[Step::Refused, Step::Answer(200, MS)]);
    let (sent, _) = f.send().await;
    assert_eq!((status_of(&sent), sent.retries), (200, 1));
    assert!(!f.metric(r#"limit="max_retries"} 1"#));
    // A 503 did load its endpoint: the retry needs a slot, and there is none.
    let f = fixture(2, p, &[Step::Answer(503, MS)]);
    let (sent, _) = f.send().await;
    assert_eq!((status_of(&sent), sent.retries), (503, 0));
    assert!(f.metric(r#"bulkhead_proxy_outbound_overflow_total{limit="max_retries"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn a_trailers_only_grpc_unavailable_is_retried_elsewhere() {
    let p = policy(Duration::ZERO, Duration::ZERO);
    let f = fixture(2, p.clone(), &[Step::Grpc(14), Step::Grpc(0)]);
    let (sent, _) = f.send().await;
    assert_eq!(sent.retries, 1);
    let ports: Vec<u16> = f.tries().iter().map(|(_, a)| a.port()).collect();
    assert_eq!(ports, [1, 2]);
    assert_eq!(sent.result.unwrap().headers()["grpc-status"], "0");
    assert_eq!(
        f.up.views()[0].1.consecutive_5xx,
        1,
        "UNAVAILABLE is a failure"
    );
    // Other codes are answers like any other.
    let f = fixture(2, p, &[Step::Grpc(5)]);
    let (sent, _) = f.send().await;
    assert_eq!(sent.retries, 0);
    assert_eq!(f.up.views()[0].1.consecutive_5xx, 0);
}

/// The connect timeout is tokio's timer around the TCP connect: against a listener whose
/// accept queue is full (SYNs are dropped, so the connect hangs), it fires exactly at
/// its limit. The queue is filled in real time, then the clock is paused.
#[tokio::test]
async fn the_connect_timeout_fires_at_its_limit() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(addr(0)).unwrap();
    let listener = socket.listen(0).unwrap();
    let target = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        let connect = tokio::net::TcpStream::connect(target);
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "the accept queue never filled");
    tokio::time::pause();
    let limit = Duration::from_millis(1500);
    let t0 = Instant::now();
    let err = crate::forward::dial(target, limit).await.unwrap_err();
    assert!(matches!(err, ProxyError::ConnectTimeout { .. }), "{err}");
    assert!(err.is_connect(), "retryable whatever the method");
    assert_at(Instant::now(), t0 + limit);
    drop((listener, queued));
}
