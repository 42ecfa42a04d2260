//! gRPC through two sidecars with a real tonic client and server: client → A
//! (outbound) → mTLS → B (inbound) → the `bulkhead.test.Echo` service of
//! `bulkhead-test-grpc`. Every scenario runs twice: with both ports declared `grpc`
//! (`grpc_port::*`) and declared `auto`, so the sidecars detect HTTP/2 (`auto_port::*`).

mod support;

use std::future::Future;
use std::time::Duration;

use bulkhead_proxy::config::AppProtocol;
use bulkhead_test_grpc::{
    self as echo, CountRequest, EchoClient, EchoReply, EchoRequest, TestServer,
};
use support::{Pair, PairSpec};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{BinaryMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// An upper bound on any one step; steps are awaited, never slept for.
const STEP: Duration = Duration::from_secs(20);

/// The identity sidecar B passes to the app for calls from sidecar A.
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";

const DENY_CHAT: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-chat, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/bulkhead.test.Echo/Chat"]}}]}]
"#;

/// Awaits `fut`, failing the test if it takes longer than [`STEP`].
async fn step<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step finished in time")
}

/// The Echo server behind a pair of sidecars, and a client in front of them.
struct Fixture {
    server: TestServer,
    pair: Pair,
    client: EchoClient<Channel>,
}

impl Fixture {
    async fn start(protocol: AppProtocol, policies: &str) -> Fixture {
        support::trace();
        let server = TestServer::start().await.unwrap();
        let mut spec = PairSpec::new(server.addr());
        spec.inbound = protocol;
        spec.outbound = protocol;
        spec.policies = policies;
        let pair = Pair::start(spec).await;
        let client = step(echo::connect(pair.client_addr(), "api.shop"))
            .await
            .unwrap();
        Fixture {
            server,
            pair,
            client,
        }
    }

    async fn stop(self) {
        drop(self.client);
        self.pair.stop().await;
        step(self.server.stop()).await.unwrap();
    }
}

fn say(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        fail_with: 0,
    }
}

fn fail(code: Code, message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        fail_with: code as i32,
    }
}

/// Checks the header metadata the Echo service puts on every response.
fn assert_served_by(md: &MetadataMap) {
    assert_eq!(md.get(echo::SERVED_BY).unwrap(), echo::SERVED_BY_VALUE);
    let tag = md.get_bin(echo::TAG_BIN).expect("binary metadata arrived");
    assert_eq!(tag.to_bytes().unwrap(), echo::TAG_BIN_VALUE);
}

/// Checks a status the Echo service failed with: code, message, details and metadata.
fn assert_failure(status: &Status, code: Code, message: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
    assert_eq!(status.details(), echo::DETAILS, "{status:?}");
    assert_eq!(
        status.metadata().get(echo::DETAIL).unwrap(),
        echo::DETAIL_VALUE
    );
}

/// Runs each scenario as `grpc_port::<name>` and `auto_port::<name>`.
macro_rules! on_both_ports {
    ($($scenario:ident),* $(,)?) => {
        mod grpc_port {
            use super::*;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(AppProtocol::Grpc).await;
            })*
        }
        mod auto_port {
            use super::*;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(AppProtocol::Auto).await;
            })*
        }
    };
}

on_both_ports!(
    unary_with_metadata,
    server_streaming,
    bidirectional_streaming_in_lockstep,
    error_status_in_trailers,
    error_status_trailers_only,
    authorization_deny_on_grpc_path,
);

/// Unary calls on one channel; request and response metadata (ASCII and binary) arrive
/// intact, and the app sees the verified peer identity, not the one the client forged.
async fn unary_with_metadata(protocol: AppProtocol) {
    let mut f = Fixture::start(protocol, "").await;
    for i in 0..3 {
        let mut req = Request::new(say(&format!("hello-{i}")));
        let md = req.metadata_mut();
        md.insert("x-echo-ping", format!("ping-{i}").parse().unwrap());
        md.insert_bin(
            "x-echo-blob-bin",
            BinaryMetadataValue::from_bytes(b"\x00\xffz"),
        );
        md.insert(
            "x-bulkhead-peer-identity",
            "spiffe://cluster.local/ns/evil/sa/mallory".parse().unwrap(),
        );
        let resp = step(f.client.echo(req)).await.unwrap();
        assert_served_by(resp.metadata());
        let reply = resp.into_inner();
        assert_eq!(reply.message, format!("hello-{i}"));
        let seen = |k: &str| reply.metadata.get(k).map(|v| String::from_utf8_lossy(v));
        assert_eq!(seen("x-echo-ping").unwrap(), format!("ping-{i}"));
        assert_eq!(reply.metadata["x-echo-blob-bin"], b"\x00\xffz");
        assert_eq!(seen("x-bulkhead-peer-identity").unwrap(), WEB);
        assert_eq!(seen("x-request-id").unwrap().len(), 36);
    }
    let line = f
        .pair
        .b
        .wait_for_log(|l| l["path"] == "/bulkhead.test.Echo/Echo" && l["direction"] == "inbound")
        .await;
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["source"], WEB);
    assert_eq!(line["status"], 200);
    assert_eq!(f.server.calls(), 3);
    f.stop().await;
}

