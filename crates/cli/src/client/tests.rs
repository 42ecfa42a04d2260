//! The client against a small in-process HTTPS server (hyper on 127.0.0.1:0, rcgen
//! certificates) that records each request and answers with canned bodies: request
//! construction, TLS verification, error decoding and exit codes, without a control plane.

use std::convert::Infallible;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use clap::Parser;
use http::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::remote::{RemoteCommand, execute};

const TOKEN: &str = "bht_test";

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: String,
    content_type: String,
    body: String,
}

type Reply = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

/// A running test server and the CA that signed its certificate.
struct TestServer {
    url: String,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A CA, and a leaf for `localhost` and 127.0.0.1 it signed.
fn certificates() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca.pem(), vec![leaf.der().clone()], key)
}

/// Starts a server on 127.0.0.1:0 that answers every request with `reply`.
async fn serve(reply: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> TestServer {
    let (ca_pem, chain, key) = certificates();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reply: Arc<Reply> = Arc::new(reply);
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, reply, record) = (acceptor.clone(), reply.clone(), record.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake; that is a test.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req| answer(req, reply.clone(), record.clone()));
                let _ = server_http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TestServer { url, ca_pem, seen }
}

async fn answer(
    req: Request<Incoming>,
    reply: Arc<Reply>,
    record: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name| {
        req.headers()
            .get(name)
            .map_or(String::new(), |v: &HeaderValue| {
                v.to_str().unwrap().to_owned()
            })
    };
    let mut seen = Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        authorization: header(AUTHORIZATION),
        content_type: header(CONTENT_TYPE),
        body: String::new(),
    };
    let body = req.into_body().collect().await.unwrap().to_bytes();
    seen.body = String::from_utf8(body.to_vec()).unwrap();
    // The API refuses every request without the right bearer token.
    let (status, body) = if seen.authorization == format!("Bearer {TOKEN}") {
        reply(&seen)
    } else {
        let error = json!({"error": {"status": 401, "reason": "Unauthenticated",
            "message": "unknown token"}});
        (401, error.to_string())
    };
    record.lock().unwrap().push(seen);
    let response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    Ok(response)
}

#[derive(Debug, Parser)]
struct TestCli {
    #[command(subcommand)]
    cmd: RemoteCommand,
}

/// Runs `bulkhead ARGS --server … --ca-file … --token …` against `server`: the exit code
/// (or the failure) and what it printed.
async fn run(
    server: &TestServer,
    dir: &Path,
    args: &[&str],
) -> (Result<ExitCode, Failure>, String) {
    run_as(server, dir, args, TOKEN, &server.ca_pem).await
}

async fn run_as(
    server: &TestServer,
    dir: &Path,
    args: &[&str],
    token: &str,
    ca_pem: &str,
) -> (Result<ExitCode, Failure>, String) {
    let ca = dir.join("ca.pem");
    fs::write(&ca, ca_pem).unwrap();
    let ca = ca.display().to_string();
    let conn = ["--server", &server.url, "--ca-file", &ca, "--token", token];
    let argv = std::iter::once("bulkhead")
        .chain(args.iter().copied())
        .chain(conn);
    let cli = TestCli::try_parse_from(argv).unwrap();
    let client = Client::new(&cli.cmd.conn().resolve_with(None).unwrap()).unwrap();
    let mut out = Vec::new();
    let result = execute(&client, &cli.cmd, &mut out).await.map_err(|e| {
        e.downcast::<Failure>()
            .expect("every client failure is a Failure")
    });
    (result, String::from_utf8(out).unwrap())
}

const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  \
    name: deny\n  namespace: shop\nspec:\n  podSelector: {}\n";

fn write_response(change: &str, diff: &str) -> String {
    json!({"revision": 7, "dryRun": false, "results": [{"kind": "NetworkPolicy",
        "namespace": "shop", "name": "deny", "change": change, "resourceVersion": 7,
        "diff": diff}]})
    .to_string()
}

#[tokio::test]
async fn get_sends_the_token_and_the_filters_and_prints_a_table() {
    let server = serve(|_| {
        let list = json!({"revision": 9, "items": [{"apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop",
            "resourceVersion": "4", "creationTimestamp": "2020-01-01T00:00:00Z"}}]});
        (200, list.to_string())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["get", "networkpolicies", "-n", "shop", "-l", "app=web"];
    let (result, out) = run(&server, dir.path(), &args).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.uri,
        "/api/v1/resources?kind=NetworkPolicy&namespace=shop&labelSelector=app%3Dweb"
    );
    assert_eq!(seen.authorization, "Bearer bht_test");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "KIND            NAMESPACE   NAME   RESOURCEVERSION   AGE"
    );
    assert!(lines[1].starts_with("NetworkPolicy   shop        deny   4                 "));
    // -o json of one NAME prints the object itself.
    let (_, out) = run(
        &server,
        dir.path(),
        &["get", "netpol", "deny", "-n", "shop", "-o", "json"],
    )
    .await;
    let object: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(object["metadata"]["name"], "deny");
    assert_eq!(
        server.requests()[1].uri,
        "/api/v1/resources/NetworkPolicy/deny?namespace=shop"
    );
}

