//! Property tests: selector matching against a naive reference, a loader that never panics,
//! generated valid policies that always load, and single wrong-typed fields that are always
//! reported at their own path.

use std::collections::BTreeMap;

use std::time::Duration;

use bulkhead_resources::duration;
use bulkhead_resources::{
    FieldPath, Format, LabelSelector, Labels, LoadError, Loader, Operator, Requirement,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};

fn operator() -> impl Strategy<Value = Operator> {
    select(vec![
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
    ])
}

/// Tiny alphabets, so that selectors and label sets often share keys and values.
fn small_labels() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map("[abc]", "[xy]", 0..4)
}

fn requirement() -> impl Strategy<Value = Requirement> {
    ("[abc]", operator(), prop::collection::vec("[xy]", 0..3)).prop_map(
        |(key, operator, values)| Requirement {
            key,
            operator,
            values,
        },
    )
}

/// The selector rules written out as plainly as possible.
fn naive_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    for (key, value) in &selector.match_labels {
        if labels.get(key) != Some(value) {
            return false;
        }
    }
    for req in &selector.match_expressions {
        let present = labels.contains_key(&req.key);
        let listed = present && req.values.contains(&labels[&req.key]);
        let ok = match req.operator {
            Operator::In => listed,
            Operator::NotIn => !listed,
            Operator::Exists => present,
            Operator::DoesNotExist => !present,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn load(text: &str, format: Format) -> Result<usize, LoadError> {
    let mut loader = Loader::new();
    loader.add_str(text, "generated.yaml", format)?;
    loader.finish().map(|set| set.len())
}

// ---- generated resources -------------------------------------------------------------

fn label_key() -> impl Strategy<Value = String> {
    "[a-z]{1,6}(\\.io/[a-z]{1,4})?"
}

fn label_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(label_key(), "[a-z0-9]{0,5}", 0..3)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

fn selector() -> impl Strategy<Value = Value> {
    let expression = (
        label_key(),
        operator(),
        prop::collection::vec("[a-z]{1,4}", 1..3),
    )
        .prop_map(|(key, op, values)| match op {
            Operator::In => json!({"key": key, "operator": "In", "values": values}),
            Operator::NotIn => json!({"key": key, "operator": "NotIn", "values": values}),
            Operator::Exists => json!({"key": key, "operator": "Exists"}),
            Operator::DoesNotExist => json!({"key": key, "operator": "DoesNotExist"}),
        });
    (label_map(), prop::collection::vec(expression, 0..3)).prop_map(|(labels, exprs)| {
        let mut m = Map::new();
        m.insert("matchLabels".into(), labels);
        if !exprs.is_empty() {
            m.insert("matchExpressions".into(), Value::Array(exprs));
        }
        Value::Object(m)
    })
}

fn ip_block() -> impl Strategy<Value = Value> {
    let v4 = (0u8..=255, prop::collection::vec(0u8..=255, 0..3)).prop_map(|(b, excepts)| {
        let except: Vec<String> = excepts.iter().map(|c| format!("10.{b}.{c}.0/24")).collect();
        json!({"cidr": format!("10.{b}.0.0/16"), "except": except})
    });
    let v6 = (0u16.., prop::collection::vec(0u16.., 0..2)).prop_map(|(x, excepts)| {
        let except: Vec<String> = excepts
            .iter()
            .map(|y| format!("fd00:{x:x}:{y:x}::/48"))
            .collect();
        json!({"cidr": format!("fd00:{x:x}::/32"), "except": except})
    });
    prop_oneof![v4, v6]
}

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        selector().prop_map(|s| json!({"podSelector": s})),
        selector().prop_map(|s| json!({"namespaceSelector": s})),
        (selector(), selector())
            .prop_map(|(p, n)| json!({"podSelector": p, "namespaceSelector": n})),
        ip_block().prop_map(|b| json!({"ipBlock": b})),
    ]
}

