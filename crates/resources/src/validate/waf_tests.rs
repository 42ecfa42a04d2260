//! WebApplicationFirewall loading and validation: the full shape, defaults, schema errors
//! and every semantic rule, each reported at its field path and line.

use proptest::prelude::*;

use crate::error::DiagnosticKind::{Invalid, Schema};
use crate::field::FieldPath;
use crate::kinds::waf::{RuleIdSpec, WafMode, WafSpec};
use crate::testutil::{Expect, check, diagnostics, load, only};
use crate::validate::waf_spec;

const WAF: &str = "WebApplicationFirewall/shop/frontend";

/// A WebApplicationFirewall `frontend` in namespace `shop` with more `spec` lines
/// (indented by two spaces). The spec's own lines start on line 7.
fn waf(spec: &str) -> String {
    format!(
        "apiVersion: bulkhead.dev/v1alpha1\nkind: WebApplicationFirewall\nmetadata:\n  name: \
         frontend\n  namespace: shop\nspec:\n{spec}"
    )
}

fn fails(text: &str, kind: crate::DiagnosticKind, line: usize, field: &str, message: &str) {
    check(
        &only(text, "waf.yaml"),
        Expect {
            kind,
            file: "waf.yaml",
            document: 1,
            line,
            object: Some(WAF),
            field,
            message,
        },
    );
}

