//! Property tests: the compiled engine agrees with straightforward reference readings of the
//! policy semantics, and the query parser never panics.

use bulkhead_policy::query::Query;
use bulkhead_policy::{Engine, Options};
use bulkhead_resources::{AuthorizationPolicy, LabelSelector, NetworkPolicy, Pod, ResourceSet};
use proptest::prelude::*;
use serde_json::json;

fn pod(ns: &str, name: &str, ip: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"serviceAccountName": name, "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"podIP": ip}
    }))
    .unwrap()
}

/// Reference reading of one Istio string pattern.
fn istio_match(pattern: &str, value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    if pattern == "*" {
        !v.is_empty()
    } else if let Some(p) = pattern.strip_suffix('*') {
        v.starts_with(p)
    } else if let Some(s) = pattern.strip_prefix('*') {
        v.ends_with(s)
    } else {
        v == pattern
    }
}

fn arb_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab]{1,3}",
        "[ab]{0,2}".prop_map(|s| format!("{s}*")),
        "[ab]{0,2}".prop_map(|s| format!("*{s}")),
        Just("*".to_owned()),
    ]
}

fn decide(resources: &ResourceSet, query: serde_json::Value) -> bool {
    let engine = Engine::compile(resources, Options::default()).unwrap();
    let q = Query::from_value(query).unwrap();
    engine.evaluate(&q.request(&engine).unwrap()).allowed
}

proptest! {
    /// An ALLOW rule with principals and methods matches exactly when some principal
    /// pattern matches the peer and some method pattern matches the method.
    #[test]
    fn allow_rule_matches_like_reference(
        principals in prop::collection::vec(arb_pattern(), 1..3),
        methods in prop::collection::vec(arb_pattern(), 1..3),
        peer in prop::option::of("[ab]{0,3}"),
        method in "[ab]{1,3}",
    ) {
        let ap: AuthorizationPolicy = serde_json::from_value(json!({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"rules": [{"from": [{"source": {"principals": principals}}],
                                "to": [{"operation": {"methods": methods}}]}]}
        })).unwrap();
        let mut rs = ResourceSet::default();
        rs.pods.push(pod("d", "server", "10.0.0.2", json!({})));
        rs.authorization_policies.push(ap);
        let mut from = json!({"ip": "10.9.9.9"});
        if let Some(p) = &peer {
            from["principal"] = json!(p);
        }
        let allowed = decide(&rs, json!({"from": from, "to": "d/server", "port": 8080,
                                        "http": {"method": method, "path": "/"}}));
        let expected = principals.iter().any(|p| istio_match(p, peer.as_deref()))
            && methods.iter().any(|m| istio_match(m, Some(&method)));
        prop_assert_eq!(allowed, expected);
    }

    /// An ingress rule with a podSelector admits exactly the same-namespace pods whose labels
    /// the selector matches.
    #[test]
    fn network_pod_selector_matches_like_reference(
        selector in prop::collection::btree_map("[ab]", "[xy]", 0..3),
        labels in prop::collection::btree_map("[ab]", "[xy]", 0..3),
        same_namespace in any::<bool>(),
    ) {
        let np: NetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "d"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": selector}}]}]}
        })).unwrap();
        let mut rs = ResourceSet::default();
        rs.pods.push(pod("d", "server", "10.0.0.2", json!({})));
        let src_ns = if same_namespace { "d" } else { "s" };
        rs.pods.push(pod(src_ns, "client", "10.0.0.3", json!(labels)));
        rs.network_policies.push(np);
        let allowed = decide(&rs, json!({"from": format!("{src_ns}/client"), "to": "d/server", "port": 8080}));
        let sel = LabelSelector { match_labels: selector, ..Default::default() };
        prop_assert_eq!(allowed, same_namespace && sel.matches(&labels));
    }

    /// The query parser returns an error, never panics, on arbitrary input.
    #[test]
    fn query_parser_never_panics(line in ".{0,200}") {
        let _ = Query::parse(&line);
    }

    /// Arbitrary JSON objects with the query's field names never panic the parser either.
    #[test]
    fn query_parser_total_on_json(
        port in any::<i64>(),
        from in prop_oneof![Just(json!("a/b")), Just(json!({"ip": "1.2.3.4"})), Just(json!(7)), Just(json!("x"))],
        protocol in prop_oneof![Just(json!("TCP")), Just(json!("udp")), Just(json!(1))],
    ) {
        let _ = Query::from_value(json!({"from": from, "to": "a/b", "port": port, "protocol": protocol}));
    }
}
