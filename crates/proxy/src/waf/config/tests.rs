//! The rendered SecLang: exact text for the settings, what each exclusion becomes, that
//! everything parses with the engine's parser, and that path patterns match segment-wise.

use std::path::Path;

use bulkhead_resources::{AnomalyThresholdsSpec, RuleIdSpec, WafExclusionSpec, WafMode, WafSpec};
use bulkhead_waf::parse::ast::{Directive, IdRange, Located};
use bulkhead_waf::parse::parse_str;
use proptest::prelude::*;

use super::*;

fn parse(label: &str, text: &str) -> Vec<Located> {
    match parse_str(label, text, Path::new(".")) {
        Ok(directives) => directives,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn exclusion(ids: &[RuleIdSpec], paths: &[&str], targets: &[&str]) -> WafExclusionSpec {
    WafExclusionSpec {
        rule_ids: ids.to_vec(),
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// The `SecAction`/`SecRule` whose `id` action is `id`.
fn rule_text(text: &str, id: u32) -> &str {
    let needle = format!("\"id:{id},");
    text.lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no rule {id} in\n{text}"))
}

#[test]
fn defaults_render_crs_setup_and_parse() {
    let r = render(&WafSpec::with_mode(WafMode::DetectionOnly));
    for line in [
        "SecRuleEngine DetectionOnly",
        "SecRequestBodyAccess On",
        "SecRequestBodyLimit 131072",
        "SecRequestBodyLimitAction ProcessPartial",
        "SecResponseBodyAccess Off",
        "SecResponseBodyMimeType text/plain text/html text/xml application/json",
        "SecDefaultAction \"phase:2,log,auditlog,pass\"",
    ] {
        assert!(
            r.before.lines().any(|l| l == line),
            "{line} missing:\n{}",
            r.before
        );
    }
    assert!(rule_text(&r.before, 900000).ends_with("setvar:tx.blocking_paranoia_level=1\""));
    assert!(rule_text(&r.before, 900110).contains(
        "setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
    ));
    assert!(rule_text(&r.before, 900990).ends_with("setvar:tx.crs_setup_version=4251\""));
    assert!(
        rule_text(&r.before, 900220)
            .ends_with("|application/json| |application/grpc| |application/grpc+proto|'\"")
    );
    assert!(!r.before.contains("id:900200,"), "CRS's default methods");
    assert!(r.after.is_empty());
    let directives = parse("<WebApplicationFirewall shop/web>", &r.before);
    let defaults = directives
        .iter()
        .filter(|d| matches!(d.directive, Directive::DefaultAction(_)))
        .count();
    assert_eq!(defaults, 5);
}

#[test]
fn blocking_rejects_oversized_bodies_and_settings_follow_the_spec() {
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    spec.paranoia_level = Some(3);
    spec.anomaly_thresholds = Some(AnomalyThresholdsSpec {
        inbound: Some(10),
        outbound: None,
    });
    spec.request_body_limit_bytes = Some(4096);
    spec.response_inspection = Some(true);
    spec.response_body_limit_bytes = Some(2048);
    spec.allowed_methods = Some(vec!["GET".into(), "PUT".into(), "DELETE".into()]);
    let r = render(&spec);
    assert!(rule_text(&r.before, 900200).ends_with("setvar:'tx.allowed_methods=GET PUT DELETE'\""));
    for line in [
        "SecRuleEngine On",
        "SecRequestBodyLimit 4096",
        "SecRequestBodyNoFilesLimit 4096",
        "SecRequestBodyLimitAction Reject",
        "SecResponseBodyAccess On",
        "SecResponseBodyLimit 2048",
    ] {
        assert!(
            r.before.lines().any(|l| l == line),
            "{line} missing:\n{}",
            r.before
        );
    }
    assert!(rule_text(&r.before, 900000).contains("blocking_paranoia_level=3"));
    assert!(rule_text(&r.before, 900110).contains(
        "inbound_anomaly_score_threshold=10,setvar:tx.outbound_anomaly_score_threshold=4"
    ));
    assert!(
        render(&WafSpec::with_mode(WafMode::Off))
            .before
            .contains("SecRuleEngine Off\n")
    );
    parse("before", &r.before);
}

#[test]
fn path_exclusions_are_phase_one_ctl_rules() {
    let mut spec = WafSpec::with_mode(WafMode::Blocking);
    spec.exclusions = vec![
        exclusion(
            &[RuleIdSpec::One(942100), RuleIdSpec::Range(942000, 942999)],
            &["/api/upload", "/static/"],
            &[],
        ),
        exclusion(
            &[RuleIdSpec::One(932100)],
            &["/a.b"],
            &["ARGS:cmd", "request_headers:User-Agent"],
        ),
        exclusion(&[], &["/login"], &["ARGS:password"]),
    ];
    let r = render(&spec);
    assert_eq!(
        rule_text(&r.before, 10000),
        "SecRule REQUEST_FILENAME \"@rx ^(?:/api/upload(?:/|$)|/static/)\" \
         \"id:10000,phase:1,pass,nolog,t:none,t:urlDecodeUni,t:normalizePath,\
         ctl:ruleRemoveById=942100,ctl:ruleRemoveById=942000-942999\""
    );
    assert!(rule_text(&r.before, 10001).ends_with(
        "\"@rx ^(?:/a\\.b(?:/|$))\" \"id:10001,phase:1,pass,nolog,t:none,t:urlDecodeUni,\
         t:normalizePath,ctl:ruleRemoveTargetById=932100;ARGS:cmd,\
         ctl:ruleRemoveTargetById=932100;REQUEST_HEADERS:User-Agent\""
    ));
    assert!(
        rule_text(&r.before, 10002)
            .ends_with("ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:password\"")
    );
    assert!(r.after.is_empty());
    let rules: Vec<_> = parse("before", &r.before)
        .into_iter()
        .filter_map(|d| match d.directive {
            Directive::Rule(rule) => Some(rule),
            _ => None,
        })
        .filter(|r| r.variables[0].name == "REQUEST_FILENAME")
        .collect();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].operator.name, "rx");
    assert_eq!(
        rules[0].operator.argument,
        "^(?:/api/upload(?:/|$)|/static/)"
    );
    let ctls: Vec<&str> = rules[1]
        .actions
        .iter()
        .filter(|a| a.name == "ctl")
        .filter_map(|a| a.value.as_deref())
        .collect();
    assert_eq!(
        ctls,
        [
            "ruleRemoveTargetById=932100;ARGS:cmd",
            "ruleRemoveTargetById=932100;REQUEST_HEADERS:User-Agent"
        ]
    );
}

#[test]
fn exclusions_without_paths_change_the_rules_after_the_crs() {
    let mut spec = WafSpec::with_mode(WafMode::DetectionOnly);
    spec.exclusions = vec![
        exclusion(
            &[RuleIdSpec::One(920350), RuleIdSpec::Range(942000, 942999)],
            &[],
            &[],
        ),
        exclusion(
            &[RuleIdSpec::Range(941000, 941999)],
            &[],
            &["ARGS:html", "ARGS:/^json\\.body/"],
        ),
        exclusion(&[], &[], &["REQUEST_COOKIES:session"]),
    ];
    let r = render(&spec);
    assert_eq!(
        r.after,
        "SecRuleRemoveById 920350 942000-942999\n\
         SecRuleUpdateTargetById 941000-941999 \"!ARGS:html|!ARGS:/^json\\.body/\"\n\
         SecRuleUpdateTargetByTag \"OWASP_CRS\" \"!REQUEST_COOKIES:session\"\n"
    );
    let directives: Vec<Directive> = parse("after", &r.after)
        .into_iter()
        .map(|d| d.directive)
        .collect();
    assert!(matches!(&directives[0], Directive::RemoveById(ids)
        if ids == &[IdRange { first: 920350, last: 920350 }, IdRange { first: 942000, last: 942999 }]));
    match &directives[1] {
        Directive::UpdateTargetById {
            ids,
            targets,
            replaced,
        } => {
            assert_eq!(
                ids,
                &[IdRange {
                    first: 941000,
                    last: 941999
                }]
            );
            assert!(targets.iter().all(|t| t.exclude && t.name == "ARGS"));
            assert_eq!(targets.len(), 2);
            assert!(replaced.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&directives[2], Directive::UpdateTargetByTag { tag, targets }
        if tag == "OWASP_CRS" && targets[0].name == "REQUEST_COOKIES")
    );
}

/// What a path exclusion covers, written plainly.
fn covers(path: &str, request: &str) -> bool {
    if path.ends_with('/') {
        request.starts_with(path)
    } else {
        request == path
            || request
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

fn valid_spec() -> impl Strategy<Value = WafSpec> {
    let id = prop_oneof![
        (1u32..999_999).prop_map(RuleIdSpec::One),
        (1u32..999_999, 0u32..1000).prop_map(|(a, n)| RuleIdSpec::Range(a, a + n)),
    ];
    let exclusion = (
        proptest::collection::vec(id, 0..3),
        proptest::collection::vec("/[a-z0-9._~!$&'()*+,;=:@-]{0,6}(/[a-z0-9.]{0,4})?/?", 0..3),
        proptest::collection::vec(
            prop_oneof![
                "(ARGS|REQUEST_COOKIES|REQUEST_HEADERS|ARGS_NAMES):[A-Za-z0-9_.-]{1,8}",
                "ARGS:/\\^[a-z]{1,4}\\\\\\.[a-z]{1,3}/",
                Just("REQUEST_BODY".to_owned()),
            ],
            0..3,
        ),
    )
        .prop_map(|(rule_ids, paths, targets)| WafExclusionSpec {
            rule_ids,
            paths,
            targets,
        });
    (
        prop_oneof![
            Just(WafMode::Off),
            Just(WafMode::DetectionOnly),
            Just(WafMode::Blocking)
        ],
        1u32..=4,
        proptest::collection::vec(exclusion, 0..5),
    )
        .prop_map(|(mode, paranoia, exclusions)| {
            let mut spec = WafSpec::with_mode(mode);
            spec.paranoia_level = Some(paranoia);
            spec.exclusions = exclusions;
            spec
        })
        .prop_filter("valid", |spec| {
            bulkhead_resources::validate::waf_spec(spec, &bulkhead_resources::FieldPath::root())
                .is_empty()
        })
}

proptest! {
    /// Every valid spec renders text the engine's parser takes, with one rule per path
    /// exclusion and one or more directives per exclusion without paths.
    #[test]
    fn every_valid_spec_renders_parsable_seclang(spec in valid_spec()) {
        let r = render(&spec);
        prop_assert_eq!(&render(&spec), &r, "rendering is deterministic");
        let before = parse("before", &r.before);
        let after = parse("after", &r.after);
        let scoped = spec.exclusions.iter().filter(|e| !e.paths.is_empty()).count();
        let exclusion_rules = before.iter().filter(|d| matches!(&d.directive,
            Directive::Rule(rule) if rule.variables[0].name == "REQUEST_FILENAME")).count();
        prop_assert_eq!(exclusion_rules, scoped);
        let everywhere = spec.exclusions.len() - scoped;
        prop_assert!(after.len() >= everywhere);
    }

    /// What validation accepts, the engine compiles: the rendered settings, recommended
    /// rules, setup actions and exclusions (without the CRS, for speed; the CRS itself is
    /// compiled with them in `waf::tests`).
    #[test]
    fn every_valid_spec_compiles(spec in valid_spec()) {
        let r = render(&spec);
        let built = bulkhead_waf::RuleSet::builder()
            .text("before", &r.before, Path::new("."))
            .and_then(|b| b.text("after", &r.after, Path::new(".")))
            .and_then(|b| b.build());
        prop_assert!(built.is_ok(), "{:?}\n{}{}", built.err(), r.before, r.after);
    }

    /// The path pattern matches exactly what the documentation says: the path itself and
    /// what lies below it, segment-wise.
    #[test]
    fn path_patterns_match_segment_wise(
        path in "/[a-z.()+*$]{0,4}(/[a-z.]{0,3})?/?",
        request in "/[a-z.()+*$/]{0,9}",
    ) {
        let re = regex::Regex::new(&path_regex(std::slice::from_ref(&path))).unwrap();
        prop_assert_eq!(re.is_match(&request), covers(&path, &request), "{} vs {}", path, request);
        let own = format!("{path}{}", if path.ends_with('/') { "x" } else { "" });
        prop_assert!(re.is_match(&own));
    }
}
