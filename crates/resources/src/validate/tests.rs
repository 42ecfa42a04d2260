//! Validation tests: one per class of error, each checking file, document, line, object,
//! field path and the expectation stated in the message.

use super::validate;
use crate::error::DiagnosticKind::{Invalid, Schema};
use crate::testutil::{
    Expect, authorization_policy, check, diagnostics, load, network_policy, only,
};

const NP: &str = "NetworkPolicy/ns/np";
const AP: &str = "AuthorizationPolicy/ns/ap";

/// Asserts that `text` fails with one Invalid diagnostic at `line`/`field` saying `message`.
fn invalid(text: &str, object: &str, line: usize, field: &str, message: &str) {
    check(
        &only(text, "v.yaml"),
        Expect {
            kind: Invalid,
            file: "v.yaml",
            document: 1,
            line,
            object: Some(object),
            field,
            message,
        },
    );
}

fn np_ports(ports: &str) -> String {
    network_policy(&format!(
        "  podSelector: {{}}\n  ingress:\n  - ports:\n{ports}"
    ))
}

#[test]
fn end_port_rules() {
    let field = "spec.ingress[0].ports[0].endPort";
    invalid(
        &np_ports("    - endPort: 90\n"),
        NP,
        10,
        field,
        "endPort requires a numeric port",
    );
    let named = np_ports("    - port: http\n      endPort: 90\n");
    invalid(
        &named,
        NP,
        11,
        field,
        "endPort cannot be used with a named port (`http`)",
    );
    let below = np_ports("    - port: 80\n      endPort: 79\n");
    invalid(
        &below,
        NP,
        11,
        field,
        "endPort (79) must not be less than port (80)",
    );
    let zero = np_ports("    - port: 80\n      endPort: 0\n");
    invalid(
        &zero,
        NP,
        11,
        field,
        "port numbers must be between 1 and 65535",
    );
    assert!(load(&np_ports("    - {port: 80, endPort: 80}\n"), "ok.yaml").is_ok());
}

#[test]
fn port_numbers_and_names() {
    let zero = np_ports("    - port: 0\n");
    let d = only(&zero, "v.yaml");
    assert_eq!((d.kind, d.line), (Schema, Some(10)));
    assert_eq!(
        d.field.unwrap().to_string(),
        "spec.ingress[0].ports[0].port"
    );
    assert!(
        d.message
            .contains("expected a port number (1-65535) or a port name")
    );
    let bad_name = np_ports("    - port: HTTP_web\n");
    invalid(
        &bad_name,
        NP,
        10,
        "spec.ingress[0].ports[0].port",
        "`HTTP_web` is not a valid port name",
    );
}

fn np_peer(peer: &str) -> String {
    network_policy(&format!("  podSelector: {{}}\n  egress:\n  - to:\n{peer}"))
}

#[test]
fn ip_block_cidr_must_have_a_prefix() {
    let text = np_peer("    - ipBlock:\n        cidr: 10.0.0.1\n");
    let field = "spec.egress[0].to[0].ipBlock.cidr";
    invalid(
        &text,
        NP,
        11,
        field,
        "expected a CIDR such as 10.0.0.0/8 or fd00::/8, got \"10.0.0.1\"",
    );
    let text = np_peer("    - ipBlock:\n        cidr: 10.0.0.0/33\n");
    invalid(
        &text,
        NP,
        11,
        field,
        "prefix length is not a number from 0 to 32",
    );
    assert!(
        load(
            &np_peer("    - ipBlock: {cidr: 'fd00::/8', except: ['fd00::/16']}\n"),
            "ok.yaml"
        )
        .is_ok()
    );
}

#[test]
fn ip_block_except_entries() {
    let text = np_peer(
        "    - ipBlock:\n        cidr: 10.0.0.0/8\n        except:\n        - 10.1.0.0/16\n\
         \x20       - bad\n        - fd00::/16\n        - 10.0.0.0/8\n        - 11.0.0.0/16\n",
    );
    let all = diagnostics(&text, "v.yaml");
    let got: Vec<(String, Option<usize>)> = all
        .iter()
        .map(|d| (d.field.as_ref().unwrap().to_string(), d.line))
        .collect();
    let at = |i: usize| format!("spec.egress[0].to[0].ipBlock.except[{i}]");
    assert_eq!(
        got,
        [
            (at(1), Some(14)),
            (at(2), Some(15)),
            (at(3), Some(16)),
            (at(4), Some(17))
        ]
    );
    assert!(all[0].message.contains("expected a CIDR"));
    assert!(
        all[1]
            .message
            .contains("`fd00::/16` is IPv6 but cidr `10.0.0.0/8` is IPv4")
    );
    assert!(
        all[2]
            .message
            .contains("`10.0.0.0/8` is not strictly inside cidr `10.0.0.0/8`")
    );
    assert!(
        all[3]
            .message
            .contains("`11.0.0.0/16` is not strictly inside cidr `10.0.0.0/8`")
    );
}