fn np_port() -> impl Strategy<Value = Value> {
    let protocol = prop::option::of(select(vec!["TCP", "UDP", "SCTP"]));
    let port = prop_oneof![
        Just(None),
        (1u16..=65535).prop_map(|p| Some(json!(p))),
        "[a-z]{1,8}".prop_map(|n| Some(json!(n))),
    ];
    (protocol, port, 0u16..100).prop_map(|(protocol, port, extra)| {
        let mut m = Map::new();
        if let Some(p) = protocol {
            m.insert("protocol".into(), json!(p));
        }
        if let Some(port) = port {
            if let Some(n) = port.as_u64().filter(|_| extra % 2 == 0) {
                m.insert("endPort".into(), json!((n + u64::from(extra)).min(65535)));
            }
            m.insert("port".into(), port);
        }
        Value::Object(m)
    })
}

fn np_rule(peers_key: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(peer(), 0..3),
        prop::collection::vec(np_port(), 0..3),
    )
        .prop_map(move |(peers, ports)| {
            let mut m = Map::new();
            if !peers.is_empty() {
                m.insert(peers_key.into(), Value::Array(peers));
            }
            if !ports.is_empty() {
                m.insert("ports".into(), Value::Array(ports));
            }
            Value::Object(m)
        })
}

fn metadata() -> impl Strategy<Value = Value> {
    ("[a-z]{1,8}", prop::option::of("[a-z]{1,8}"), label_map()).prop_map(|(name, ns, labels)| {
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        if let Some(ns) = ns {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("labels".into(), labels);
        Value::Object(m)
    })
}

fn network_policy() -> impl Strategy<Value = Value> {
    let types = prop::option::of(prop::sample::subsequence(vec!["Ingress", "Egress"], 1..=2));
    let ingress = prop::option::of(prop::collection::vec(np_rule("from"), 0..3));
    let egress = prop::option::of(prop::collection::vec(np_rule("to"), 0..3));
    (metadata(), selector(), types, ingress, egress).prop_map(|(meta, sel, types, ing, eg)| {
        let mut spec = Map::new();
        spec.insert("podSelector".into(), sel);
        if let Some(t) = types {
            spec.insert("policyTypes".into(), json!(t));
        }
        if let Some(i) = ing {
            spec.insert("ingress".into(), Value::Array(i));
        }
        if let Some(e) = eg {
            spec.insert("egress".into(), Value::Array(e));
        }
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": meta, "spec": spec})
    })
}

fn strings(pattern: &'static str) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(pattern, 1..3)
}

fn source() -> impl Strategy<Value = Value> {
    let ips = prop::collection::vec(
        prop_oneof![
            (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("192.168.{a}.{b}")),
            (0u8..=255, 8u8..=32).prop_map(|(a, p)| format!("172.{a}.0.0/{p}")),
            (0u16..).prop_map(|x| format!("fd00::{x:x}")),
        ],
        1..3,
    );
    (
        prop::option::of(strings("cluster\\.local/ns/[a-z]{1,4}/sa/[a-z]{1,4}")),
        prop::option::of(strings("[a-z]{1,6}")),
        prop::option::of(ips.clone()),
        prop::option::of(ips),
    )
        .prop_map(|(principals, namespaces, ip_blocks, remote)| {
            let mut m = Map::new();
            let fields = [
                ("principals", principals),
                ("notNamespaces", namespaces),
                ("ipBlocks", ip_blocks),
                ("notRemoteIpBlocks", remote),
            ];
            for (key, values) in fields {
                if let Some(v) = values {
                    m.insert(key.into(), json!(v));
                }
            }
            json!({"source": m})
        })
}

fn operation() -> impl Strategy<Value = Value> {
    let paths = strings("/[a-z]{1,5}(/\\{\\*\\})?(/\\{\\*\\*\\})?|/[a-z]{0,4}\\*");
    let ports = prop::collection::vec((1u16..=65535).prop_map(|p| p.to_string()), 1..3);
    (
        prop::option::of(select(vec!["GET", "POST", "DELETE"]).prop_map(|m| vec![m])),
        prop::option::of(paths),
        prop::option::of(ports),
        prop::option::of(strings("[a-z]{1,5}\\.example(:8080)?")),
    )
        .prop_map(|(methods, paths, ports, hosts)| {
            let mut m = Map::new();
            if let Some(v) = methods {
                m.insert("methods".into(), json!(v));
            }
            if let Some(v) = paths {
                m.insert("notPaths".into(), json!(v));
            }
            if let Some(v) = ports {
                m.insert("ports".into(), json!(v));
            }
            if let Some(v) = hosts {
                m.insert("hosts".into(), json!(v));
            }
            json!({"operation": m})
        })
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{1,5}"
            .prop_map(|h| json!({"key": format!("request.headers[x-{h}]"), "values": ["a*"]})),
        "[a-z]{1,5}".prop_map(
            |c| json!({"key": format!("request.auth.claims[{c}][sub]"), "notValues": ["b"]})
        ),
        (0u8..=255).prop_map(|a| json!({"key": "source.ip", "values": [format!("10.{a}.0.0/16")]})),
        (0u8..=255)
            .prop_map(|a| json!({"key": "destination.ip", "notValues": [format!("10.0.0.{a}")]})),
        (1u16..=65535).prop_map(|p| json!({"key": "destination.port", "values": [p.to_string()]})),
        Just(json!({"key": "connection.sni", "values": ["*.example"]})),
    ]
}

