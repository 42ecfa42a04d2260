//! The web application firewall in a real sidecar pair (client → A → mTLS → B with the
//! firewall → app), with the embedded OWASP CRS: blocking, detection only, off,
//! exclusions, request bodies and their limit, response inspection, the access log's
//! `waf` object and the `bulkhead_waf_*` metrics.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_proxy::waf::Waf;
use bulkhead_resources::{RuleIdSpec, WafExclusionSpec, WafMode, WafSpec};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use support::apps::{TestBody, body_string, full, get, h1_client};
use support::{Pair, PairSpec};
use tokio::net::TcpListener;

const SQLI: &str = "/?id=1%27%20OR%201=1--";
const MYSQL_ERROR: &str = "<html><body>You have an error in your SQL syntax; check the manual \
    that corresponds to your MySQL server version</body></html>";

/// An app that counts the requests reaching it: `/leak` answers an HTML page leaking a
/// MySQL error, anything else reads the body and answers how many bytes it got.
struct App {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

async fn start_app() -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(answer(req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    App { addr, requests }
}

async fn answer(req: Request<Incoming>) -> Response<TestBody> {
    if req.uri().path() == "/leak" {
        return Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(full(MYSQL_ERROR))
            .unwrap();
    }
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes().len());
    Response::builder()
        .header("content-type", "text/plain")
        .body(full(format!("got {} bytes", bytes.unwrap_or(0))))
        .unwrap()
}

fn firewall(spec: WafSpec) -> Arc<Waf> {
    Waf::build("WebApplicationFirewall/shop/api".into(), spec, None).unwrap()
}

async fn pair_with(app: &App, spec: Option<WafSpec>) -> Pair {
    let pair = Pair::start(PairSpec::new(app.addr)).await;
    pair.set_waf(spec.map(firewall));
    pair
}

fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<TestBody> {
    Request::post(path)
        .header("host", "api.shop")
        .header("content-type", content_type)
        .body(full(body.into()))
        .unwrap()
}

/// Sends `req` through the pair with a fresh request id; the status, the request id and
/// the body. Refusals must echo the id.
async fn send(pair: &Pair, mut req: Request<TestBody>) -> (u16, String, String) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("waf-test-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    req.headers_mut()
        .insert("x-request-id", id.parse().unwrap());
    let mut client = h1_client(pair.client_addr()).await;
    let resp = client.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    if status >= 400 {
        assert_eq!(resp.headers()["x-request-id"], id.as_str());
    }
    (status, id, body_string(resp).await)
}

async fn line(pair: &Pair, id: &str) -> Value {
    pair.b.wait_for_log(|l| l["request_id"] == id).await
}

fn rule_ids(line: &Value) -> Vec<u64> {
    let matches = line["waf"]["matches"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    matches.iter().filter_map(|m| m["id"].as_u64()).collect()
}

fn metric(pair: &Pair, series: &str) -> f64 {
    let text = pair.b.metrics.encode();
    let found = text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
    found.map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn blocking_refuses_sql_injection_with_the_request_id_and_logs_why() {
    let app = start_app().await;
    let pair = pair_with(&app, Some(WafSpec::with_mode(WafMode::Blocking))).await;
    let (status, id, body) = send(&pair, get(SQLI)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&id) && body.contains("web application firewall"),
        "{body}"
    );
    assert_eq!(
        app.requests.load(Ordering::Relaxed),
        0,
        "the app never saw it"
    );
    let line = line(&pair, &id).await;
    assert_eq!(line["decision"], "deny", "{line}");
    assert_eq!(line["layer"], "waf");
    assert_eq!(line["policy"], "WebApplicationFirewall/shop/api");
    assert_eq!(line["status"], 403);
    let waf = &line["waf"];
    assert_eq!(
        (&waf["action"], &waf["mode"]),
        (&"block".into(), &"Blocking".into())
    );
    assert_eq!(waf["rule"], 949110, "{waf}");
    assert!(waf["inbound_score"].as_i64().unwrap() >= 5, "{waf}");
    assert!(rule_ids(&line).contains(&942100), "{waf}");
    let sqli = waf["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 942100);
    assert_eq!(sqli.unwrap()["var"], "ARGS:id", "{waf}");
    assert_eq!(
        metric(
            &pair,
            r#"bulkhead_waf_requests_total{mode="blocking",action="block"}"#
        ),
        1.0
    );
    assert!(metric(&pair, r#"bulkhead_waf_rule_matches_total{family="942"}"#) >= 1.0);
    assert_eq!(metric(&pair, "bulkhead_waf_inspection_seconds_count"), 1.0);
    // A benign request passes untouched and leaves no `waf` object.
    let (status, id, body) = send(&pair, get("/?id=42")).await;
    assert_eq!((status, body.as_str()), (200, "got 0 bytes"));
    assert!(line_waf_is_null(&pair, &id).await);
    assert_eq!(
        metric(
            &pair,
            r#"bulkhead_waf_requests_total{mode="blocking",action="pass"}"#
        ),
        1.0
    );
    pair.stop().await;
}

async fn line_waf_is_null(pair: &Pair, id: &str) -> bool {
    let line = line(pair, id).await;
    assert_eq!(line["decision"], "allow", "{line}");
    line["waf"].is_null()
}

#[tokio::test]
async fn detection_only_passes_and_logs_what_it_would_have_blocked() {
    let app = start_app().await;
    let pair = pair_with(&app, Some(WafSpec::with_mode(WafMode::DetectionOnly))).await;
    let (status, id, _) = send(&pair, get(SQLI)).await;
    assert_eq!(status, 200);
    assert_eq!(app.requests.load(Ordering::Relaxed), 1);
    let line = line(&pair, &id).await;
    assert_eq!(line["decision"], "allow", "{line}");
    assert_eq!(line["waf"]["action"], "detect", "{line}");
    assert_eq!(line["waf"]["rule"], 949110);
    assert!(line["waf"]["status"].is_null());
    assert!(rule_ids(&line).contains(&942100));
    let series = r#"bulkhead_waf_requests_total{mode="detection_only",action="detect"}"#;
    assert_eq!(metric(&pair, series), 1.0);
    pair.stop().await;
}

#[tokio::test]
async fn off_leaves_requests_untouched() {
    let app = start_app().await;
    let pair = pair_with(&app, Some(WafSpec::with_mode(WafMode::Off))).await;
    let (status, id, _) = send(&pair, get(SQLI)).await;
    assert_eq!(status, 200);
    assert!(line_waf_is_null(&pair, &id).await);
    assert!(
        !pair
            .b
            .metrics
            .encode()
            .contains("bulkhead_waf_requests_total{mode=\"blocking\",action=\"pass\"} 1")
    );
    pair.stop().await;
}

#[tokio::test]
async fn an_exclusion_lets_a_path_through_and_only_that_path() {
    let app = start_app().await;
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    spec.exclusions = vec![WafExclusionSpec {
        rule_ids: vec![RuleIdSpec::Range(942000, 942999)],
        paths: vec!["/search".into()],
        targets: Vec::new(),
    }];
    let pair = pair_with(&app, Some(spec)).await;
    let (status, id, _) = send(&pair, get("/search?id=1%27%20OR%201=1--")).await;
    assert_eq!(status, 200, "{}", line(&pair, &id).await);
    let (status, _, _) = send(&pair, get("/search/deeper?id=1%27%20OR%201=1--")).await;
    assert_eq!(status, 200);
    // Neither a sibling path nor a path escaping the prefix with `..` is excluded.
    let (status, _, _) = send(&pair, get("/searches?id=1%27%20OR%201=1--")).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(&pair, get("/search/%2e%2e/admin?id=1%27%20OR%201=1--")).await;
    assert_eq!(status, 403);
    pair.stop().await;
}

#[tokio::test]
async fn request_bodies_are_inspected_up_to_the_limit() {
    let app = start_app().await;
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    spec.request_body_limit_bytes = Some(1024);
    let pair = pair_with(&app, Some(spec.clone())).await;
    let form = "application/x-www-form-urlencoded";
    let (status, id, _) = send(&pair, post("/login", form, "user=bob&password=1' OR 1=1--")).await;
    assert_eq!(status, 403);
    // The matched password never reaches the log.
    let logged = line(&pair, &id).await;
    let text = logged.to_string();
    assert!(
        !text.contains("1' OR 1=1") && !text.contains("1=1--"),
        "{text}"
    );
    assert!(
        text.contains("ARGS:password") && text.contains("[redacted]"),
        "{text}"
    );
    let (status, _, body) = send(&pair, post("/login", form, "user=bob&password=hunter2")).await;
    assert_eq!((status, body.as_str()), (200, "got 25 bytes"));
    let big = "a=".to_owned() + &"x".repeat(2000);
    let (status, id, body) = send(&pair, post("/upload", form, big.clone())).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(line(&pair, &id).await["waf"]["action"], "block");
    pair.stop().await;
    // Detection only inspects the first part and passes the whole body on.
    let app = start_app().await;
    spec.mode = WafMode::DetectionOnly;
    let pair = pair_with(&app, Some(spec)).await;
    let (status, _, body) = send(&pair, post("/upload", form, big)).await;
    assert_eq!((status, body.as_str()), (200, "got 2002 bytes"));
    pair.stop().await;
}

#[tokio::test]
async fn responses_are_inspected_when_asked_to() {
    let app = start_app().await;
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    let pair = pair_with(&app, Some(spec.clone())).await;
    let (status, _, body) = send(&pair, get("/leak")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, MYSQL_ERROR),
        "not inspected by default"
    );
    spec.response_inspection = Some(true);
    pair.set_waf(Some(firewall(spec)));
    let (status, id, body) = send(&pair, get("/leak")).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("MySQL"));
    let line = line(&pair, &id).await;
    assert!(rule_ids(&line).contains(&951230), "{line}");
    assert_eq!(line["waf"]["rule"], 959100, "{line}");
    assert!(line["waf"]["outbound_score"].as_i64().unwrap() >= 4);
    let (status, _, _) = send(&pair, get("/fine")).await;
    assert_eq!(status, 200);
    pair.stop().await;
}

/// gRPC calls stream through the firewall (their bodies are not held back, even with
/// response inspection on), and a refused call is answered in gRPC's terms.
#[tokio::test]
async fn grpc_streams_pass_unbuffered_and_refusals_are_grpc_statuses() {
    use bulkhead_proxy::config::AppProtocol;
    use http_body_util::channel::Channel;
    use support::apps::{h2_client, http_app};

    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let app = http_app().await;
    let mut spec = PairSpec::new(app.addr);
    spec.inbound = AppProtocol::Grpc;
    spec.outbound = AppProtocol::Grpc;
    let pair = Pair::start(spec).await;
    let mut waf = WafSpec::with_mode(WafMode::Blocking);
    waf.response_inspection = Some(true);
    pair.set_waf(Some(firewall(waf)));
    let mut client = h2_client(pair.client_addr()).await;
    let call = |path: &str, body| {
        Request::post(format!("http://api.shop{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(body)
            .unwrap()
    };
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(1);
    let resp_fut = client.send_request(call("/stream", body.boxed()));
    tx.send_data(Bytes::from_static(b"message-1"))
        .await
        .unwrap();
    let mut resp = resp_fut.await.unwrap();
    assert_eq!(resp.status(), 200);
    // Each message comes back before the next is sent: nothing waits for the whole body.
    for next in ["message-2", "message-3"] {
        let frame = resp.body_mut().frame().await.unwrap().unwrap();
        assert!(frame.data_ref().is_some_and(|d| d.starts_with(b"message-")));
        tx.send_data(Bytes::from(next)).await.unwrap();
    }
    drop(tx);
    while let Some(frame) = resp.body_mut().frame().await {
        frame.unwrap();
    }
    let refused = client
        .send_request(call("/stream?id=1%27%20OR%201=1--", full(Bytes::new())))
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        200,
        "gRPC reads the outcome from grpc-status"
    );
    assert_eq!(refused.headers()["grpc-status"], "7");
    let message = refused.headers()["grpc-message"].to_str().unwrap();
    assert!(message.contains("web application firewall"), "{message}");
    pair.stop().await;
}

/// CRS allows GET, HEAD, POST and OPTIONS unless told otherwise (rule 911100).
#[tokio::test]
async fn allowed_methods_widen_what_crs_accepts() {
    let app = start_app().await;
    let delete = || {
        Request::delete("/orders/1")
            .header("host", "api.shop")
            .body(full(Bytes::new()))
            .unwrap()
    };
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    let pair = pair_with(&app, Some(spec.clone())).await;
    let (status, id, _) = send(&pair, delete()).await;
    assert_eq!(status, 403);
    assert!(rule_ids(&line(&pair, &id).await).contains(&911100));
    spec.allowed_methods = Some(["GET", "POST", "DELETE"].map(String::from).to_vec());
    pair.set_waf(Some(firewall(spec)));
    let (status, _, _) = send(&pair, delete()).await;
    assert_eq!(status, 200);
    pair.stop().await;
}

/// A chunked body (no Content-Length) is framed by `Transfer-Encoding`, which the
/// firewall sees as the client sent it (rule 920180 stays quiet), whether the client is
/// a sidecar (HTTP/2) or a plain HTTP/1.1 client.
#[tokio::test]
async fn chunked_bodies_are_framing_not_findings() {
    use http_body_util::StreamBody;
    let app = start_app().await;
    let pair = pair_with(&app, Some(WafSpec::with_mode(WafMode::Blocking))).await;
    for target in [pair.client_addr(), pair.b.inbound[0]] {
        let chunks: Vec<
            Result<hyper::body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>,
        > = vec![Ok(hyper::body::Frame::data(Bytes::from_static(b"a=1&b=2")))];
        let body = StreamBody::new(tokio_stream::iter(chunks)).boxed();
        let req = Request::post("/form")
            .header("host", "api.shop")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-request-id", format!("chunked-{}", target.port()))
            .body(body)
            .unwrap();
        let mut client = h1_client(target).await;
        let resp = client.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(body_string(resp).await, "got 7 bytes");
        let line = line(&pair, &format!("chunked-{}", target.port())).await;
        assert!(line["waf"].is_null(), "{line}");
    }
    pair.stop().await;
}
