//! `Watch` through the service trait: subscribe, snapshot, ACK/NACK, pushes after a write,
//! resuming without a resend, the refusals, and the registration collector.

mod support;

use support::{Env, env, id};

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bulkhead_api::proxy::proxy_api_server::ProxyApi;
use bulkhead_api::proxy::watch_request::Request as Message;
use bulkhead_api::proxy::{
    Ack, Endpoint, InboundPort, Snapshot, Subscribe, UpstreamRef, WatchRequest,
};
use bulkhead_control::proxyapi::collect_registrations;
use bulkhead_control::server::PeerInfo;
use bulkhead_identity::SpiffeId;
use bulkhead_store::{Registration, WriteOp};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::StreamBody;
use hyper::body::Frame;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{DecodeBuf, Decoder};
use tonic::{Code, Request, Status, Streaming};

const WAIT: Duration = Duration::from_secs(10);

/// Writes `objects` and announces the commit, as the REST API does; returns the revision.
fn apply(env: &Env, objects: Vec<Value>) -> u64 {
    let ops = objects
        .into_iter()
        .map(|object| WriteOp::Put {
            object,
            expected_version: None,
        })
        .collect();
    let outcome = env.shared.store.write(ops, "test", false).unwrap();
    env.shared.committed(outcome.revision, outcome.events);
    outcome.revision
}

fn workload(name: &str, sa: &str, labels: Value, ports: Value) -> Value {
    json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"serviceAccount": sa, "ports": ports}})
}

fn authz(name: &str) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"}, "spec": {}})
}

fn mesh() -> Vec<Value> {
    vec![
        workload(
            "web",
            "web",
            json!({"app": "web"}),
            json!([{"name": "http", "port": 8080}]),
        ),
        workload("client", "client", json!({"app": "client"}), json!([])),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
    ]
}

/// Decodes the request stream as tonic's generated server would.
struct Decode;

impl Decoder for Decode {
    type Item = WatchRequest;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<WatchRequest>, Status> {
        WatchRequest::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

type Frames = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

/// One gRPC message frame: uncompressed flag, length, message.
fn frame(message: &WatchRequest) -> Result<Frame<Bytes>, Infallible> {
    let encoded = message.encode_to_vec();
    let mut buf = BytesMut::with_capacity(encoded.len() + 5);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(encoded.len()).unwrap());
    buf.put_slice(&encoded);
    Ok(Frame::data(buf.freeze()))
}

/// The proxy side of one Watch stream.
struct Proxy {
    requests: Frames,
    snapshots: ReceiverStream<Result<Snapshot, Status>>,
}

impl Proxy {
    async fn next(&mut self) -> Snapshot {
        let item = timeout(WAIT, self.snapshots.next())
            .await
            .expect("no snapshot in time");
        item.expect("the stream ended").expect("the stream failed")
    }

    async fn send(&self, message: Message) {
        let request = WatchRequest {
            request: Some(message),
        };
        self.requests.send(frame(&request)).await.unwrap();
    }