const FULL: &str = "  selector: {matchLabels: {app: frontend}}
  mode: Blocking
  paranoiaLevel: 2
  anomalyThresholds: {inbound: 10, outbound: 8}
  requestBodyLimitBytes: 65536
  responseInspection: true
  responseBodyLimitBytes: 1048576
  allowedMethods: [GET, HEAD, POST, PUT, DELETE]
  exclusions:
    - ruleIds: [942100, \"942000-942999\", \"920350\"]
      paths: [/api/upload]
    - targets: [ARGS:password, \"REQUEST_COOKIES:/^session_/\"]
    - ruleIds: [932100]
      targets: [REQUEST_HEADERS:User-Agent]
";

#[test]
fn full_firewall_loads_and_round_trips_as_json() {
    let set = load(&waf(FULL), "waf.yaml").unwrap();
    assert_eq!(set.web_application_firewalls.len(), 1);
    let spec = set.web_application_firewalls[0].spec.waf();
    assert_eq!(spec.mode, WafMode::Blocking);
    assert_eq!(spec.paranoia(), 2);
    assert_eq!(
        (spec.inbound_threshold(), spec.outbound_threshold()),
        (10, 8)
    );
    assert_eq!(spec.request_body_limit(), 65536);
    assert!(spec.inspects_responses());
    assert_eq!(spec.allowed_methods.as_ref().unwrap().len(), 5);
    assert_eq!(
        spec.exclusions[0].rule_ids,
        [
            RuleIdSpec::One(942100),
            RuleIdSpec::Range(942000, 942999),
            RuleIdSpec::One(920350)
        ]
    );
    // The control plane ships the spec as JSON; the proxy decodes the same value.
    let json = serde_json::to_string(&spec).unwrap();
    assert!(
        json.contains("\"ruleIds\":[942100,\"942000-942999\",920350]"),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<WafSpec>(&json).unwrap(), spec);
}

#[test]
fn absent_fields_take_the_crs_defaults() {
    let set = load(&waf("  mode: DetectionOnly\n"), "waf.yaml").unwrap();
    let w = &set.web_application_firewalls[0];
    assert!(w.spec.selector.is_none());
    let spec = w.spec.waf();
    assert_eq!(spec.paranoia(), 1);
    assert_eq!(
        (spec.inbound_threshold(), spec.outbound_threshold()),
        (5, 4)
    );
    assert_eq!(spec.request_body_limit(), 128 * 1024);
    assert!(!spec.inspects_responses());
    assert_eq!(spec.response_body_limit(), 512 * 1024);
    assert_eq!(
        serde_json::to_string(&spec).unwrap(),
        r#"{"mode":"DetectionOnly"}"#
    );
}

#[test]
fn schema_errors_name_the_field() {
    // A missing field is located at its parent, `spec:` on line 6.
    fails(
        &waf("  paranoiaLevel: 1\n"),
        Schema,
        6,
        "spec.mode",
        "required field is missing",
    );
    fails(
        &waf("  mode: Block\n"),
        Schema,
        7,
        "spec.mode",
        "unknown variant `Block`, expected one of `Off`, `DetectionOnly`, `Blocking`",
    );
    fails(
        &waf("  mode: Off\n  paranoia: 2\n"),
        Schema,
        8,
        "spec.paranoia",
        "unknown field `paranoia`",
    );
    fails(
        &waf("  mode: Off\n  exclusions: [{ruleIds: [\"94x\"]}]\n"),
        Schema,
        8,
        "spec.exclusions[0].ruleIds[0]",
        "`94x` is not a rule id",
    );
    fails(
        &waf("  mode: Off\n  exclusions: [{ruleIds: [1], path: [/a]}]\n"),
        Schema,
        8,
        "spec.exclusions[0].path",
        "unknown field `path`",
    );
}

#[test]
fn semantic_errors_name_the_field() {
    let cases = [
        (
            "  mode: Off\n  paranoiaLevel: 5\n",
            8,
            "spec.paranoiaLevel",
            "expected 1, 2, 3 or 4",
        ),
        (
            "  mode: Off\n  anomalyThresholds: {inbound: 0}\n",
            8,
            "spec.anomalyThresholds.inbound",
            "at least 1",
        ),
        (
            "  mode: Off\n  requestBodyLimitBytes: 16777217\n",
            8,
            "spec.requestBodyLimitBytes",
            "16 MiB",
        ),
        (
            "  mode: Off\n  exclusions: [{paths: [/a]}]\n",
            8,
            "spec.exclusions[0]",
            "needs ruleIds",
        ),
        (
            "  mode: Off\n  exclusions: [{ruleIds: [\"20-10\"]}]\n",
            8,
            "spec.exclusions[0].ruleIds[0]",
            "is empty",
        ),
        (
            "  mode: Off\n  exclusions: [{ruleIds: [0]}]\n",
            8,
            "spec.exclusions[0].ruleIds[0]",
            "start at 1",
        ),
        (
            "  mode: Off\n  exclusions: [{ruleIds: [1], paths: [api]}]\n",
            8,
            "spec.exclusions[0].paths[0]",
            "does not start with `/`",
        ),
        (
            "  mode: Off\n  exclusions: [{targets: [\"TX:x\"]}]\n",
            8,
            "spec.exclusions[0].targets[0]",
            "is not a variable",
        ),
        (
            "  mode: Off\n  exclusions: [{ruleIds: [\"1-9\"], paths: [/a], targets: [ARGS]}]\n",
            8,
            "spec.exclusions[0].ruleIds[0]",
            "cannot be combined",
        ),
        (
            "  mode: Off\n  allowedMethods: []\n",
            8,
            "spec.allowedMethods",
            "at least one method",
        ),
        (
            "  mode: Off\n  allowedMethods: [GET, get]\n",
            8,
            "spec.allowedMethods[1]",
            "is not a method",
        ),
        (
            "  mode: Off\n  allowedMethods: [GET, GET]\n",
            8,
            "spec.allowedMethods[1]",
            "listed twice",
        ),
        (
            "  mode: Off\n  selector: {matchLabels: {\"\": x}}\n",
            8,
            "spec.selector.matchLabels",
            "must not be empty",
        ),
    ];
    for (spec, line, field, message) in cases {
        fails(&waf(spec), Invalid, line, field, message);
    }
}

#[test]
fn every_problem_of_a_document_is_reported() {
    let text = waf("  mode: Off\n  paranoiaLevel: 9\n  exclusions: [{ruleIds: [0], paths: [x]}]\n");
    let all = diagnostics(&text, "waf.yaml");
    assert_eq!(all.len(), 3, "{all:#?}");
}

#[test]
fn list_limits_are_enforced() {
    let mut spec = WafSpec::with_mode(WafMode::Off);
    let e = crate::kinds::waf::WafExclusionSpec {
        rule_ids: (1..=101).map(RuleIdSpec::One).collect(),
        ..Default::default()
    };
    spec.exclusions = vec![e; 1001];
    let problems = waf_spec(&spec, &FieldPath::root().key("spec").key("waf"));
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        shown[0].starts_with("spec.waf.exclusions: 1001 exclusions"),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("spec.waf.exclusions[0].ruleIds: 101 entries"),
        "{shown:?}"
    );
}

proptest! {
    /// Any combination of values either validates or names fields under the given root;
    /// valid ones stay valid after a JSON round trip (what the control plane ships).
    #[test]
    fn validation_is_total_and_survives_json(
        paranoia in proptest::option::of(0u32..8),
        inbound in proptest::option::of(0u32..20),
        limit in proptest::option::of(0u64..(32 << 20)),
        first in 0u32..1_000_000,
        last in 0u32..1_000_000,
        path in "/?[a-z%/ ]{0,8}",
        target in "[A-Z_]{2,8}(:[a-z/]{0,4})?",
    ) {
        let mut spec = WafSpec::with_mode(WafMode::Blocking);
        spec.paranoia_level = paranoia;
        spec.anomaly_thresholds = Some(crate::AnomalyThresholdsSpec { inbound, outbound: None });
        spec.request_body_limit_bytes = limit;
        spec.exclusions.push(crate::kinds::waf::WafExclusionSpec {
            rule_ids: vec![RuleIdSpec::Range(first, last)],
            paths: vec![path],
            targets: vec![target],
        });
        let at = FieldPath::root().key("spec").key("waf");
        let problems = waf_spec(&spec, &at);
        for p in &problems {
            prop_assert!(p.path.to_string().starts_with("spec.waf."), "{}", p);
        }
        let json = serde_json::to_string(&spec).unwrap();
        let back: WafSpec = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(waf_spec(&back, &at), problems);
    }
}
