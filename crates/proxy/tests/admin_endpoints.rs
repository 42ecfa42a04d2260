//! The admin listener over a real loopback socket: every endpoint, readiness following the
//! certificate, no key material in `/config`, runtime log level changes.

mod config_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_proxy::admin::{AdminState, bind_admin, serve_admin};
use bulkhead_proxy::load::{build_snapshot, config_dir, load_config};
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::snapshot::Snapshot;
use config_support::{Mesh, web_mesh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, reload};

const WAIT: Duration = Duration::from_secs(30);

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request with `Connection: close`, read to the end.
async fn call(addr: SocketAddr, method: &str, target: &str) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let text = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("admin did not answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn snapshot_of(mesh: &Mesh, version: u64) -> Snapshot {
    let path = mesh.path().join("proxy.yaml");
    let cfg = load_config(&path).unwrap();
    build_snapshot(&cfg, &config_dir(&path), version, None).unwrap()
}

/// Serves admin for `state` on an ephemeral loopback port.
async fn serve(state: AdminState) -> SocketAddr {
    let listener = bind_admin(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_admin(listener, state));
    addr
}

fn state(mesh: &Mesh) -> (watch::Sender<Arc<Snapshot>>, Arc<Metrics>, AdminState) {
    let (tx, rx) = watch::channel(Arc::new(snapshot_of(mesh, 1)));
    let metrics = Metrics::new();
    metrics.set_config_version(1);
    let state = AdminState::new(rx, Arc::clone(&metrics));
    (tx, metrics, state)
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let (mesh, _) = web_mesh();
    let (_tx, metrics, state) = state(&mesh);
    metrics.http_request(
        bulkhead_proxy::metrics::Direction::Inbound,
        200,
        Duration::from_millis(1),
    );
    let addr = serve(state).await;
    let reply = call(addr, "GET", "/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .head
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        reply.head
    );
    assert!(reply.body.ends_with("# EOF\n"));
    for line in reply.body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let known = ["bulkhead_proxy_", "bulkhead_waf_"];
        assert!(known.iter().any(|p| series.starts_with(p)), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    assert!(reply.body.contains("bulkhead_proxy_config_version 1\n"));
    assert!(reply.body.contains(
        "bulkhead_proxy_http_requests_total{direction=\"inbound\",status_class=\"2xx\"} 1\n"
    ));
}

#[tokio::test]
async fn live_and_unknown_paths() {
    let (mesh, _) = web_mesh();
    let (_tx, _, state) = state(&mesh);
    let addr = serve(state).await;
    assert_eq!(call(addr, "GET", "/live").await.status, 200);
    assert_eq!(call(addr, "GET", "/nope").await.status, 404);
    let reply = call(addr, "POST", "/metrics").await;
    assert_eq!(reply.status, 405);
    assert!(reply.head.contains("allow: get, head"));
}

#[tokio::test]
async fn ready_follows_the_certificate_and_the_data_path() {
    let (mesh, _) = web_mesh();
    let (tx, _, mut state) = state(&mesh);
    let (serving_tx, serving_rx) = watch::channel(false);
    state.serving = Some(serving_rx);
    let addr = serve(state).await;

    let reply = call(addr, "GET", "/ready").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            503,
            "not ready: the data path's listeners are not serving yet\n"
        )
    );
    serving_tx.send_replace(true);
    let reply = call(addr, "GET", "/ready").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "ready: config version 1\n")
    );

    // An expired certificate makes the proxy unready...
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    mesh.issue_at(
        "web",
        "shop",
        "web",
        two_hours_ago,
        Duration::from_secs(3600),
    );
    tx.send_replace(Arc::new(snapshot_of(&mesh, 2)));
    let reply = call(addr, "GET", "/ready").await;
    assert_eq!(reply.status, 503);
    assert!(
        reply.body.starts_with(
            "not ready: the certificate for spiffe://cluster.local/ns/shop/sa/web is not valid now"
        ),
        "{}",
        reply.body
    );

    // ...and a valid one ready again.
    mesh.issue("web", "shop", "web");
    tx.send_replace(Arc::new(snapshot_of(&mesh, 3)));
    assert_eq!(call(addr, "GET", "/ready").await.status, 200);
}

#[tokio::test]
async fn config_describes_the_snapshot_without_key_material() {
    let (mesh, _) = web_mesh();
    let (tx, _, state) = state(&mesh);
    let snapshot = tx.borrow().clone();
    let addr = serve(state).await;
    let reply = call(addr, "GET", "/config").await;
    assert_eq!(reply.status, 200);
    assert!(reply.head.contains("content-type: application/json"));
    let config: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(config["version"], 1);
    assert_eq!(config["identity"], "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(config["workload"], "shop/web");
    assert_eq!(
        config["certificate"]["serial"],
        snapshot.svid.info().serial.as_str()
    );
    assert_eq!(config["certificate"]["valid"], true);
    assert!(
        config["certificate"]["not_after"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(config["trust_bundle"]["roots"], 1);
    assert_eq!(config["inbound"][0]["port"], 8080);
    assert_eq!(config["inbound"][0]["mtls_mode"], "PERMISSIVE");
    assert_eq!(config["outbound"][0]["service"], "api.shop");
    assert_eq!(
        config["outbound"][0]["endpoints"][0]["identity"],
        "spiffe://cluster.local/ns/shop/sa/api"
    );
    assert_eq!(config["policies"]["endpoints"], 1);
    assert!(config["waf"].is_null(), "no firewall configured");

    // Not one line of the private key's PEM body appears, nor any PEM block at all.
    let key = std::fs::read_to_string(mesh.path().join("web/key.pem")).unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!reply.body.contains(line), "key material in /config");
    }
    assert!(!reply.body.to_ascii_uppercase().contains("PRIVATE"));
    assert!(!reply.body.contains("-----BEGIN"));
}

#[tokio::test]
async fn the_log_filter_changes_at_runtime() {
    let (mesh, _) = web_mesh();
    let (_tx, _, mut state) = state(&mesh);
    let without = serve(state.clone()).await;
    assert_eq!(
        call(without, "POST", "/logging?level=debug").await.status,
        503
    );

    let (layer, handle) = reload::Layer::new(EnvFilter::new("info"));
    // The subscriber must outlive the handle's use; it is never installed globally.
    let _subscriber = tracing_subscriber::registry().with(layer);
    state.log_filter = Some(handle);
    let addr = serve(state).await;
    assert_eq!(call(addr, "GET", "/logging").await.body, "info\n");
    let reply = call(addr, "POST", "/logging?level=info%2Cbulkhead_proxy%3Ddebug").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "log filter set to `info,bulkhead_proxy=debug`\n")
    );
    let current = call(addr, "GET", "/logging").await.body;
    assert!(current.contains("bulkhead_proxy=debug"), "{current}");
    assert_eq!(call(addr, "PUT", "/logging?level=trace").await.status, 200);
    assert_eq!(call(addr, "PUT", "/logging").await.status, 400);
    let bad = call(addr, "POST", "/logging?level=bulkhead_proxy%3Dloud").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .starts_with("invalid log filter `bulkhead_proxy=loud`"),
        "{}",
        bad.body
    );
    assert_eq!(call(addr, "GET", "/logging").await.body, "trace\n");
}

#[tokio::test]
async fn non_loopback_addresses_are_refused() {
    let err = bind_admin(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let (mesh, _) = web_mesh();
    let (_tx, _, state) = state(&mesh);
    let wildcard = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = serve_admin(wildcard, state).await.unwrap_err();
    assert!(
        err.to_string().contains("is not a loopback address"),
        "{err}"
    );
}