#[test]
fn peer_must_set_exactly_one_kind_of_selection() {
    let both = np_peer("    - ipBlock: {cidr: 10.0.0.0/8}\n      namespaceSelector: {}\n");
    let message = "ipBlock cannot be combined with podSelector or namespaceSelector";
    invalid(&both, NP, 10, "spec.egress[0].to[0].ipBlock", message);
    let both = np_peer("    - podSelector: {}\n      ipBlock: {cidr: 10.0.0.0/8}\n");
    invalid(&both, NP, 11, "spec.egress[0].to[0].ipBlock", message);
    let none = np_peer("    - {}\n");
    let message = "a peer must set podSelector, namespaceSelector or ipBlock";
    invalid(&none, NP, 10, "spec.egress[0].to[0]", message);
}

#[test]
fn selector_operators_need_values_or_none() {
    let sel = |s: &str| network_policy(&format!("  podSelector:\n{s}"));
    let in_empty = sel("    matchExpressions:\n    - key: app\n      operator: In\n");
    let field = "spec.podSelector.matchExpressions[0].values";
    invalid(
        &in_empty,
        NP,
        9,
        field,
        "operator In requires at least one value",
    );
    let not_in = sel("    matchExpressions:\n    - {key: app, operator: NotIn, values: []}\n");
    invalid(
        &not_in,
        NP,
        9,
        field,
        "operator NotIn requires at least one value",
    );
    let exists =
        sel("    matchExpressions:\n    - key: app\n      operator: Exists\n      values: [a]\n");
    invalid(&exists, NP, 11, field, "operator Exists takes no values");
    let absent =
        sel("    matchExpressions:\n    - {key: app, operator: DoesNotExist, values: [a]}\n");
    invalid(
        &absent,
        NP,
        9,
        field,
        "operator DoesNotExist takes no values",
    );
}

#[test]
fn selector_keys_and_nested_selectors() {
    let sel = |s: &str| network_policy(&format!("  podSelector:\n{s}"));
    let empty_key = sel("    matchExpressions:\n    - {key: '', operator: Exists}\n");
    invalid(
        &empty_key,
        NP,
        9,
        "spec.podSelector.matchExpressions[0].key",
        "label keys must not be empty",
    );
    let empty_label = sel("    matchLabels: {'': a}\n");
    invalid(
        &empty_label,
        NP,
        8,
        "spec.podSelector.matchLabels",
        "label keys must not be empty",
    );
    let ns_sel =
        np_peer("    - namespaceSelector:\n        matchExpressions: [{key: a, operator: In}]\n");
    let field = "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values";
    invalid(
        &ns_sel,
        NP,
        11,
        field,
        "operator In requires at least one value",
    );
    let bad_op = sel("    matchExpressions:\n    - {key: a, operator: Equals}\n");
    let d = only(&bad_op, "v.yaml");
    assert_eq!(d.kind, Schema);
    assert!(d.message.contains(
        "unknown variant `Equals`, expected one of `In`, `NotIn`, `Exists`, `DoesNotExist`"
    ));
}

#[test]
fn target_refs() {
    let both = authorization_policy(
        "  selector: {matchLabels: {app: a}}\n  targetRefs:\n  - {kind: Service, name: s}\n",
    );
    invalid(
        &both,
        AP,
        8,
        "spec.targetRefs",
        "selector and targetRef/targetRefs cannot both be set",
    );
    let refs =
        "  targetRef: {kind: Service, name: s}\n  targetRefs:\n  - {kind: Service, name: t}\n";
    invalid(
        &authorization_policy(refs),
        AP,
        7,
        "spec.targetRef",
        "targetRef and targetRefs cannot both be set",
    );
    let gateway = authorization_policy(
        "  targetRefs:\n  - kind: Gateway\n    group: gateway.networking.k8s.io\n    name: g\n",
    );
    let message = "kind `Gateway` is not supported: Bulkhead has no gateways yet; use kind Service";
    invalid(&gateway, AP, 8, "spec.targetRefs[0].kind", message);
    let group =
        authorization_policy("  targetRef:\n    kind: Service\n    group: apps\n    name: s\n");
    invalid(
        &group,
        AP,
        9,
        "spec.targetRef.group",
        "group `apps` is not supported",
    );
    let other_ns =
        authorization_policy("  targetRefs:\n  - {kind: Service, name: s, namespace: other}\n");
    let message = "namespace `other` differs from the policy's namespace `ns`";
    invalid(&other_ns, AP, 8, "spec.targetRefs[0].namespace", message);
    let ok = "  targetRefs:\n  - {kind: Service, group: '', name: s, namespace: ns}\n  - {kind: Service, group: core, name: t}\n";
    assert!(load(&authorization_policy(ok), "ok.yaml").is_ok());
}

