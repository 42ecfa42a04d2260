//! The parser against the real CRS v4.25.1 files in `../shared/corpus/crs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::ast::{Directive, Located, OperatorSpec, RawAction, RuleDecl, VarKey, VarSpec};
use super::parse_file;

/// The CRS folder, beside the repository root.
fn crs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/crs")
}

/// The files of a folder with the given extension, sorted.
fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

fn parse_all(files: &[PathBuf]) -> Vec<Located> {
    files
        .iter()
        .flat_map(|f| parse_file(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn rules() -> Vec<Located> {
    parse_all(&files_in(&crs_dir().join("rules"), "conf"))
}

/// The value of the first action called `name`.
fn action<'a>(rule: &'a RuleDecl, name: &str) -> Option<&'a str> {
    rule.actions
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_deref())
}

/// The rule with `id:ID` and the rules chained to it, in order.
fn rule_with_chain(directives: &[Located], id: &str) -> Vec<RuleDecl> {
    let rules: Vec<&RuleDecl> = directives
        .iter()
        .filter_map(|d| match &d.directive {
            Directive::Rule(r) => Some(r),
            _ => None,
        })
        .collect();
    let start = rules
        .iter()
        .position(|r| action(r, "id") == Some(id))
        .unwrap_or_else(|| panic!("rule {id} not found"));
    let mut out = vec![rules[start].clone()];
    while out
        .last()
        .is_some_and(|r| r.actions.iter().any(|a| a.name == "chain"))
    {
        out.push(rules[start + out.len()].clone());
    }
    out
}

fn act(name: &str, value: Option<&str>) -> RawAction {
    RawAction {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    }
}

fn var(exclude: bool, count: bool, name: &str, key: Option<VarKey>) -> VarSpec {
    VarSpec {
        exclude,
        count,
        name: name.to_owned(),
        key,
    }
}