fn authorization_policy() -> impl Strategy<Value = Value> {
    let rule = (
        prop::collection::vec(source(), 0..3),
        prop::collection::vec(operation(), 0..3),
        prop::collection::vec(condition(), 0..3),
    )
        .prop_map(|(from, to, when)| {
            let mut m = Map::new();
            for (key, list) in [("from", from), ("to", to), ("when", when)] {
                if !list.is_empty() {
                    m.insert(key.into(), Value::Array(list));
                }
            }
            Value::Object(m)
        });
    let action = prop::option::of(select(vec!["ALLOW", "DENY", "AUDIT"]));
    let selector = prop::option::of(label_map().prop_map(|l| json!({"matchLabels": l})));
    let version = select(vec!["security.istio.io/v1", "security.istio.io/v1beta1"]);
    let rules = prop::collection::vec(rule, 0..3);
    (version, metadata(), selector, action, rules).prop_map(
        |(version, meta, sel, action, rules)| {
            let mut spec = Map::new();
            if let Some(s) = sel {
                spec.insert("selector".into(), s);
            }
            if let Some(a) = action {
                spec.insert("action".into(), json!(a));
            }
            spec.insert("rules".into(), Value::Array(rules));
            json!({"apiVersion": version, "kind": "AuthorizationPolicy",
               "metadata": meta, "spec": spec})
        },
    )
}

/// Every node below the root, with its path.
fn nodes(value: &Value, at: &FieldPath, out: &mut Vec<FieldPath>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = at.key(key);
                out.push(path.clone());
                nodes(child, &path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = at.index(i);
                out.push(path.clone());
                nodes(child, &path, out);
            }
        }
        _ => {}
    }
}

/// The node at `path`, mutably.
fn node_mut<'v>(mut value: &'v mut Value, path: &FieldPath) -> &'v mut Value {
    for segment in path.segments() {
        value = match segment {
            bulkhead_resources::field::Segment::Key(k) => value.get_mut(k.as_str()).unwrap(),
            bulkhead_resources::field::Segment::Index(i) => value.get_mut(*i).unwrap(),
        };
    }
    value
}

/// A value of the wrong type for whatever is at `node`: a string where a mapping or a
/// sequence belongs, a sequence where a scalar belongs.
fn wrong_type(node: &Value) -> Value {
    match node {
        Value::Object(_) | Value::Array(_) => json!("not-a-collection"),
        _ => json!([true]),
    }
}

fn resource() -> impl Strategy<Value = Value> {
    prop_oneof![network_policy(), authorization_policy()]
}