#[tokio::test]
async fn apply_validates_locally_then_sends_one_yaml_batch() {
    let server = serve(|_| (200, write_response("created", ""))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    fs::write(&file, POLICY).unwrap();
    let file = file.display().to_string();
    let (result, out) = run(&server, dir.path(), &["apply", "-f", &file, "--dry-run"]).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(out, "NetworkPolicy/shop/deny created (resourceVersion 7)\n");
    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("POST", "/api/v1/apply?dryRun=true")
    );
    assert_eq!(seen.content_type, "application/yaml");
    assert_eq!(seen.body, format!("---\n{POLICY}"));
}

#[tokio::test]
async fn invalid_files_are_refused_before_anything_is_sent() {
    let server = serve(|_| (200, write_response("created", ""))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    fs::write(&file, POLICY.replace("podSelector", "podSelectr")).unwrap();
    let file = file.display().to_string();
    let (result, _) = run(&server, dir.path(), &["apply", "-f", &file]).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.exit, Exit::Refused);
    assert!(failure.details[0].contains("spec.podSelectr"), "{failure}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn diff_exits_1_with_differences_and_0_without() {
    let diff = "--- NetworkPolicy/shop/deny\n+++ NetworkPolicy/shop/deny\n@@ -1 +1 @@\n-a\n+b\n";
    let server = serve(move |seen| match seen.body.contains("deny") {
        true => (200, write_response("updated", diff)),
        false => (200, write_response("unchanged", "")),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("deny.yaml");
    fs::write(&changed, POLICY).unwrap();
    let same = dir.path().join("same.yaml");
    fs::write(&same, POLICY.replace("deny", "same")).unwrap();
    let (result, out) = run(
        &server,
        dir.path(),
        &["diff", "-f", &changed.display().to_string()],
    )
    .await;
    assert_eq!(result.unwrap(), ExitCode::from(1));
    assert_eq!(out, diff);
    assert_eq!(server.requests()[0].uri, "/api/v1/diff");
    let (result, out) = run(
        &server,
        dir.path(),
        &["diff", "-f", &same.display().to_string()],
    )
    .await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(out, "");
}

#[tokio::test]
async fn error_bodies_become_messages_details_and_exit_codes() {
    let server = serve(|seen| match seen.uri.as_str() {
        "/api/v1/proxies" => {
            let body = json!({"error": {"status": 409, "reason": "Conflict",
                "message": "stale resourceVersion", "details": ["NetworkPolicy/shop/a: 3 != 4",
                "NetworkPolicy/shop/b: 5 != 6"]}});
            (409, body.to_string())
        }
        "/api/v1/status" => (502, "<html>Bad Gateway</html>\n".to_owned()),
        _ => {
            let body = json!({"error": {"status": 403, "reason": "Forbidden",
                "message": "role viewer may not manage tokens"}});
            (403, body.to_string())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(&server, dir.path(), &["proxies"]).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.exit, Exit::Refused);
    assert_eq!(
        failure.to_string(),
        "stale resourceVersion\n  NetworkPolicy/shop/a: 3 != 4\n  NetworkPolicy/shop/b: 5 != 6"
    );
    let (result, _) = run(&server, dir.path(), &["token", "list"]).await;
    assert_eq!(result.unwrap_err().exit, Exit::Auth);
    let (result, _) = run_as(
        &server,
        dir.path(),
        &["proxies"],
        "bht_wrong",
        &server.ca_pem,
    )
    .await;
    let failure = result.unwrap_err();
    assert_eq!(
        (failure.exit, failure.message.as_str()),
        (Exit::Auth, "unknown token")
    );
    let client = Client::new(&Target {
        server: server.url.clone(),
        ca_pem: server.ca_pem.clone().into_bytes(),
        ca_origin: "ca.pem".into(),
        token: TOKEN.into(),
    })
    .unwrap();
    let failure = client
        .get::<serde_json::Value>("/api/v1/status")
        .await
        .unwrap_err();
    assert_eq!(failure.exit, Exit::Unavailable);
    assert_eq!(
        failure.to_string(),
        "the server answered 502 Bad Gateway\n  <html>Bad Gateway</html>"
    );
}

#[tokio::test]
async fn a_server_signed_by_another_ca_fails_tls_with_exit_5() {
    let server = serve(|_| (200, "{}".to_owned())).await;
    let (other_ca, _, _) = certificates();
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run_as(&server, dir.path(), &["proxies"], TOKEN, &other_ca).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.exit, Exit::Unavailable);
    let authority = server.url.trim_start_matches("https://");
    assert!(
        failure.message.starts_with(&format!(
            "TLS handshake with {authority} failed: invalid peer certificate"
        )),
        "{failure}"
    );
    assert!(
        failure.details[0].contains("is not trusted by"),
        "{failure}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_closed_port_fails_to_connect_with_exit_5() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let (ca_pem, _, _) = certificates();
    let client = Client::new(&Target {
        server: format!("https://{address}"),
        ca_pem: ca_pem.into_bytes(),
        ca_origin: "ca.pem".into(),
        token: TOKEN.into(),
    })
    .unwrap();
    let failure = client
        .get::<serde_json::Value>("/healthz")
        .await
        .unwrap_err();
    assert_eq!(failure.exit, Exit::Unavailable);
    assert!(
        failure
            .message
            .starts_with(&format!("cannot connect to {address}: ")),
        "{failure}"
    );
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked() {
    let server = serve(|seen| match (seen.method.as_str(), seen.uri.as_str()) {
        ("POST", "/api/v1/tokens") => {
            let body = json!({"token": {"id": "tok_1", "name": "ci", "role": "editor",
                "created": "2030-01-01T00:00:00Z"}, "secret": "bht_0123"});
            (201, body.to_string())
        }
        ("POST", "/api/v1/jointokens") => {
            let body = json!({"token": {"id": "jt_1", "identity":
                "spiffe://cluster.local/ns/shop/sa/web", "created": "2030-01-01T00:00:00Z",
                "expires": "2030-01-01T02:00:00Z", "uses": 0, "maxUses": 2}, "secret": "bhj_9"});
            (201, body.to_string())
        }
        ("DELETE", "/api/v1/tokens/tok_1") => (204, String::new()),
        _ => (
            404,
            json!({"error": {"status": 404, "reason": "NotFound",
            "message": "no such route"}})
            .to_string(),
        ),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let create = ["token", "create", "--name", "ci", "--role", "editor"];
    let (result, out) = run(&server, dir.path(), &create).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert!(out.contains("secret:  bht_0123\n"), "{out}");
    let body: serde_json::Value = serde_json::from_str(&server.requests()[0].body).unwrap();
    assert_eq!(body, json!({"name": "ci", "role": "editor"}));
    assert_eq!(server.requests()[0].content_type, "application/json");
    let join = [
        "token",
        "create",
        "--join",
        "--namespace",
        "shop",
        "--service-account",
        "web",
        "--ttl",
        "2h",
        "--uses",
        "2",
        "-o",
        "json",
    ];
    let (result, out) = run(&server, dir.path(), &join).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["secret"], "bhj_9");
    let body: serde_json::Value = serde_json::from_str(&server.requests()[1].body).unwrap();
    assert_eq!(
        body,
        json!({"namespace": "shop", "serviceAccount": "web", "ttlSeconds": 7200, "maxUses": 2})
    );
    let (result, out) = run(&server, dir.path(), &["token", "revoke", "tok_1"]).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(out, "revoked tok_1\n");
    let (result, _) = run(&server, dir.path(), &["token", "revoke", "tok_2"]).await;
    assert_eq!(result.unwrap_err().exit, Exit::Refused);
}

#[tokio::test]
async fn delete_by_name_and_status_use_their_routes() {
    let server = serve(|seen| match seen.method.as_str() {
        "DELETE" => (200, write_response("deleted", "")),
        _ => {
            let status = json!({"version": "0.1.0", "revision": 3, "objects": 2,
                "uptimeSeconds": 60, "trustDomain": "cluster.local",
                "caExpiry": "2099-01-01T00:00:00Z", "proxiesConnected": 1, "proxiesKnown": 1});
            (200, status.to_string())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["delete", "netpol", "deny", "-n", "shop", "--dry-run"];
    let (result, out) = run(&server, dir.path(), &args).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(out, "NetworkPolicy/shop/deny deleted (resourceVersion 7)\n");
    assert_eq!(
        server.requests()[0].uri,
        "/api/v1/resources/NetworkPolicy/deny?namespace=shop&dryRun=true"
    );
    // `control status` is not a RemoteCommand; call it as control.rs does.
    #[derive(Debug, Parser)]
    struct Status {
        #[command(flatten)]
        args: crate::status::StatusArgs,
    }
    let status = Status::try_parse_from(["status", "-o", "yaml"])
        .unwrap()
        .args;
    let client = Client::new(&Target {
        server: format!("{}/", server.url),
        ca_pem: server.ca_pem.clone().into_bytes(),
        ca_origin: "ca.pem".into(),
        token: TOKEN.into(),
    })
    .unwrap();
    let mut out = Vec::new();
    crate::status::run(&client, &status, &mut out)
        .await
        .unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("trustDomain: cluster.local\n")
    );
    assert_eq!(server.requests()[1].uri, "/api/v1/status");
}

#[test]
fn statuses_map_to_the_documented_exit_codes() {
    for (status, exit) in [
        (400, Exit::Refused),
        (404, Exit::Refused),
        (409, Exit::Refused),
        (410, Exit::Refused),
        (415, Exit::Refused),
        (401, Exit::Auth),
        (403, Exit::Auth),
        (500, Exit::Unavailable),
        (503, Exit::Unavailable),
        (302, Exit::Unavailable),
    ] {
        assert_eq!(exit_for_status(status), exit, "{status}");
    }
    let error = anyhow::Error::new(Failure::new(Exit::Auth, "no")).context("while listing");
    assert_eq!(exit_code(&error), ExitCode::from(4));
    assert_eq!(exit_code(&anyhow::anyhow!("other")), ExitCode::FAILURE);
    assert_eq!(ExitCode::from(Exit::Differences), ExitCode::from(1));
}

#[test]
fn server_urls_are_https_with_optional_port_and_prefix() {
    let e = Endpoint::parse("https://[::1]:9443/mesh/").unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.authority()),
        ("::1", 9443, "[::1]:9443")
    );
    assert_eq!(e.prefix, "/mesh");
    assert!(matches!(e.server_name, ServerName::IpAddress(_)));
    let e = Endpoint::parse("https://control.example").unwrap();
    assert_eq!((e.port, e.prefix.as_str()), (443, ""));
    assert!(matches!(e.server_name, ServerName::DnsName(_)));
    assert!(
        Endpoint::parse("http://127.0.0.1:15010")
            .unwrap_err()
            .contains("expected an https:// URL")
    );
    assert!(Endpoint::parse("https://h/?x=1").is_err());
    assert!(Endpoint::parse("not a url").is_err());
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
    assert_eq!(encode("env in (a,b)"), "env%20in%20%28a%2Cb%29");
    assert_eq!(encode("é/&="), "%C3%A9%2F%26%3D");
    assert_eq!(
        with_query("/p", &[("a", None), ("b", Some("1")), ("c", Some("2"))]),
        "/p?b=1&c=2"
    );
}

#[tokio::test]
async fn audit_prints_rows_with_their_diffs_and_delete_files_go_as_a_batch() {
    let server = serve(|seen| match seen.uri.as_str() {
        "/api/v1/delete" => (200, write_response("deleted", "")),
        _ => {
            let list = json!({"items": [
                {"seq": 6, "time": "2030-01-01T00:00:00Z", "actor": "token:ci",
                 "verb": "update", "object": "NetworkPolicy/shop/deny", "revision": 7,
                 "diff": "-a\n+b"},
                {"seq": 7, "time": "2030-01-01T00:01:00Z", "actor": "token:admin",
                 "verb": "token.create", "object": "tok_1", "revision": 0}]});
            (200, list.to_string())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["audit", "--since", "5", "--limit", "2", "--diff"];
    let (result, out) = run(&server, dir.path(), &args).await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(server.requests()[0].uri, "/api/v1/audit?since=5&limit=2");
    assert_eq!(
        out,
        "SEQ   TIME                   ACTOR         VERB           OBJECT                    REVISION\n\
         6     2030-01-01T00:00:00Z   token:ci      update         NetworkPolicy/shop/deny   7\n\
         -a\n+b\n\n\
         7     2030-01-01T00:01:00Z   token:admin   token.create   tok_1                     -\n"
    );
    let file = dir.path().join("policy.yaml");
    fs::write(&file, POLICY).unwrap();
    let (result, out) = run(
        &server,
        dir.path(),
        &["delete", "-f", &file.display().to_string()],
    )
    .await;
    assert_eq!(result.unwrap(), ExitCode::SUCCESS);
    assert_eq!(out, "NetworkPolicy/shop/deny deleted (resourceVersion 7)\n");
    let seen = &server.requests()[1];
    assert_eq!(
        (seen.method.as_str(), seen.body.as_str()),
        ("POST", &*format!("---\n{POLICY}"))
    );
}