/// A server stream of N messages arrives whole and in order, then OK in trailers.
async fn server_streaming(protocol: AppProtocol) {
    const N: u32 = 500;
    let mut f = Fixture::start(protocol, "").await;
    let req = CountRequest {
        count: N,
        fail_with: 0,
        message: "tick".into(),
    };
    let resp = step(f.client.count(req)).await.unwrap();
    assert_served_by(resp.metadata());
    let mut stream = resp.into_inner();
    for seq in 1..=N {
        let reply = step(stream.message()).await.unwrap().expect("a reply");
        assert_eq!((reply.seq, reply.message.as_str()), (seq, "tick"));
    }
    assert_eq!(step(stream.message()).await.unwrap(), None);
    let trailers = step(stream.trailers()).await.unwrap().expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
    f.stop().await;
}

/// Each message is answered before the next is sent: neither sidecar holds the request
/// stream back until it ends, nor a response message until the call ends.
async fn bidirectional_streaming_in_lockstep(protocol: AppProtocol) {
    const ROUNDS: u32 = 20;
    let mut f = Fixture::start(protocol, "").await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(say("round-1")).await.unwrap();
    let resp = step(f.client.chat(ReceiverStream::new(rx))).await.unwrap();
    assert_served_by(resp.metadata());
    let mut replies = resp.into_inner();
    for round in 1..=ROUNDS {
        let reply = step(replies.message()).await.unwrap().expect("a reply");
        assert_eq!(
            reply,
            EchoReply {
                message: format!("round-{round}"),
                seq: round,
                ..EchoReply::default()
            }
        );
        if round < ROUNDS {
            tx.send(say(&format!("round-{}", round + 1))).await.unwrap();
        }
    }
    drop(tx); // half-close: the server ends the call with OK
    assert_eq!(step(replies.message()).await.unwrap(), None);
    let trailers = step(replies.trailers()).await.unwrap().expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
    f.stop().await;
}

/// A status sent after data, in real HTTP/2 trailers, arrives intact: code, message
/// (percent-encoded on the wire), binary details and custom trailer metadata.
async fn error_status_in_trailers(protocol: AppProtocol) {
    const MESSAGE: &str = "no such echo: ünïcode, 100% sure";
    let mut f = Fixture::start(protocol, "").await;
    let req = CountRequest {
        count: 3,
        fail_with: Code::NotFound as i32,
        message: MESSAGE.into(),
    };
    let resp = step(f.client.count(req)).await.unwrap();
    assert_served_by(resp.metadata());
    let mut stream = resp.into_inner();
    for seq in 1..=3 {
        let reply = step(stream.message()).await.unwrap().expect("a reply");
        assert_eq!(reply.seq, seq);
    }
    let status = step(stream.message()).await.unwrap_err();
    assert_failure(&status, Code::NotFound, MESSAGE);

    // The same mid-stream in a bidirectional call.
    let (tx, rx) = mpsc::channel(2);
    tx.send(say("first")).await.unwrap();
    tx.send(fail(Code::FailedPrecondition, "stop here"))
        .await
        .unwrap();
    let mut replies = step(f.client.chat(ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    let reply = step(replies.message()).await.unwrap().expect("a reply");
    assert_eq!(reply.message, "first");
    let status = step(replies.message()).await.unwrap_err();
    assert_failure(&status, Code::FailedPrecondition, "stop here");
    f.stop().await;
}

/// A unary error is a trailers-only response (the status in the only HEADERS frame);
/// it arrives intact too.
async fn error_status_trailers_only(protocol: AppProtocol) {
    let mut f = Fixture::start(protocol, "").await;
    let status = step(f.client.echo(fail(Code::NotFound, "no such echo")))
        .await
        .unwrap_err();
    assert_failure(&status, Code::NotFound, "no such echo");
    // The channel is still usable.
    let reply = step(f.client.echo(say("after"))).await.unwrap();
    assert_eq!(reply.into_inner().message, "after");
    f.stop().await;
}

/// A DENY on the gRPC method's path refuses that method only; the call never reaches the
/// app and B's access log names the policy.
///
/// The sidecar answers a denied gRPC call the way gRPC clients expect: a trailers-only
/// response (HTTP 200, `grpc-status: 7` PERMISSION_DENIED, the layer and request id in
/// `grpc-message`), so every client library reports PERMISSION_DENIED.
async fn authorization_deny_on_grpc_path(protocol: AppProtocol) {
    let mut f = Fixture::start(protocol, DENY_CHAT).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(say("let me in")).await.unwrap();
    // A trailers-only response: the call fails before any message.
    let status = step(f.client.chat(ReceiverStream::new(rx)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("access denied by authorization policy"),
        "{status:?}"
    );
    assert!(status.message().contains("request id:"), "{status:?}");
    // Other methods on the same channel still pass.
    let reply = step(f.client.echo(say("allowed"))).await.unwrap();
    assert_eq!(reply.into_inner().message, "allowed");
    assert_eq!(f.server.calls(), 1, "only the allowed call reached the app");
    let line = f
        .pair
        .b
        .wait_for_log(|l| l["path"] == "/bulkhead.test.Echo/Chat")
        .await;
    assert_eq!(line["decision"], "deny");
    assert_eq!(line["layer"], "authorization");
    assert_eq!(line["policy"], "AuthorizationPolicy/shop/deny-chat");
    assert_eq!(line["status"], 200, "gRPC carries the deny in grpc-status");
    f.stop().await;
}