/// `cases` cases; failures are recorded next to this file (`properties.regressions`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn selector_matches_like_the_naive_reference(
        match_labels in prop::collection::btree_map("[abc]", "[xy]", 0..3),
        match_expressions in prop::collection::vec(requirement(), 0..3),
        labels in small_labels(),
    ) {
        let selector = LabelSelector { match_labels, match_expressions };
        prop_assert_eq!(selector.matches(&labels), naive_matches(&selector, &labels));
    }

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in any::<String>()) {
        for format in [Format::Yaml, Format::Json, Format::Auto] {
            let _ = load(&text, format);
        }
    }

    #[test]
    fn loader_never_panics_on_yaml_like_text(
        text in "(---\n|\\.\\.\\.\n|apiVersion: |kind: |metadata:|  name: |v1|Pod|List\n|items:\n|- |\\{|\\}|\\[|\\]|: |, |\n|  |&a |\\*a|!t |'|\"|#|<<: |8080|~)*"
    ) {
        for format in [Format::Yaml, Format::Json] {
            let _ = load(&text, format);
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn generated_valid_policies_load(docs in prop::collection::vec(resource(), 1..4)) {
        // Distinct names, so that the batch has no duplicates.
        let docs: Vec<Value> = docs.into_iter().enumerate().map(|(i, mut d)| {
            d["metadata"]["name"] = json!(format!("r{i}"));
            d
        }).collect();
        let yaml: Vec<String> = docs.iter().map(|d| serde_norway::to_string(d).unwrap()).collect();
        let text = yaml.join("---\n");
        let loaded = load(&text, Format::Yaml);
        prop_assert!(loaded.is_ok(), "{}\n{}", loaded.unwrap_err(), text);
        let json_text = serde_json::to_string_pretty(&Value::Array(docs)).unwrap();
        prop_assert!(load(&json_text, Format::Json).is_ok());
    }

    #[test]
    fn a_wrong_typed_field_is_reported_at_its_path(
        doc in resource(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut all = Vec::new();
        nodes(&doc, &FieldPath::root(), &mut all);
        let path = pick.get(&all).clone();
        let mut mutated = doc.clone();
        let node = node_mut(&mut mutated, &path);
        *node = wrong_type(node);
        let text = serde_norway::to_string(&mutated).unwrap();
        let err = load(&text, Format::Yaml).expect_err(&text);
        let first = &err.diagnostics()[0];
        prop_assert_eq!(first.field.as_ref(), Some(&path), "{}\n{}", err, text);
        prop_assert_eq!(first.document, Some(1));
        let lines = text.lines().count();
        prop_assert!(first.line.is_some_and(|l| (1..=lines).contains(&l)), "{}", err);
    }
}

#[test]
fn naive_reference_agrees_on_a_known_case() {
    let selector = LabelSelector {
        match_labels: BTreeMap::from([("a".into(), "x".into())]),
        match_expressions: vec![Requirement {
            key: "b".into(),
            operator: Operator::NotIn,
            values: vec!["y".into()],
        }],
    };
    let labels: Labels = BTreeMap::from([("a".into(), "x".into()), ("b".into(), "z".into())]);
    assert!(selector.matches(&labels) && naive_matches(&selector, &labels));
}

/// One Gateway API duration part: 1-5 digits and a unit, with its value in milliseconds.
fn duration_part() -> impl Strategy<Value = (String, u64)> {
    (
        "[0-9]{1,5}",
        select(vec![
            ("h", 3_600_000u64),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ]),
    )
        .prop_map(|(digits, (unit, scale))| {
            let value: u64 = digits.parse().unwrap();
            (format!("{digits}{unit}"), value * scale)
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// 1-4 parts of 1-5 digits each with a unit parse to the sum of the parts.
    #[test]
    fn durations_parse_to_the_sum_of_their_parts(parts in prop::collection::vec(duration_part(), 1..=4)) {
        let text: String = parts.iter().map(|(t, _)| t.as_str()).collect();
        let millis: u64 = parts.iter().map(|(_, ms)| ms).sum();
        prop_assert_eq!(duration::parse(&text), Ok(Duration::from_millis(millis)));
    }

    /// Formatting gives the canonical spelling, which parses back to the same value.
    #[test]
    fn durations_format_and_parse_back(millis in 0u64..99_999 * 3_600_000) {
        let d = Duration::from_millis(millis);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
    }

    /// Anything else is refused without panicking: more than four parts, more than five
    /// digits, fractions, signs, spaces, unknown units.
    #[test]
    fn malformed_durations_are_refused(text in "[0-9hms. +-]{0,24}") {
        let result = duration::parse(&text);
        let well_formed = {
            let mut rest = text.as_str();
            let mut parts = 0;
            let mut ok = !rest.is_empty();
            while ok && !rest.is_empty() {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                rest = &rest[digits..];
                let unit = ["ms", "h", "m", "s"].into_iter().find(|u| rest.starts_with(u));
                ok = (1..=5).contains(&digits) && unit.is_some();
                rest = &rest[unit.map_or(0, str::len)..];
                parts += 1;
            }
            ok && parts <= 4
        };
        prop_assert_eq!(result.is_ok(), well_formed, "{:?}", text);
    }
}