#[test]
fn custom_action_and_provider() {
    let custom = authorization_policy("  action: CUSTOM\n  provider: {name: ext}\n");
    invalid(
        &custom,
        AP,
        7,
        "spec.action",
        "action CUSTOM is not supported yet",
    );
    let provider = authorization_policy("  action: DENY\n  provider:\n    name: ext\n");
    invalid(
        &provider,
        AP,
        8,
        "spec.provider",
        "provider is only allowed with action CUSTOM",
    );
}

fn ap_rule(rule: &str) -> String {
    authorization_policy(&format!("  rules:\n  - {rule}"))
}

#[test]
fn operation_ports_and_paths() {
    let ports = ap_rule("to:\n    - operation:\n        ports: ['80', '0', http, '65536']\n");
    let all = diagnostics(&ports, "v.yaml");
    let fields: Vec<String> = all
        .iter()
        .map(|d| d.field.as_ref().unwrap().to_string())
        .collect();
    let at = |i: usize| format!("spec.rules[0].to[0].operation.ports[{i}]");
    assert_eq!(fields, [at(1), at(2), at(3)]);
    assert!(
        all.iter()
            .all(|d| d.line == Some(10) && d.message.contains("expected a number from 1 to 65535"))
    );
    let not_ports = ap_rule("to:\n    - operation:\n        notPorts: ['8o']\n");
    invalid(
        &not_ports,
        AP,
        10,
        "spec.rules[0].to[0].operation.notPorts[0]",
        "`8o` is not a port number",
    );

    // `{**}` may be followed by literal segments (as in Envoy), not by another operator.
    let last = ap_rule("to:\n    - operation:\n        paths: ['/a/{**}/{*}']\n");
    invalid(
        &last,
        AP,
        10,
        "spec.rules[0].to[0].operation.paths[0]",
        "expected `{**}` to be the last operator",
    );
    let inside = ap_rule("to:\n    - operation:\n        notPaths:\n        - /api/v{*}/x\n");
    let field = "spec.rules[0].to[0].operation.notPaths[0]";
    invalid(&inside, AP, 11, field, "alone between '/' characters");
    let ok = ap_rule(
        "to:\n    - operation: {paths: ['/a/{*}/b/{**}', '/c/{**}/d', '/x*', '*'], ports: ['8080']}\n",
    );
    assert!(load(&ok, "ok.yaml").is_ok());
}

#[test]
fn source_ip_blocks() {
    for field in [
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
    ] {
        let text = ap_rule(&format!(
            "from:\n    - source:\n        {field}: [10.0.0.1, 10.0.0.0/16, 'fd00::1', nope]\n"
        ));
        let path = format!("spec.rules[0].from[0].source.{field}[3]");
        invalid(&text, AP, 10, &path, "`nope` is not an IP address or CIDR");
    }
}

#[test]
fn when_keys() {
    let unknown = ap_rule("when:\n    - key: request.method\n      values: [GET]\n");
    let message =
        "unknown key `request.method`; expected one of: request.headers[<name>], source.ip";
    invalid(&unknown, AP, 9, "spec.rules[0].when[0].key", message);
    for bad in [
        "request.headers[]",
        "request.headers[a][b]",
        "request.auth.claims",
        "request.auth.claims[a]x",
        "experimental.envoy.filters.x",
    ] {
        let text = ap_rule(&format!("when:\n    - key: '{bad}'\n      values: [a]\n"));
        let d = only(&text, "v.yaml");
        assert!(
            d.message.starts_with(&format!("unknown key `{bad}`")),
            "{d}"
        );
    }
    let good = [
        "request.headers[x-token]",
        "source.namespace",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "request.auth.claims[groups]",
        "request.auth.claims[nested][key]",
        "connection.sni",
    ];
    for key in good {
        let text = ap_rule(&format!(
            "when:\n    - key: '{key}'\n      notValues: [a]\n"
        ));
        assert!(load(&text, "ok.yaml").is_ok(), "{key}");
    }
}

