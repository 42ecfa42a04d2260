//! End-to-end tests of the `bulkhead` binary: the `policy eval` JSONL contract, `policy
//! explain`, `policy check`, and the errors scripts rely on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bulkhead() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bulkhead");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

#[test]
fn eval_on_the_shop_example_gives_the_documented_decisions() {
    let dir = example();
    let out = bulkhead()
        .args(["policy", "eval", "-f"])
        .arg(&dir)
        .arg("--queries")
        .arg(dir.join("queries.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<(String, String, String, Value)> = records(&out)
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["decision"].as_str().unwrap().to_owned(),
                r["layer"].as_str().unwrap().to_owned(),
                r["policy"].clone(),
            )
        })
        .collect();
    let expect = [
        (
            "web-lists-orders",
            "allow",
            "authorization",
            "AuthorizationPolicy/api/orders",
        ),
        (
            "web-reads-catalog-item",
            "allow",
            "authorization",
            "AuthorizationPolicy/api/orders",
        ),
        (
            "web-deletes-order",
            "deny",
            "authorization",
            "AuthorizationPolicy/api/orders",
        ),
        (
            "web-sneaks-into-admin",
            "deny",
            "authorization",
            "AuthorizationPolicy/api/orders-admin-lockdown",
        ),
        (
            "web-to-postgres",
            "deny",
            "network",
            "NetworkPolicy/db/default-deny",
        ),
        (
            "orders-to-postgres",
            "allow",
            "authorization",
            "AuthorizationPolicy/db/postgres",
        ),
        (
            "payments-to-postgres",
            "deny",
            "network",
            "NetworkPolicy/db/default-deny",
        ),
        (
            "orders-charges-card",
            "allow",
            "authorization",
            "AuthorizationPolicy/api/payments",
        ),
        (
            "prometheus-scrapes-orders",
            "allow",
            "authorization",
            "AuthorizationPolicy/api/orders",
        ),
        ("payments-to-provider", "allow", "network", ""),
        (
            "payments-to-unknown-host",
            "deny",
            "network",
            "NetworkPolicy/api/api-egress",
        ),
        (
            "plaintext-scanner",
            "deny",
            "authentication",
            "PeerAuthentication/bulkhead-system/default",
        ),
    ];
    assert_eq!(got.len(), expect.len());
    for ((id, decision, layer, policy), want) in got.iter().zip(expect) {
        assert_eq!(
            (id.as_str(), decision.as_str(), layer.as_str()),
            (want.0, want.1, want.2)
        );
        if !want.3.is_empty() {
            assert_eq!(policy, want.3, "policy of {id}");
        }
    }
}

#[test]
fn eval_reads_stdin_and_echoes_ids_in_order() {
    let dir = example();
    let queries = concat!(
        "{\"id\":7,\"from\":\"api/orders-5d2a\",\"to\":\"db/postgres-0\",\"port\":5432}\n",
        "\n",
        "{\"id\":\"b\",\"from\":\"frontend/web-7f9c\",\"to\":\"db/postgres-0\",\"port\":5432,\"protocol\":\"UDP\"}\n"
    );
    let out = run_with_stdin(
        bulkhead()
            .args(["policy", "eval", "--queries", "-", "-f"])
            .arg(&dir),
        queries,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = records(&out);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["id"], 7);
    assert_eq!(r[0]["decision"], "allow");
    assert_eq!(r[1]["id"], "b");
    assert_eq!(r[1]["decision"], "deny");
    for rec in &r {
        for key in ["id", "decision", "layer", "policy", "rule", "reason"] {
            assert!(rec.get(key).is_some(), "record lacks `{key}`: {rec}");
        }
    }
}

#[test]
fn eval_rejects_a_bad_query_naming_the_line() {
    let dir = example();
    let queries = "{\"id\":1,\"from\":\"api/orders-5d2a\",\"to\":\"db/postgres-0\",\"port\":5432}\n{\"id\":2,\"from\":\"nope/missing\",\"to\":\"db/postgres-0\",\"port\":5432}\n";
    let out = run_with_stdin(
        bulkhead()
            .args(["policy", "eval", "--queries", "-", "-f"])
            .arg(&dir),
        queries,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("nope/missing"), "{err}");
}

#[test]
fn eval_rejects_invalid_resources_before_any_decision() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: a}\nspec:\n  podSelector: {}\n  ingres: []\n",
    )
    .unwrap();
    let out = run_with_stdin(
        bulkhead()
            .args(["policy", "eval", "--queries", "-", "-f"])
            .arg(&file),
        "",
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("ingres"), "{err}");
}

