//! Loader tests: documents, formats, Lists, locations, batches, namespaces, directories.

use super::*;
use crate::error::MAX_DIAGNOSTICS;
use crate::testutil::{Expect, check, diagnostics, load, network_policy, only};
use DiagnosticKind::{Duplicate, Schema, Syntax};

const POD_X: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\n";
const NS_X: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n";

#[test]
fn multi_document_yaml_counts_documents_and_skips_empty_ones() {
    // Leading comments belong to the first document; a comments-only document and an
    // empty one are counted (as YAML counts them) but skipped.
    let text = format!("# header\n---\n{NS_X}---\n# nothing here\n---\n---\n{POD_X}---\n");
    let set = load(&text, "multi.yaml").unwrap();
    assert_eq!(set.pods.len(), 1);
    assert_eq!(set.namespaces.len(), 1);

    let bad = text.replace("  name: a\n", "  name: a\n  bogus: 1\n");
    let d = only(&bad, "multi.yaml");
    check(
        &d,
        Expect {
            kind: Schema,
            file: "multi.yaml",
            document: 4,
            line: 15,
            object: Some("Pod/x/a"),
            field: "metadata.bogus",
            message: "unknown field `bogus`, expected one of `name`, `namespace`",
        },
    );
}

#[test]
fn empty_inputs_load_nothing() {
    for text in ["", "\n\n", "# only a comment\n", "---\n", "---\n---\n...\n"] {
        assert!(load(text, "empty.yaml").unwrap().is_empty(), "{text:?}");
    }
    assert!(load("  \n", "empty.json").unwrap().is_empty());
    assert!(load("[]", "empty.json").unwrap().is_empty());
}

#[test]
fn document_end_marker_starts_a_new_document() {
    let text = format!("{NS_X}...\n{POD_X}");
    let set = load(&text, "ends.yaml").unwrap();
    assert_eq!((set.namespaces.len(), set.pods.len()), (1, 1));
}

#[test]
fn wrong_type_names_the_field() {
    let text = format!(
        "{POD_X}spec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: http\n"
    );
    check(
        &only(&text, "pod.yaml"),
        Expect {
            kind: Schema,
            file: "pod.yaml",
            document: 1,
            line: 10,
            object: Some("Pod/x/a"),
            field: "spec.containers[0].ports[0].containerPort",
            message: "invalid type: string \"http\", expected u16",
        },
    );
}

#[test]
fn invalid_enum_value_lists_the_variants() {
    let text = crate::testutil::authorization_policy("  action: FOO\n");
    check(
        &only(&text, "ap.yaml"),
        Expect {
            kind: Schema,
            file: "ap.yaml",
            document: 1,
            line: 7,
            object: Some("AuthorizationPolicy/ns/ap"),
            field: "spec.action",
            message: "unknown variant `FOO`, expected one of `ALLOW`, `DENY`, `AUDIT`, `CUSTOM`",
        },
    );
}

#[test]
fn enum_field_holding_a_mapping_asks_for_a_string() {
    let text = network_policy("  podSelector: {}\n  policyTypes:\n  - {x: 1}\n");
    let d = only(&text, "np.yaml");
    assert_eq!(d.field.unwrap().to_string(), "spec.policyTypes[0]");
    assert!(d.message.contains("expected a string"), "{}", d.message);
}

#[test]
fn missing_required_field_is_reported_at_the_field() {
    let text = network_policy("  policyTypes: [Ingress]\n");
    check(
        &only(&text, "np.yaml"),
        Expect {
            kind: Schema,
            file: "np.yaml",
            document: 1,
            line: 6,
            object: Some("NetworkPolicy/ns/np"),
            field: "spec.podSelector",
            message: "required field is missing",
        },
    );
}

#[test]
fn missing_or_empty_name_is_an_error_without_an_object_name() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: x\n";
    check(
        &only(text, "noname.yaml"),
        Expect {
            kind: Schema,
            file: "noname.yaml",
            document: 1,
            line: 3,
            object: None,
            field: "metadata.name",
            message: "required field is missing",
        },
    );
    let d = only(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ''\n",
        "e.yaml",
    );
    assert_eq!(d.field.unwrap().to_string(), "metadata.name");
    assert_eq!(d.message, "must not be empty");
    let d = only("apiVersion: v1\nkind: Pod\n", "nometa.yaml");
    assert_eq!(d.field.unwrap().to_string(), "metadata");
    assert_eq!(d.line, Some(1));
}

