//! Every class of error the engine and the query parser report, with the message a user sees.

use bulkhead_policy::query::{Query, QueryError};
use bulkhead_policy::{Engine, Options, PolicyError};
use bulkhead_resources::{AuthorizationPolicy, Pod, ResourceSet, Workload};
use serde_json::json;

fn resources() -> ResourceSet {
    let mut rs = ResourceSet::default();
    rs.pods.push(
        serde_json::from_value::<Pod>(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "x"},
            "status": {"podIP": "10.0.0.1"}
        }))
        .unwrap(),
    );
    rs
}

fn engine() -> Engine {
    Engine::compile(&resources(), Options::default()).unwrap()
}

fn query_error(q: serde_json::Value) -> String {
    let engine = engine();
    match Query::from_value(q) {
        Err(e) => e.to_string(),
        Ok(q) => q.request(&engine).map(|_| ()).unwrap_err().to_string(),
    }
}

#[test]
fn a_pod_and_a_workload_with_one_name_are_refused() {
    let mut rs = resources();
    rs.workloads.push(
        serde_json::from_value::<Workload>(json!({
            "apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": "a", "namespace": "x"}
        }))
        .unwrap(),
    );
    let err = Engine::compile(&rs, Options::default()).unwrap_err();
    assert!(matches!(err, PolicyError::DuplicateEndpoint(_)));
    assert!(
        err.to_string()
            .contains("`x/a` names both a Pod and a Workload"),
        "{err}"
    );
}

#[test]
fn custom_action_is_refused_by_the_engine_too() {
    let mut rs = resources();
    rs.authorization_policies.push(
        serde_json::from_value::<AuthorizationPolicy>(json!({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ext", "namespace": "x"},
            "spec": {"action": "CUSTOM", "provider": {"name": "opa"}}
        }))
        .unwrap(),
    );
    let err = Engine::compile(&rs, Options::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "AuthorizationPolicy/x/ext: action CUSTOM is not supported yet"
    );
}

#[test]
fn invalid_policy_values_name_the_policy_and_field() {
    let mut rs = resources();
    rs.authorization_policies.push(
        serde_json::from_value::<AuthorizationPolicy>(json!({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "p", "namespace": "x"},
            "spec": {"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}
        }))
        .unwrap(),
    );
    let err = Engine::compile(&rs, Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("AuthorizationPolicy/x/p: ports:"), "{err}");
    assert!(err.contains("`http` is not a port number 1-65535"), "{err}");
}

#[test]
fn query_errors_say_what_was_expected() {
    let cases = [
        (json!("not an object"), "invalid query"),
        (json!({"from": "x/a", "to": "x/a"}), "missing field `port`"),
        (
            json!({"from": "x/a", "to": "x/a", "port": 0}),
            "`port`: expected a port number 1-65535",
        ),
        (
            json!({"from": "x/a", "to": "x/a", "port": 70000}),
            "invalid query",
        ),
        (
            json!({"from": "x/a", "to": "x/a", "port": 80, "protocol": "ICMP"}),
            "unknown variant `ICMP`",
        ),
        (
            json!({"from": "xa", "to": "x/a", "port": 80}),
            "`from`: expected \"namespace/name\", got \"xa\"",
        ),
        (
            json!({"from": 5, "to": "x/a", "port": 80}),
            "`from`: expected \"namespace/name\" or an object",
        ),
        (
            json!({"from": {"ip": "nope"}, "to": "x/a", "port": 80}),
            "`from`: invalid IP address syntax",
        ),
        (
            json!({"from": {"ipp": "1.2.3.4"}, "to": "x/a", "port": 80}),
            "unknown field `ipp`",
        ),
        (
            json!({"from": "x/a", "to": {"namespace": "x"}, "port": 80}),
            "`to`: a raw destination needs an `ip`",
        ),
        (
            json!({"from": "x/a", "to": "x/a", "port": 80, "colour": 1}),
            "unknown field `colour`",
        ),
        (
            json!({"from": "x/a", "to": "x/a", "port": 80, "jwt": {"aud": 3}}),
            "`jwt.aud`: expected a string or a list of strings",
        ),
        (
            json!({"from": "x/a", "to": "y/missing", "port": 80}),
            "`to`: no Pod or Workload named `y/missing`",
        ),
    ];
    for (q, want) in cases {
        let err = query_error(q.clone());
        assert!(
            err.contains(want),
            "query {q}: expected an error containing {want:?}, got {err:?}"
        );
    }
}

#[test]
fn query_error_variants_are_distinguishable() {
    assert!(matches!(Query::parse("{"), Err(QueryError::Json(_))));
    let q = Query::parse(r#"{"from":"a/b","to":"a/b","port":80}"#).unwrap();
    assert!(matches!(
        q.request(&engine()),
        Err(QueryError::UnknownEndpoint { field: "from", .. })
    ));
}