#[test]
fn explain_names_the_deciding_policy_and_every_considered_rule() {
    let dir = example();
    let out = bulkhead()
        .args(["policy", "explain", "-f"])
        .arg(&dir)
        .args([
            "--from",
            "frontend/web-7f9c",
            "--to",
            "api/orders-5d2a",
            "--port",
            "8080",
            "--method",
            "DELETE",
            "--path",
            "/api/orders/7",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: DENY"), "{text}");
    assert!(text.contains("AuthorizationPolicy/api/orders"), "{text}");
    assert!(text.contains("NetworkPolicy/api/api-ingress"), "{text}");
    assert!(text.contains("rule 0"), "{text}");

    let out = bulkhead()
        .args(["policy", "explain", "-o", "json", "-f"])
        .arg(&dir)
        .args([
            "--from",
            "frontend/web-7f9c",
            "--to",
            "db/postgres-0",
            "--port",
            "5432",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["layer"], "network");
    let policies = v["policies"].as_array().unwrap();
    assert!(
        policies
            .iter()
            .any(|p| p["policy"] == "NetworkPolicy/db/postgres-ingress" && p["matched"] == false)
    );
}

#[test]
fn check_reports_counts_and_exit_codes() {
    let out = bulkhead()
        .args(["policy", "check", "-f"])
        .arg(example())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("5 endpoints"), "{text}");
    assert!(text.contains("5 NetworkPolicies"), "{text}");

    let out = bulkhead()
        .args(["policy", "check", "-f", "/nonexistent/bulkhead-test-path"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bulkhead-test-path"));
}

/// Two firewalls selecting the same workload load (the first by name applies), and
/// `policy check` says so on stderr without failing.
#[test]
fn check_warns_about_overlapping_firewalls() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("second-waf.yaml");
    std::fs::write(
        &extra,
        "apiVersion: bulkhead.dev/v1alpha1\nkind: WebApplicationFirewall\n\
         metadata: {name: another, namespace: bookstore}\n\
         spec:\n  selector: {matchLabels: {app: frontend}}\n  mode: DetectionOnly\n",
    )
    .unwrap();
    let bookstore = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookstore");
    let out = bulkhead()
        .args(["policy", "check", "-f"])
        .arg(&bookstore)
        .arg("-f")
        .arg(&extra)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("2 WebApplicationFirewalls"), "{stdout}");
    assert!(
        stderr.contains("warning: Workload bookstore/frontend is selected by more than one WebApplicationFirewall")
            && stderr.contains("applies (first by name)"),
        "{stderr}"
    );
}

/// Callers of the inventory as its sidecar sees them under `bulkhead up`: at 127.0.0.1.
const CATALOG_AT_LOOPBACK: &str = r#"{"ip": "127.0.0.1", "namespace": "bookstore", "labels": {"app": "catalog"}, "principal": "cluster.local/ns/bookstore/sa/catalog"}"#;
const FRONTEND_AT_LOOPBACK: &str = r#"{"ip": "127.0.0.1", "namespace": "bookstore", "labels": {"app": "frontend"}, "principal": "cluster.local/ns/bookstore/sa/frontend"}"#;

/// `examples/bookstore` (what `bulkhead up examples/bookstore` runs) loads and compiles,
/// also with the walkthrough's live change, and decides the README's flows as documented.
#[test]
fn the_bookstore_example_loads_and_decides_the_documented_flows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = root.join("bookstore");
    let out = bulkhead()
        .args(["policy", "check", "-f"])
        .arg(&dir)
        .arg("-f")
        .arg(root.join("bookstore-changes"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("7 endpoints"), "{text}");
    assert!(text.contains("1 NetworkPolicies"), "{text}");
    assert!(text.contains("1 WebApplicationFirewalls"), "{text}");

    let curl = r#"{"ip": "127.0.0.1"}"#;
    let admin = r#"{"ip": "127.0.0.1", "namespace": "bookstore", "principal": "cluster.local/ns/bookstore/sa/admin"}"#;
    let http = |method: &str, path: &str| format!(r#"{{"method": "{method}", "path": "{path}"}}"#);
    let queries = [
        (
            "curl-lists-books",
            curl,
            "bookstore/frontend",
            8080,
            http("GET", "/api/books"),
            "allow",
        ),
        (
            "curl-adds-a-book",
            curl,
            "bookstore/frontend",
            8080,
            http("POST", "/api/books"),
            "deny",
        ),
        (
            "admin-adds-a-book",
            admin,
            "bookstore/frontend",
            8080,
            http("POST", "/api/books"),
            "allow",
        ),
        (
            "curl-to-catalog",
            curl,
            "bookstore/catalog",
            9090,
            http("POST", "/bookstore.v1.Catalog/ListBooks"),
            "deny",
        ),
        (
            "frontend-to-catalog",
            r#""bookstore/frontend""#,
            "bookstore/catalog",
            9090,
            http("POST", "/bookstore.v1.Catalog/ListBooks"),
            "allow",
        ),
        (
            "reviews-to-ratings",
            r#""bookstore/reviews-v2""#,
            "bookstore/ratings-2",
            9080,
            http("GET", "/ratings/1"),
            "allow",
        ),
        (
            "frontend-to-ratings",
            r#""bookstore/frontend""#,
            "bookstore/ratings-1",
            9080,
            http("GET", "/ratings/1"),
            "deny",
        ),
        // On one host the inventory's sidecar sees every caller at 127.0.0.1 (what its
        // NetworkPolicy matches): the callers as it sees them.
        (
            "catalog-to-inventory",
            CATALOG_AT_LOOPBACK,
            "bookstore/inventory",
            7000,
            "null".to_owned(),
            "allow",
        ),
        (
            "frontend-to-inventory",
            FRONTEND_AT_LOOPBACK,
            "bookstore/inventory",
            7000,
            "null".to_owned(),
            "deny",
        ),
        (
            "inventory-other-port",
            CATALOG_AT_LOOPBACK,
            "bookstore/inventory",
            7001,
            "null".to_owned(),
            "deny",
        ),
    ];
    let input: String = queries
        .iter()
        .map(|(id, from, to, port, http, _)| {
            format!(
                r#"{{"id": "{id}", "from": {from}, "to": "{to}", "port": {port}, "http": {http}}}"#
            ) + "\n"
        })
        .collect();
    let out = run_with_stdin(
        bulkhead()
            .args(["policy", "eval", "--queries", "-", "-f"])
            .arg(&dir),
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    for ((id, .., expected), record) in queries.iter().zip(&records) {
        assert_eq!(record["id"], *id);
        assert_eq!(record["decision"], *expected, "{record}");
    }
    assert_eq!(
        records[1]["policy"],
        "AuthorizationPolicy/bookstore/deny-all"
    );
    assert_eq!(records[9]["layer"], "network", "{}", records[9]);
}