#[test]
fn unknown_kind_lists_the_supported_kinds() {
    let text =
        format!("{NS_X}---\napiVersion: gadgets.example/v1\nkind: Gadget\nmetadata: {{name: g}}\n");
    let d = only(&text, "k.yaml");
    check(
        &d,
        Expect {
            kind: Schema,
            file: "k.yaml",
            document: 2,
            line: 7,
            object: None,
            field: "kind",
            message: "unknown kind `Gadget` (apiVersion `gadgets.example/v1`); expected one of: \
                      Namespace (v1), Pod (v1), Service (v1), Workload (bulkhead.dev/v1alpha1), \
                      NetworkPolicy (networking.k8s.io/v1), AuthorizationPolicy \
                      (security.istio.io/v1, security.istio.io/v1beta1), PeerAuthentication",
        },
    );
}

#[test]
fn kind_in_the_wrong_api_version() {
    let text = "apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: np}\n";
    check(
        &only(text, "v.yaml"),
        Expect {
            kind: Schema,
            file: "v.yaml",
            document: 1,
            line: 1,
            object: None,
            field: "apiVersion",
            message: "kind `NetworkPolicy` does not exist in apiVersion `v1`; expected \
                      `networking.k8s.io/v1`",
        },
    );
    let text =
        "apiVersion: security.istio.io/v1alpha3\nkind: PeerAuthentication\nmetadata: {name: p}\n";
    let d = only(text, "v.yaml");
    assert!(
        d.message
            .ends_with("expected `security.istio.io/v1` or `security.istio.io/v1beta1`")
    );
    // Both Istio versions load.
    for version in ["security.istio.io/v1", "security.istio.io/v1beta1"] {
        let text =
            format!("apiVersion: {version}\nkind: PeerAuthentication\nmetadata: {{name: p}}\n");
        assert_eq!(
            load(&text, "ok.yaml").unwrap().peer_authentications.len(),
            1
        );
    }
}

#[test]
fn missing_api_version_or_kind_and_non_mapping_documents() {
    let d = only("kind: Pod\nmetadata: {name: a}\n", "h.yaml");
    assert_eq!(d.field.unwrap().to_string(), "apiVersion");
    assert!(d.message.starts_with("required field is missing"));
    let d = only("apiVersion: v1\nkind: [Pod]\n", "h.yaml");
    assert_eq!(d.field.unwrap().to_string(), "kind");
    assert_eq!(d.message, "expected a string, found a sequence");
    let d = only("---\n- a\n- b\n", "h.yaml");
    assert_eq!((d.document, d.line), (Some(1), Some(2)));
    assert!(
        d.message
            .contains("expected a mapping with apiVersion, kind and metadata")
    );
}

#[test]
fn yaml_syntax_errors_give_the_file_line() {
    let text = format!("{NS_X}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: [a}}\n");
    let d = only(&text, "syntax.yaml");
    assert_eq!(d.kind, Syntax);
    assert_eq!((d.document, d.line), (Some(2), Some(8)));
    // The parser's own mention of a line is made relative to the file too.
    assert!(
        d.message
            .contains("while parsing a flow sequence at line 8"),
        "{}",
        d.message
    );
    let shown = d.to_string();
    assert!(
        shown.starts_with("syntax.yaml: document 2 (line 8): "),
        "{shown}"
    );
}

#[test]
fn duplicate_mapping_keys_are_rejected() {
    let d = only(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n",
        "dup.yaml",
    );
    assert_eq!(d.kind, Syntax);
    assert!(
        d.message.contains("duplicate entry with key \"name\""),
        "{}",
        d.message
    );
}

#[test]
fn json_object_array_and_syntax_errors() {
    let object =
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}}"#;
    assert_eq!(load(object, "one.json").unwrap().pods.len(), 1);

    let array = format!(
        "[\n  {object},\n\n  {}\n]\n",
        object
            .replace("\"a\"", "\"b\"")
            .replace("Pod\"", "Pod\", \"bad\": 1")
    );
    check(
        &only(&array, "many.json"),
        Expect {
            kind: Schema,
            file: "many.json",
            document: 2,
            line: 4,
            object: Some("Pod/x/b"),
            field: "bad",
            message: "unknown field `bad`",
        },
    );

    let d = only(
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",,\n}",
        "broken.json",
    );
    assert_eq!((d.kind, d.line), (Syntax, Some(3)));
    assert!(!d.message.contains("at line"), "{}", d.message);

    let d = only("[\n {\"a\": 1},\n oops\n]", "broken.json");
    assert_eq!((d.kind, d.document, d.line), (Syntax, None, Some(3)));
    assert!(d.to_string().starts_with("broken.json: line 3: "), "{d}");
}