    async fn ack(&self, s: &Snapshot, error: &str) {
        let ack = Ack {
            version: s.version,
            hash: s.hash.clone(),
            error: error.to_owned(),
        };
        self.send(Message::Ack(ack)).await;
    }
}

fn subscribe(workload: &str, inbound: &[(u32, &str)], upstreams: &[(&str, u32)]) -> Subscribe {
    Subscribe {
        workload: workload.to_owned(),
        inbound: inbound
            .iter()
            .map(|(port, address)| InboundPort {
                port: *port,
                address: (*address).into(),
                protocol: "http".into(),
            })
            .collect(),
        upstreams: upstreams
            .iter()
            .map(|(service, port)| UpstreamRef {
                service: (*service).into(),
                port: *port,
            })
            .collect(),
        cert_expiry_unix: 1_900_000_000,
        ..Subscribe::default()
    }
}

async fn open(
    env: &Env,
    client: Option<SpiffeId>,
    from: &str,
    first: Message,
) -> Result<Proxy, Status> {
    let (requests, rx) = mpsc::channel(16);
    let body = StreamBody::new(ReceiverStream::new(rx));
    let mut request = Request::new(Streaming::new_request(Decode, body, None, None));
    request.extensions_mut().insert(PeerInfo {
        addr: from.parse().unwrap(),
        spiffe_id: client,
    });
    requests
        .send(frame(&WatchRequest {
            request: Some(first),
        }))
        .await
        .unwrap();
    let snapshots = timeout(WAIT, env.svc.watch(request))
        .await
        .expect("Watch did not answer")?;
    Ok(Proxy {
        requests,
        snapshots: snapshots.into_inner(),
    })
}

async fn connect(env: &Env, sa: &str, from: &str, sub: Subscribe) -> Proxy {
    open(env, Some(id(sa)), from, Message::Subscribe(sub))
        .await
        .unwrap()
}

/// Waits (bounded) until `done` holds, letting the stream tasks run.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = timeout(WAIT, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

fn counter(env: &Env, name: &str) -> u64 {
    let text = env.shared.metrics.encode();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
    line.map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

fn status(env: &Env, instance: &str) -> Option<bulkhead_api::rest::ProxyStatus> {
    env.shared
        .proxies()
        .into_iter()
        .find(|p| p.instance == instance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_snapshot_ack_push_and_nack() {
    let env = env();
    let rev1 = apply(&env, mesh());
    let mut web = connect(
        &env,
        "web",
        "10.1.1.1:5555",
        subscribe("web", &[(8080, "0.0.0.0:15006")], &[]),
    )
    .await;
    let w1 = web.next().await;
    assert_eq!(w1.version, rev1);
    web.ack(&w1, "").await;

    let mut client = connect(
        &env,
        "client",
        "10.1.1.2:5555",
        subscribe("client", &[], &[("web.shop", 80)]),
    )
    .await;
    let c1 = client.next().await;
    let expected = Endpoint {
        address: "10.1.1.1:15006".into(),
        identity: id("web").to_string(),
    };
    assert_eq!(
        c1.upstreams[0].endpoints,
        [expected],
        "the unspecified IP became the peer's"
    );
    client.ack(&c1, "").await;
    until("both ACKs are recorded", || {
        status(&env, "shop/web@10.1.1.1:15006").is_some_and(|s| s.applied_version == rev1)
            && status(&env, "shop/client@").is_some_and(|s| s.applied_version == c1.version)
    })
    .await;
    let web_status = status(&env, "shop/web@10.1.1.1:15006").unwrap();
    assert!(web_status.connected);
    assert_eq!(web_status.identity, id("web").to_string());
    assert_eq!(web_status.inbound, ["8080=10.1.1.1:15006"]);
    assert_eq!(web_status.sent_version, rev1);
    assert!(web_status.cert_expiry.is_some());
    let stored = env.shared.store.registrations().unwrap();
    let web_reg = stored.iter().find(|r| r.workload == "shop/web").unwrap();
    assert_eq!(
        web_reg.inbound,
        [(8080, "10.1.1.1:15006".to_owned(), "http".to_owned())]
    );
    assert!(web_reg.connected);

    // A write reaches both proxies; the client ACKs (a push), the web proxy NACKs.
    let rev2 = apply(&env, vec![authz("allow-client")]);
    let c2 = client.next().await;
    assert_eq!(c2.version, rev2);
    assert_ne!(c2.hash, c1.hash);
    client.ack(&c2, "").await;
    let w2 = web.next().await;
    assert_eq!(w2.version, rev2);
    web.ack(&w2, "resources_json[3]: cannot compile").await;
    until("the NACK and the ACK are recorded", || {
        status(&env, "shop/web@10.1.1.1:15006")
            .is_some_and(|s| s.last_nack.as_deref() == Some("resources_json[3]: cannot compile"))
            && status(&env, "shop/client@").is_some_and(|s| s.applied_version == rev2)
    })
    .await;
    assert_eq!(
        counter(&env, "bulkhead_control_push_latency_seconds_count"),
        1
    );
    assert_eq!(counter(&env, "bulkhead_control_snapshot_nacks_total"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_proxy_gets_nothing_until_a_change() {
    let env = env();
    apply(&env, mesh());
    let first = subscribe("client", &[], &[("web.shop", 80)]);
    let mut client = connect(&env, "client", "10.1.1.2:5555", first).await;
    let c1 = client.next().await;
    client.ack(&c1, "").await;
    until("the ACK is recorded", || {
        status(&env, "shop/client@").is_some_and(|s| s.applied_version == c1.version)
    })
    .await;

    // The client goes away and comes back with what it applied: nothing is resent...
    drop(client);
    until("the client is disconnected", || {
        status(&env, "shop/client@").is_some_and(|s| !s.connected)
    })
    .await;
    let builds = counter(&env, "bulkhead_control_snapshot_build_seconds_count");
    let mut resumed = subscribe("client", &[], &[("web.shop", 80)]);
    resumed.applied_version = c1.version;
    resumed.applied_hash = c1.hash.clone();
    let mut client = connect(&env, "client", "10.1.1.2:5556", resumed).await;
    until("the resumed stream built its snapshot", || {
        counter(&env, "bulkhead_control_snapshot_build_seconds_count") > builds
    })
    .await;
    // ...so the first snapshot it gets is the one the next change causes.
    let rev2 = apply(&env, vec![authz("allow-more")]);
    let c2 = client.next().await;
    assert_eq!(c2.version, rev2);
    assert!(status(&env, "shop/client@").unwrap().connected);
}

#[tokio::test]
async fn a_new_endpoint_is_pushed_to_its_dialers() {
    let env = env();
    apply(&env, mesh());
    let mut client = connect(
        &env,
        "client",
        "10.1.1.2:5555",
        subscribe("client", &[], &[("web.shop", 80)]),
    )
    .await;
    let c1 = client.next().await;
    assert!(c1.upstreams[0].endpoints.is_empty());
    let _web = connect(
        &env,
        "web",
        "10.1.1.1:5555",
        subscribe("web", &[(8080, "10.1.1.1:15006")], &[]),
    )
    .await;
    let c2 = client.next().await;
    assert_eq!(c2.version, c1.version, "same store revision, new topology");
    assert_eq!(c2.upstreams[0].endpoints.len(), 1);
}

#[tokio::test]
async fn watch_refusals() {
    let env = env();
    apply(&env, mesh());
    let sub = || Message::Subscribe(subscribe("web", &[(8080, "0.0.0.0:15006")], &[]));
    let unauthenticated = open(&env, None, "10.0.0.1:1", sub()).await.err().unwrap();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    let ack_first = Message::Ack(Ack::default());
    let err = open(&env, Some(id("web")), "10.0.0.1:1", ack_first)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("must be Subscribe"),
        "{}",
        err.message()
    );

    let err = open(&env, Some(id("admin")), "10.0.0.1:1", sub())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("`web`") && err.message().contains("`admin`"),
        "{}",
        err.message()
    );

    let bad = Message::Subscribe(subscribe("web", &[(8080, "nowhere")], &[]));
    let err = open(&env, Some(id("web")), "10.0.0.1:1", bad)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("subscribe.inbound[0].address"),
        "{}",
        err.message()
    );

    let mut labels = subscribe("ghost", &[], &[]);
    labels.labels.insert(String::new(), "x".into());
    let err = open(
        &env,
        Some(id("ghost")),
        "10.0.0.1:1",
        Message::Subscribe(labels),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(
        err.message().contains("label keys must not be empty"),
        "{}",
        err.message()
    );
}

fn registration(instance: &str, connected: bool, last_seen_unix: u64) -> Registration {
    Registration {
        instance: instance.to_owned(),
        workload: instance.split('@').next().unwrap().to_owned(),
        identity: id("web").to_string(),
        inbound: vec![(8080, "10.0.0.1:15006".into(), "http".into())],
        last_seen_unix,
        connected,
        cert_expiry_unix: None,
    }
}

#[test]
fn registrations_of_proxies_away_too_long_are_dropped() {
    let env = env();
    let now = SystemTime::now();
    let unix = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let hour_ago = unix(now) - 3600;
    let store = &env.shared.store;
    store
        .put_registration(&registration("shop/web@a", false, hour_ago))
        .unwrap();
    // Marked connected by a previous process: away only since this one started.
    store
        .put_registration(&registration("shop/web@b", true, hour_ago))
        .unwrap();
    // Live here: kept whatever the record says.
    store
        .put_registration(&registration("shop/web@c", false, hour_ago))
        .unwrap();
    env.shared
        .update_proxy("shop/web@c", |s| s.connected = true);
    let ttl = Duration::from_secs(600);
    let started = now - Duration::from_secs(10);
    let topology = env.shared.subscribe_changes().borrow().topology;

    assert_eq!(
        collect_registrations(&env.shared, ttl, started, now).unwrap(),
        1
    );
    let left: Vec<String> = store
        .registrations()
        .unwrap()
        .into_iter()
        .map(|r| r.instance)
        .collect();
    assert_eq!(left, ["shop/web@b", "shop/web@c"]);
    assert_eq!(
        env.shared.subscribe_changes().borrow().topology,
        topology + 1
    );

    let later = now + Duration::from_secs(700);
    assert_eq!(
        collect_registrations(&env.shared, ttl, started, later).unwrap(),
        1
    );
    let left: Vec<String> = store
        .registrations()
        .unwrap()
        .into_iter()
        .map(|r| r.instance)
        .collect();
    assert_eq!(left, ["shop/web@c"]);
    assert_eq!(
        collect_registrations(&env.shared, ttl, started, later).unwrap(),
        0
    );
    assert_eq!(
        env.shared.subscribe_changes().borrow().topology,
        topology + 2
    );
}
