//! Policy at every layer through two sidecars, identity checks, and policy changes
//! applied to new requests on connections that stay open.

mod support;

use bulkhead_proxy::config::AppProtocol;
use http::Request;
use support::apps::{body_string, full, get, h1_client, http_app, read_head, tcp_echo_app};
use support::{DENY_ADMIN, Pair, PairSpec, id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ONLY_OTHER: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-other, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/other"]}}]}]
"#;

const ONLY_TEN: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-ten, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
"#;

const STRICT: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec: {mtls: {mode: STRICT}}
"#;

/// Reads until EOF or reset; returns what arrived.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got).await;
    got
}

#[tokio::test]
async fn authorization_deny_is_403_with_request_id_and_logged_policy() {
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.policies = DENY_ADMIN;
    let pair = Pair::start(spec).await;
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/admin/users")).await.unwrap();
    assert_eq!(resp.status(), 403);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = body_string(resp).await;
    assert!(body.contains(&request_id), "{body}");
    assert!(body.contains("authorization"), "{body}");
    let resp = client.send_request(get("/public")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let line = pair
        .b
        .wait_for_log(|l| l["request_id"] == request_id.as_str())
        .await;
    assert_eq!(line["decision"], "deny");
    assert_eq!(line["layer"], "authorization");
    assert_eq!(line["policy"], "AuthorizationPolicy/shop/deny-admin");
    assert_eq!(line["reason"], "a DENY policy matched");
    assert_eq!(line["status"], 403);
    let metrics = pair.b.metrics.encode();
    assert!(
        metrics.contains("decision=\"deny\",layer=\"authorization\"")
            || metrics.contains("layer=\"authorization\",decision=\"deny\""),
        "{metrics}"
    );
    pair.stop().await;
}

#[tokio::test]
async fn authorization_deny_closes_tcp() {
    let mut spec = PairSpec::new(tcp_echo_app().await);
    spec.policies = ONLY_OTHER;
    let pair = Pair::start(spec).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    tcp.write_all(b"not http").await.unwrap();
    tcp.shutdown().await.unwrap();
    assert!(read_until_closed(&mut tcp).await.is_empty());
    let line = pair.b.wait_for_log(|l| l["kind"] == "tcp").await;
    assert_eq!(line["decision"], "deny");
    assert_eq!(line["layer"], "authorization");
    assert!(line["reason"].as_str().unwrap().contains("ALLOW"), "{line}");
    pair.stop().await;
}

#[tokio::test]
async fn network_deny_is_403_and_logged() {
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.policies = ONLY_TEN;
    let pair = Pair::start(spec).await;
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(body_string(resp).await.contains("network"));
    let line = pair.b.wait_for_log(|l| l["decision"] == "deny").await;
    assert_eq!(line["layer"], "network");
    assert_eq!(line["policy"], "NetworkPolicy/shop/only-ten");
    pair.stop().await;
}

#[tokio::test]
async fn strict_refuses_plaintext_and_accepts_mtls() {
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.policies = STRICT;
    let pair = Pair::start(spec).await;
    let mut plain = TcpStream::connect(pair.b.inbound[0]).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: api.shop\r\n\r\n")
        .await
        .unwrap();
    assert!(read_until_closed(&mut plain).await.is_empty());
    let line = pair.b.wait_for_log(|l| l["decision"] == "deny").await;
    assert_eq!(line["layer"], "authentication");
    assert_eq!(line["policy"], "PeerAuthentication/shop/strict");
    assert!(line["source"].is_null());
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    pair.stop().await;
}

#[tokio::test]
async fn permissive_plaintext_never_carries_a_forged_identity() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut plain = TcpStream::connect(pair.b.inbound[0]).await.unwrap();
    plain
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: api.shop\r\nx-bulkhead-peer-identity: spiffe://cluster.local/ns/shop/sa/admin\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut plain).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("x-seen-x-bulkhead-peer-identity"), "{head}");
    let line = pair.b.wait_for_log(|l| l["path"] == "/echo").await;
    assert!(line["source"].is_null());
    pair.stop().await;
}

#[tokio::test]
async fn wrong_peer_identity_is_refused() {
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.expect = Some(id("payments"));
    let pair = Pair::start(spec).await;
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-bulkhead-error"], "tls-handshake");
    let body = body_string(resp).await;
    assert!(
        body.contains("spiffe://cluster.local/ns/shop/sa/payments"),
        "{body}"
    );
    let metrics = pair.a.metrics.encode();
    assert!(metrics.contains("reason=\"wrong_identity\""), "{metrics}");
    pair.stop().await;
}

#[tokio::test]
async fn wrong_peer_identity_closes_tcp() {
    let mut spec = PairSpec::new(tcp_echo_app().await);
    spec.expect = Some(id("payments"));
    spec.outbound = AppProtocol::Opaque;
    let pair = Pair::start(spec).await;
    let mut tcp = TcpStream::connect(pair.client_addr()).await.unwrap();
    let _ = tcp.write_all(b"data").await;
    assert!(read_until_closed(&mut tcp).await.is_empty());
    pair.stop().await;
}

#[tokio::test]
async fn new_policy_applies_to_new_requests_on_open_connections() {
    let app = http_app().await;
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(get("/admin")).await.unwrap();
    assert_eq!(resp.status(), 200);
    body_string(resp).await;
    pair.set_policies(DENY_ADMIN);
    // The same client connection (and the same pooled sidecar connection) stays up.
    let resp = client.send_request(get("/admin")).await.unwrap();
    assert_eq!(resp.status(), 403);
    body_string(resp).await;
    let req = Request::builder()
        .uri("/ok")
        .header("host", "api.shop")
        .body(full("x"))
        .unwrap();
    let resp = client.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    pair.set_policies("");
    let resp = client.send_request(get("/admin")).await.unwrap();
    assert_eq!(resp.status(), 200);
    pair.stop().await;
}