#[test]
fn format_detection() {
    let object = r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}"#;
    // No extension: sniffed as JSON from the leading brace.
    assert_eq!(load(object, "stdin").unwrap().namespaces.len(), 1);
    let mut loader = Loader::new();
    loader.add_str(NS_X, "resources.txt", Format::Yaml).unwrap();
    // Forcing JSON works whatever the origin is called (as YAML this would be a sequence).
    Loader::new()
        .add_str(&format!("[{object}]"), "weird.yaml", Format::Json)
        .unwrap();
    // A .json origin is parsed as JSON even when the text would be valid YAML.
    let mut loader = Loader::new();
    assert!(loader.add_str(NS_X, "ns.json", Format::Auto).is_err());
}

#[test]
fn lists_unwrap_their_items() {
    let text = "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: '1'}\nitems:\n\
                - apiVersion: v1\n  kind: Namespace\n  metadata: {name: x}\n\
                - apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: np, namespace: x}\n  spec: {podSelector: {}}\n";
    let set = load(text, "list.yaml").unwrap();
    assert_eq!((set.namespaces.len(), set.network_policies.len()), (1, 1));

    let typed = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n\
                 - apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: np}\n  spec:\n    podSelector: {}\n    ingress:\n    - ports: [{port: 0}]\n";
    check(
        &only(typed, "typed.yaml"),
        Expect {
            kind: Schema,
            file: "typed.yaml",
            document: 1,
            line: 10,
            object: Some("NetworkPolicy/default/np"),
            field: "items[0].spec.ingress[0].ports[0].port",
            message: "invalid value: integer `0`, expected a port number (1-65535) or a port name",
        },
    );
}

#[test]
fn list_errors() {
    let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n\
                - apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n\
                - apiVersion: v1\n  kind: List\n  items: []\n\
                - kind: NetworkPolicy\n  metadata: {name: np}\n";
    let all = diagnostics(text, "l.yaml");
    let got: Vec<(String, Option<usize>)> = all
        .iter()
        .map(|d| (d.field.as_ref().unwrap().to_string(), d.line))
        .collect();
    assert_eq!(
        got,
        [
            ("items[0].kind".to_owned(), Some(5)),
            ("items[1].kind".to_owned(), Some(8)),
            ("items[2].apiVersion".to_owned(), Some(10)),
        ]
    );
    assert!(
        all[0]
            .message
            .contains("a NetworkPolicyList can only hold NetworkPolicy objects")
    );
    assert!(
        all[1]
            .message
            .contains("a List cannot contain another List")
    );

    let d = only("apiVersion: v1\nkind: List\n", "l.yaml");
    assert_eq!(d.field.unwrap().to_string(), "items");
    let d = only(
        "apiVersion: v1\nkind: List\nitems: []\nextra: 1\n",
        "l.yaml",
    );
    assert_eq!(
        (d.field.unwrap().to_string(), d.line),
        ("extra".to_owned(), Some(4))
    );
    let d = only("apiVersion: apps/v1\nkind: List\nitems: []\n", "l.yaml");
    assert!(d.message.contains("expected `v1`"));
}

#[test]
fn json_list_and_string_port_keys() {
    let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
   "metadata": {"name": "p", "namespace": "x"},
   "spec": {"selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {"8080": {"mode": "STRICT"}}}}
]}"#;
    let set = load(text, "list.json").unwrap();
    let pa = &set.peer_authentications[0];
    assert!(pa.spec.port_level_mtls.contains_key(&8080));
}

#[test]
fn crlf_bom_and_merge_keys() {
    let text = "\u{feff}apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p\r\n  bad: 1\r\n";
    let d = only(text, "crlf.yaml");
    assert_eq!(
        (d.line, d.field.unwrap().to_string()),
        (Some(5), "metadata.bad".to_owned())
    );
    let merged = "apiVersion: v1\nkind: Pod\nmetadata:\n  <<: {name: p, namespace: x}\n";
    assert_eq!(
        load(merged, "merge.yaml").unwrap().pods[0].metadata.name,
        "p"
    );
}