#[test]
fn rule_files_parse_with_the_readme_counts() {
    let all = rules();
    let count = |f: fn(&Directive) -> bool| all.iter().filter(|d| f(&d.directive)).count();
    assert_eq!(count(|d| matches!(d, Directive::Rule(_))), 693);
    assert_eq!(count(|d| matches!(d, Directive::Action(_))), 7);
    assert_eq!(count(|d| matches!(d, Directive::Marker(_))), 30);
    assert_eq!(
        count(|d| matches!(d, Directive::UpdateTargetById { .. })),
        55
    );
    assert_eq!(
        count(|d| matches!(d, Directive::Setting { name, .. } if name == "SecComponentSignature")),
        1
    );
    assert_eq!(all.len(), 693 + 7 + 30 + 55 + 1);
    let ids: BTreeSet<&str> = all
        .iter()
        .filter_map(|d| match &d.directive {
            Directive::Rule(r) => action(r, "id"),
            Directive::Action(a) => a.iter().find(|a| a.name == "id")?.value.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 627);
}

#[test]
fn setup_and_ci_files_parse() {
    let dir = crs_dir();
    let setup = parse_all(&[dir.join("crs-setup.conf.example")]);
    let defaults = setup
        .iter()
        .filter(|d| matches!(d.directive, Directive::DefaultAction(_)));
    assert_eq!(defaults.count(), 5);
    let ci = parse_all(&files_in(&dir.join("ci-setup"), "conf"));
    assert!(ci.iter().any(|d| d.directive
        == Directive::Setting {
            name: "SecRuleEngine".into(),
            args: vec!["DetectionOnly".into()]
        }));
    assert!(ci.iter().any(|d| d.directive
        == Directive::Setting {
            name: "SecAuditLogRelevantStatus".into(),
            args: vec!["^(?:5|4(?!04))".into()]
        }));
}

#[test]
fn rule_942100_field_by_field() {
    let all = rules();
    let [rule] = &rule_with_chain(&all, "942100")[..] else {
        panic!("942100 is not chained")
    };
    let header = |k: &str| Some(VarKey::Name(k.to_owned()));
    assert_eq!(
        rule.variables,
        vec![
            var(false, false, "REQUEST_COOKIES", None),
            var(false, false, "REQUEST_COOKIES_NAMES", None),
            var(false, false, "REQUEST_HEADERS", header("User-Agent")),
            var(false, false, "REQUEST_HEADERS", header("Referer")),
            var(false, false, "ARGS_NAMES", None),
            var(false, false, "ARGS", None),
            var(false, false, "XML", header("/*")),
            var(false, false, "XML", header("//@*")),
        ]
    );
    let op = OperatorSpec {
        negated: false,
        name: "detectSQLi".into(),
        argument: String::new(),
    };
    assert_eq!(rule.operator, op);
    assert_eq!(rule.actions.len(), 23);
    assert_eq!(rule.actions[0], act("id", Some("942100")));
    assert_eq!(rule.actions[2], act("block", None));
    assert_eq!(rule.actions[5], act("t", Some("utf8toUnicode")));
    assert_eq!(
        action(rule, "logdata"),
        Some("Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}")
    );
    assert_eq!(rule.actions[20], act("multimatch", None));
    assert_eq!(
        rule.actions[22],
        act(
            "setvar",
            Some("tx.sql_injection_score=+%{tx.critical_anomaly_score}")
        )
    );
}

#[test]
fn chained_rule_920420_with_macros() {
    let all = rules();
    let chain = rule_with_chain(&all, "920420");
    assert_eq!(chain.len(), 2);
    let (head, tail) = (&chain[0], &chain[1]);
    assert_eq!(head.operator.argument, r"^[^;\s]+");
    assert_eq!(action(head, "setvar"), Some("tx.content_type=|%{tx.0}|"));
    assert_eq!(head.actions.last(), Some(&act("chain", None)));
    assert_eq!(
        tail.variables,
        vec![var(
            false,
            false,
            "TX",
            Some(VarKey::Name("content_type".into()))
        )]
    );
    let op = OperatorSpec {
        negated: true,
        name: "within".into(),
        argument: "%{tx.allowed_request_content_type}".into(),
    };
    assert_eq!(tail.operator, op);
    assert_eq!(
        tail.actions,
        vec![
            act("t", Some("lowercase")),
            act(
                "setvar",
                Some("tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}")
            ),
        ]
    );
}

#[test]
fn escaped_quotes_in_operators_and_messages() {
    let all = rules();
    let rule = &rule_with_chain(&all, "920480")[0];
    assert_eq!(rule.operator.argument, r#"charset\s*=\s*["']?([^;"'\s]+)"#);
    let [rule] = &rule_with_chain(&all, "955350")[..] else {
        panic!("955350 is chained")
    };
    assert_eq!(
        rule.operator.argument,
        r#"<h1 style="margin-bottom: 0">webadmin.php</h1>"#
    );
    let upd = all.iter().find_map(|d| match &d.directive {
        Directive::UpdateTargetById { ids, targets, .. } if ids[0].first == 932240 => Some(targets),
        _ => None,
    });
    let want = var(
        true,
        false,
        "REQUEST_COOKIES",
        Some(VarKey::Regex(r"^_ga(?:_\w+)?$".into())),
    );
    assert_eq!(upd, Some(&vec![want]));
}

#[test]
fn ci_rules_200003_and_200007() {
    let path = crs_dir().join("ci-setup/modsecurity.ci.conf");
    let all = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let [rule] = &rule_with_chain(&all, "200003")[..] else {
        panic!("200003 is chained")
    };
    let want_msg = "Multipart request body failed strict validation:     \
        PE %{REQBODY_PROCESSOR_ERROR},     BQ %{MULTIPART_BOUNDARY_QUOTED},     \
        BW %{MULTIPART_BOUNDARY_WHITESPACE},     DB %{MULTIPART_DATA_BEFORE},     \
        DA %{MULTIPART_DATA_AFTER},     HF %{MULTIPART_HEADER_FOLDING},     \
        LF %{MULTIPART_LF_LINE},     SM %{MULTIPART_MISSING_SEMICOLON},     \
        IQ %{MULTIPART_INVALID_QUOTING},     IP %{MULTIPART_INVALID_PART},     \
        IH %{MULTIPART_INVALID_HEADER_FOLDING},     FL %{MULTIPART_FILE_LIMIT_EXCEEDED}";
    assert_eq!(action(rule, "msg"), Some(want_msg));
    assert_eq!(rule.actions.len(), 7);
    assert_eq!(rule.actions[5], act("status", Some("400")));
    let op = OperatorSpec {
        negated: true,
        name: "eq".into(),
        argument: "0".into(),
    };
    assert_eq!(rule.operator, op);
    let located = all
        .iter()
        .find(|d| matches!(&d.directive, Directive::Rule(r) if r == rule));
    assert_eq!(located.map(|d| d.at.line), Some(56));
    assert!(located.is_some_and(|d| d.at.file.ends_with("ci-setup/modsecurity.ci.conf")));

    let [rule] = &rule_with_chain(&all, "200007")[..] else {
        panic!("200007 is chained")
    };
    assert_eq!(rule.variables, vec![var(false, true, "ARGS", None)]);
    assert_eq!(rule.actions[1], act("phase", Some("2")));
    let [rule] = &rule_with_chain(&all, "200005")[..] else {
        panic!("200005 is chained")
    };
    assert_eq!(
        rule.variables,
        vec![var(false, false, "TX", Some(VarKey::Regex("^MSC_".into())))]
    );
    let [rule] = &rule_with_chain(&all, "200000")[..] else {
        panic!("200000 is chained")
    };
    let op = OperatorSpec {
        negated: false,
        name: "rx".into(),
        argument: r"^(?:application(?:/soap\+|/)|text/)xml".into(),
    };
    assert_eq!(rule.operator, op);
}