#[test]
fn when_values() {
    let none = ap_rule("when:\n    - key: source.ip\n");
    invalid(
        &none,
        AP,
        9,
        "spec.rules[0].when[0]",
        "a condition needs values or notValues",
    );
    for key in ["source.ip", "remote.ip", "destination.ip"] {
        let text = ap_rule(&format!(
            "when:\n    - key: {key}\n      values: [10.0.0.0/8, 10.0.0.300]\n"
        ));
        invalid(
            &text,
            AP,
            10,
            "spec.rules[0].when[0].values[1]",
            "`10.0.0.300` is not an IP address or CIDR",
        );
    }
    let port = ap_rule("when:\n    - key: destination.port\n      notValues: ['80', http]\n");
    invalid(
        &port,
        AP,
        10,
        "spec.rules[0].when[0].notValues[1]",
        "`http` is not a port number",
    );
}

#[test]
fn dry_run_annotation() {
    let text = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ap\n  \
                namespace: ns\n  annotations:\n    istio.io/dry-run: 'yes'\n";
    let field = "metadata.annotations.istio.io/dry-run";
    invalid(
        text,
        AP,
        7,
        field,
        "must be \"true\" or \"false\", found `yes`",
    );
    assert!(load(&text.replace("'yes'", "'true'"), "ok.yaml").is_ok());
    // An unquoted YAML boolean is not a string, as in Kubernetes.
    let d = only(&text.replace("'yes'", "true"), "v.yaml");
    assert_eq!((d.kind, d.line), (Schema, Some(7)));
}

fn peer_auth(spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {{name: pa, namespace: ns}}\nspec:\n{spec}"
    )
}

#[test]
fn peer_authentication_port_level_mtls() {
    const PA: &str = "PeerAuthentication/ns/pa";
    let no_selector =
        peer_auth("  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n");
    invalid(
        &no_selector,
        PA,
        6,
        "spec.portLevelMtls",
        "portLevelMtls requires a selector",
    );
    let zero = peer_auth(
        "  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    0: {mode: DISABLE}\n",
    );
    invalid(
        &zero,
        PA,
        7,
        "spec.portLevelMtls.0",
        "port numbers must be between 1 and 65535",
    );
    let ok = peer_auth(
        "  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
    );
    assert!(load(&ok, "ok.yaml").is_ok());
}

#[test]
fn service_ports() {
    let svc = |ports: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec:\n  ports:\n{ports}")
    };
    let d = only(&svc("  - port: 80\n    targetPort: 0\n"), "v.yaml");
    assert_eq!((d.kind, d.line), (Schema, Some(7)));
    assert_eq!(d.field.unwrap().to_string(), "spec.ports[0].targetPort");
    assert!(
        d.message
            .contains("expected a port number (1-65535) or a port name")
    );
    let zero = svc("  - port: 0\n");
    invalid(
        &zero,
        "Service/default/s",
        6,
        "spec.ports[0].port",
        "port numbers must be between 1 and 65535",
    );
    assert!(load(&svc("  - {port: 80, targetPort: http}\n"), "ok.yaml").is_ok());
}

#[test]
fn namespace_rules() {
    let scoped = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  namespace: x\n";
    invalid(
        scoped,
        "Namespace/n",
        5,
        "metadata.namespace",
        "a Namespace is cluster-scoped",
    );
    let label = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  labels:\n    kubernetes.io/metadata.name: m\n";
    let field = "metadata.labels.kubernetes.io/metadata.name";
    invalid(
        label,
        "Namespace/n",
        6,
        field,
        "must equal the namespace's name `n`, found `m`",
    );
}

#[test]
fn validate_is_usable_on_its_own() {
    let set = load(&np_ports("    - {port: 80, endPort: 90}\n"), "ok.yaml").unwrap();
    let resource = crate::Resource::NetworkPolicy(set.network_policies[0].clone());
    assert!(validate(&resource).is_empty());
    let mut np = set.network_policies[0].clone();
    np.spec.ingress.as_mut().unwrap()[0].ports[0].end_port = Some(1);
    let problems = validate(&crate::Resource::NetworkPolicy(np));
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "spec.ingress[0].ports[0].endPort: endPort (1) must not be less than port (80)"
    );
}