#[test]
fn duplicates_name_both_locations() {
    let mut loader = Loader::new();
    loader.add_str(POD_X, "a.yaml", Format::Auto).unwrap();
    let pod_b = POD_X.replace("name: a", "name: b");
    loader
        .add_str(
            &format!("{NS_X}---\n{pod_b}---\n{POD_X}"),
            "b.yaml",
            Format::Auto,
        )
        .unwrap();
    let err = loader.finish().unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(err.diagnostics().len(), 1);
    assert_eq!(d.kind, Duplicate);
    assert_eq!(
        d.to_string(),
        "b.yaml: document 3 (line 12): Pod/x/a: duplicate object: already defined at a.yaml: \
         document 1 (line 1)"
    );
    // Same name in another namespace or of another kind is not a duplicate.
    let other = format!(
        "{POD_X}---\n{}---\n{}",
        POD_X.replace("x\n", "y\n"),
        NS_X.replace("name: x", "name: a")
    );
    // Namespace `a` is declared; `x` and `y` are created implicitly.
    assert_eq!(load(&other, "ok.yaml").unwrap().len(), 5);
    // Implicit `default` is the same namespace as an explicit one.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
    let explicit = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\n";
    let d = only(&format!("{pod}---\n{explicit}"), "d.yaml");
    assert_eq!(d.object.as_deref(), Some("Pod/default/p"));
}

#[test]
fn batches_are_all_or_nothing() {
    let mut loader = Loader::new();
    loader.add_str(NS_X, "good.yaml", Format::Auto).unwrap();
    let err = loader
        .add_str("apiVersion: v1\nkind: Pod\n", "bad.yaml", Format::Auto)
        .unwrap_err();
    assert_eq!(err.diagnostics().len(), 1);
    loader.add_str(POD_X, "later.yaml", Format::Auto).unwrap();
    let err = loader.finish().unwrap_err();
    assert_eq!(err.diagnostics().len(), 1);
    assert_eq!(err.diagnostics()[0].origin, "bad.yaml");

    // One bad document keeps the good documents of the same file out too.
    let mut loader = Loader::new();
    let text = format!("{NS_X}---\napiVersion: v1\nkind: Pod\n");
    assert!(loader.add_str(&text, "mixed.yaml", Format::Auto).is_err());
    assert!(loader.entries.is_empty());
}

#[test]
fn every_error_of_a_batch_is_reported_up_to_the_cap() {
    let one = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, bogus: 1}\n";
    let text = vec![one; MAX_DIAGNOSTICS + 7].join("---\n");
    let err = load(&text, "many.yaml").unwrap_err();
    let LoadError::Invalid(diags) = &err else {
        panic!("{err}")
    };
    assert_eq!((diags.len(), diags.omitted()), (MAX_DIAGNOSTICS, 7));
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), MAX_DIAGNOSTICS + 1);
    assert!(
        shown.lines().last().unwrap().contains("7 more error(s)"),
        "{shown}"
    );
}

#[test]
fn namespaces_are_completed() {
    let text = format!(
        "{NS_X}---\n{POD_X}---\napiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: q, namespace: shop}}\n"
    );
    let set = load(&text, "ns.yaml").unwrap();
    let names: Vec<&str> = set
        .namespaces
        .iter()
        .map(|n| n.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["x", "default", "shop"]);
    for ns in &set.namespaces {
        assert_eq!(
            ns.metadata.labels.get(NAMESPACE_NAME_LABEL),
            Some(&ns.metadata.name)
        );
    }
    // Declared labels are kept alongside the name label.
    let labelled = "apiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {team: a}}\n";
    let set = load(labelled, "ns.yaml").unwrap();
    assert_eq!(set.namespaces[0].metadata.labels.len(), 2);
}

#[test]
fn json_validation_errors_point_at_the_field_line() {
    let text = r#"{
  "apiVersion": "networking.k8s.io/v1",
  "kind": "NetworkPolicy",
  "metadata": {"name": "np", "namespace": "x"},
  "spec": {
    "podSelector": {},
    "ingress": [
      {
        "ports": [
          {"port": 80,
           "endPort": 70}
        ]
      }
    ]
  }
}"#;
    check(
        &only(text, "np.json"),
        Expect {
            kind: DiagnosticKind::Invalid,
            file: "np.json",
            document: 1,
            line: 11,
            object: Some("NetworkPolicy/x/np"),
            field: "spec.ingress[0].ports[0].endPort",
            message: "endPort (70) must not be less than port (80)",
        },
    );
}
