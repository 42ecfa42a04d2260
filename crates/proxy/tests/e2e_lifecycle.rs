//! Lifecycle: graceful shutdown drains in-flight requests; snapshots that add or remove
//! listeners are applied while serving.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::svid::inspect_leaf;
use bulkhead_identity::verify::client_config;
use bulkhead_proxy::snapshot::{Outbound, Snapshot};
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use support::apps::{body_string, get, h1_client, http_app};
use support::{DENY_ADMIN, Pair, PairSpec};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Polls (bounded) until `cond` holds.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let app = http_app().await;
    let Pair { mesh: _mesh, a, b } = Pair::start(PairSpec::new(app.addr)).await;
    let client_addr = a.outbound[0];
    let mut client = h1_client(client_addr).await;
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(1);
    let req = Request::builder()
        .method("POST")
        .uri("/count")
        .header("host", "api.shop")
        .body(body.boxed())
        .unwrap();
    let resp = tokio::spawn(client.send_request(req));
    tx.send_data(Bytes::from_static(b"first half;"))
        .await
        .unwrap();
    let received = app.received.clone();
    eventually("the app has the first half", async || {
        received.load(Ordering::Relaxed) == 11
    })
    .await;
    let stopping = tokio::spawn(a.stop());
    eventually("A stopped accepting", async || refuses(client_addr).await).await;
    tx.send_data(Bytes::from_static(b"second half"))
        .await
        .unwrap();
    drop(tx);
    let resp = resp.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body_string(resp).await, "22");
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("drained before the deadline")
        .unwrap();
    b.stop().await;
}

#[tokio::test]
async fn snapshot_adds_and_removes_listeners() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    // A port that was free a moment ago (the listener has to be named in the snapshot).
    let extra = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let with_extra = |s: &Snapshot, add: bool| {
        let mut outbound: Vec<Outbound> = s.outbound.iter().take(1).cloned().collect();
        if add {
            let mut o = outbound[0].clone();
            o.listen = extra;
            outbound.push(o);
        }
        Snapshot {
            version: s.version,
            identity: s.identity.clone(),
            svid: s.svid.clone(),
            bundle: s.bundle.clone(),
            engine: s.engine.clone(),
            endpoint: s.endpoint,
            inbound: s.inbound.clone(),
            outbound,
            access_log: s.access_log,
            waf: s.waf.clone(),
        }
    };
    pair.a.update(|s| with_extra(s, true));
    eventually("the new listener accepts", async || !refuses(extra).await).await;
    let mut client = h1_client(extra).await;
    assert_eq!(client.send_request(get("/")).await.unwrap().status(), 200);
    drop(client);
    // The original listener was kept.
    let mut client = h1_client(pair.client_addr()).await;
    assert_eq!(client.send_request(get("/")).await.unwrap().status(), 200);
    drop(client);
    pair.a.update(|s| with_extra(s, false));
    eventually("the removed listener refuses", async || {
        refuses(extra).await
    })
    .await;
    pair.stop().await;
}

#[tokio::test]
async fn rotation_and_reload_during_continuous_traffic() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let b_svid = pair.b.current().svid.clone();
    let a_svid = pair.a.current().svid.clone();
    let first_serial = b_svid.info().serial.clone();
    for i in 0..120 {
        match i {
            30 => {
                let (chain, key) = pair.mesh.issue("api");
                b_svid.install(chain, key).unwrap();
                let (chain, key) = pair.mesh.issue("web");
                a_svid.install(chain, key).unwrap();
            }
            60 => pair.set_policies(DENY_ADMIN),
            // A new snapshot version at A: its TLS client configurations are rebuilt.
            90 => pair.a.update(|s| Snapshot {
                version: s.version,
                identity: s.identity.clone(),
                svid: s.svid.clone(),
                bundle: s.bundle.clone(),
                engine: s.engine.clone(),
                endpoint: s.endpoint,
                inbound: s.inbound.clone(),
                outbound: s.outbound.clone(),
                access_log: s.access_log,
                waf: s.waf.clone(),
            }),
            _ => {}
        }
        // A new client connection each time: the accept and detect phases run too.
        let mut client = h1_client(pair.client_addr()).await;
        let resp = client
            .send_request(get(&format!("/item/{i}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i} failed");
        body_string(resp).await;
    }
    // A new handshake with B now sees the rotated certificate.
    let serial = presented_serial(&pair, a_svid).await;
    assert_ne!(serial, first_serial);
    assert_eq!(serial, b_svid.info().serial);
    pair.stop().await;
}

/// The serial of the certificate B's inbound listener presents to a fresh handshake.
async fn presented_serial(pair: &Pair, client: Arc<SvidSource>) -> String {
    let mut config =
        client_config(pair.mesh.bundle.clone(), Some(support::id("api")), client).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(pair.b.inbound[0]).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(pair.b.inbound[0].ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    inspect_leaf(leaf).unwrap().serial
}
