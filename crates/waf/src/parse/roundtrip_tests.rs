//! Property tests over whole texts: generated directives rendered to SecLang parse back to
//! the same AST, and arbitrary text never makes the parser panic.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use super::ast::{Directive, IdRange, OperatorSpec, RawAction, RuleDecl, VarKey, VarSpec};
use super::parse_str;

/// Printable text without backslashes, plus backslash-letter pairs (regex escapes), up to
/// `$n` units: a lone backslash before a quote or at the end cannot be written in SecLang.
macro_rules! text {
    ($n:literal) => {
        concat!("([ -\\[\\]-~é]|\\\\[a-z]){0,", $n, "}")
    };
}

/// Names of the directives the parser knows; a generated setting must not use one.
const KNOWN: [&str; 11] = [
    "include",
    "secrule",
    "secaction",
    "secdefaultaction",
    "secmarker",
    "secruleupdatetargetbyid",
    "secruleupdatetargetbytag",
    "secruleupdateactionbyid",
    "secruleremovebyid",
    "secruleremovebytag",
    "secruleremovebymsg",
];

fn var_key() -> impl Strategy<Value = Option<VarKey>> {
    prop_oneof![
        Just(None),
        "[A-Za-z0-9_.;-]{1,10}".prop_map(|k| Some(VarKey::Name(k))),
        "[A-Za-z0-9 |_,:]{0,10}".prop_map(|k| Some(VarKey::Name(k))),
        "([a-z0-9^$.*+?()|/ ]|\\\\[dw]){0,10}".prop_map(|k| Some(VarKey::Regex(k))),
    ]
}

fn var_spec() -> impl Strategy<Value = VarSpec> {
    let name = "[A-Z][A-Z0-9_]{0,12}".prop_filter("XML keys are XPath", |n| n != "XML");
    (0..3u8, name, var_key()).prop_map(|(prefix, name, key)| VarSpec {
        exclude: prefix == 1,
        count: prefix == 2,
        name,
        key,
    })
}

fn render_var(v: &VarSpec, lower: bool) -> String {
    let prefix = if v.exclude {
        "!"
    } else if v.count {
        "&"
    } else {
        ""
    };
    let name = if lower {
        v.name.to_ascii_lowercase()
    } else {
        v.name.clone()
    };
    let key = match &v.key {
        None => String::new(),
        Some(VarKey::Name(k)) if k.contains([' ', '|', ',', ':']) || k.is_empty() => {
            format!(":'{k}'")
        }
        Some(VarKey::Name(k)) => format!(":{k}"),
        Some(VarKey::Regex(r)) if r.contains(['/', ' ']) => format!(":'/{r}/'"),
        Some(VarKey::Regex(r)) => format!(":/{r}/"),
    };
    format!("{prefix}{name}{key}")
}

/// A variable list as one SecLang word (quoted when it holds whitespace).
fn render_vars(vars: &[VarSpec], lower: bool) -> String {
    let list: Vec<String> = vars.iter().map(|v| render_var(v, lower)).collect();
    let list = list.join("|");
    if list.contains(' ') {
        format!("\"{list}\"")
    } else {
        list
    }
}

fn operator() -> impl Strategy<Value = OperatorSpec> {
    let name = prop_oneof!["[a-zA-Z][a-zA-Z0-9]{0,12}", Just("rx".to_owned())];
    (any::<bool>(), name, text!(20)).prop_map(|(negated, name, argument)| OperatorSpec {
        negated,
        name,
        argument,
    })
}

fn render_operator(op: &OperatorSpec, bare: bool) -> String {
    let not = if op.negated { "!" } else { "" };
    let text = if bare && op.name == "rx" && !op.argument.starts_with(['@', '!']) {
        format!("{not}{}", op.argument)
    } else if op.argument.is_empty() && !bare {
        format!("{not}@{}", op.name)
    } else {
        format!("{not}@{} {}", op.name, op.argument)
    };
    quote(&text)
}

fn action() -> impl Strategy<Value = RawAction> {
    let value = prop_oneof![Just(None), text!(15).prop_map(Some)];
    ("[a-z][a-z0-9_]{0,10}", value).prop_map(|(name, value)| RawAction { name, value })
}

fn render_action(a: &RawAction, quote_all: bool) -> String {
    match &a.value {
        None => a.name.clone(),
        Some(v) if !quote_all && is_plain(v) => format!("{}:{v}", a.name),
        Some(v) => format!("{}:'{}'", a.name, v.replace('\'', "\\'")),
    }
}

/// Whether an action value can be written without quotes.
fn is_plain(v: &str) -> bool {
    !v.is_empty() && !v.contains(',') && !v.starts_with(['\'', ' ']) && !v.ends_with(' ')
}

/// An action list as one double-quoted SecLang word, with varied separators.
fn render_actions(actions: &[RawAction], quote_all: bool, seps: &[&str]) -> String {
    let mut text = String::new();
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            text.push_str(seps[i % seps.len()]);
        }
        text.push_str(&render_action(a, quote_all));
    }
    quote(&text)
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\\""))
}

fn ranges() -> impl Strategy<Value = Vec<IdRange>> {
    let range = (0u32..2_000_000, 0u32..3).prop_map(|(first, len)| IdRange {
        first,
        last: first + len,
    });
    proptest::collection::vec(range, 1..4)
}

fn render_ranges(ranges: &[IdRange]) -> String {
    let list: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        })
        .collect();
    list.join(",")
}

fn word() -> impl Strategy<Value = String> {
    text!(12)
}

fn directive() -> impl Strategy<Value = Directive> {
    let vars = || proptest::collection::vec(var_spec(), 1..5);
    let actions = || proptest::collection::vec(action(), 0..6);
    prop_oneof![
        (vars(), operator(), actions()).prop_map(|(variables, operator, actions)| {
            Directive::Rule(RuleDecl {
                variables,
                operator,
                actions,
            })
        }),
        actions().prop_map(Directive::Action),
        actions().prop_map(Directive::DefaultAction),
        "[A-Za-z0-9_-]{1,20}".prop_map(Directive::Marker),
        (ranges(), vars(), proptest::option::of(var_spec())).prop_map(
            |(ids, targets, replaced)| {
                Directive::UpdateTargetById {
                    ids,
                    targets,
                    replaced,
                }
            }
        ),
        (word(), vars()).prop_map(|(tag, targets)| Directive::UpdateTargetByTag { tag, targets }),
        (any::<u32>(), actions())
            .prop_map(|(id, actions)| Directive::UpdateActionById { id, actions }),
        ranges().prop_map(Directive::RemoveById),
        word().prop_map(Directive::RemoveByTag),
        word().prop_map(Directive::RemoveByMsg),
        (
            "Sec[A-Z][A-Za-z]{0,15}",
            proptest::collection::vec(word(), 0..4)
        )
            .prop_filter("not a known directive", |(n, _)| !KNOWN
                .contains(&n.to_ascii_lowercase().as_str()))
            .prop_map(|(name, args)| Directive::Setting { name, args }),
    ]
}

/// Rendering choices that must not change the parse.
#[derive(Debug, Clone)]
struct Style {
    lower: bool,
    bare: bool,
    quote_all: bool,
    seps: Vec<&'static str>,
    gap: &'static str,
}

fn style() -> impl Strategy<Value = Style> {
    let sep = select(vec![",", ", ", " , ", ",\\\n    ", ",\t"]);
    let gap = select(vec![" ", "\t", " \\\n    ", " \\\n"]);
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(sep, 1..4),
        gap,
    )
        .prop_map(|(lower, bare, quote_all, seps, gap)| Style {
            lower,
            bare,
            quote_all,
            seps,
            gap,
        })
}

fn render(d: &Directive, s: &Style) -> String {
    let name = match d {
        Directive::Rule(_) => "SecRule",
        Directive::Action(_) => "SecAction",
        Directive::DefaultAction(_) => "SecDefaultAction",
        Directive::Marker(_) => "SecMarker",
        Directive::UpdateTargetById { .. } => "SecRuleUpdateTargetById",
        Directive::UpdateTargetByTag { .. } => "SecRuleUpdateTargetByTag",
        Directive::UpdateActionById { .. } => "SecRuleUpdateActionById",
        Directive::RemoveById(_) => "SecRuleRemoveById",
        Directive::RemoveByTag(_) => "SecRuleRemoveByTag",
        Directive::RemoveByMsg(_) => "SecRuleRemoveByMsg",
        // A setting's name is kept as written, so it is not case-folded here.
        Directive::Setting { name, .. } => name,
    };
    let name = match d {
        Directive::Setting { .. } => name.to_owned(),
        _ if s.lower => name.to_ascii_lowercase(),
        _ => name.to_owned(),
    };
    let mut words = vec![name];
    words.extend(arguments(d, s));
    words.join(s.gap)
}

/// The rendered arguments of a directive.
fn arguments(d: &Directive, s: &Style) -> Vec<String> {
    let acts = |a: &[RawAction]| render_actions(a, s.quote_all, &s.seps);
    match d {
        Directive::Rule(r) => {
            let mut w = vec![
                render_vars(&r.variables, s.lower),
                render_operator(&r.operator, s.bare),
            ];
            if !r.actions.is_empty() || s.quote_all {
                w.push(acts(&r.actions));
            }
            w
        }
        Directive::Action(a) | Directive::DefaultAction(a) => vec![acts(a)],
        Directive::Marker(m) => vec![if s.bare { m.clone() } else { quote(m) }],
        Directive::UpdateTargetById {
            ids,
            targets,
            replaced,
        } => {
            let mut w = vec![render_ranges(ids), render_vars(targets, s.lower)];
            w.extend(
                replaced
                    .iter()
                    .map(|r| render_vars(std::slice::from_ref(r), s.lower)),
            );
            w
        }
        Directive::UpdateTargetByTag { tag, targets } => {
            vec![quote(tag), render_vars(targets, s.lower)]
        }
        Directive::UpdateActionById { id, actions } => vec![id.to_string(), acts(actions)],
        Directive::RemoveById(ids) => vec![render_ranges(ids)],
        Directive::RemoveByTag(t) | Directive::RemoveByMsg(t) => vec![quote(t)],
        Directive::Setting { args, .. } => args.iter().map(|a| quote(a)).collect(),
    }
}

/// Text made of SecLang fragments, more likely than random text to reach deep paths.
fn fragments() -> impl Strategy<Value = String> {
    let pieces = vec![
        "SecRule ",
        "SecAction ",
        "SecMarker ",
        "SecRuleRemoveById ",
        "SecRuleUpdateTargetById ",
        "SecFoo ",
        "Foo ",
        "\"",
        "'",
        "\\",
        "\\\n",
        "\n",
        "#",
        " ",
        "|",
        "!",
        "&",
        ":",
        ",",
        "@rx ",
        "@",
        "ARGS",
        "TX:",
        "/",
        "id:1",
        "msg:'",
        "setvar:",
        "1-2",
        "%{tx.x}",
        "é",
    ];
    proptest::collection::vec(select(pieces), 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rendered_directives_parse_back(d in directive(), s in style(), blank in "[ \t\n]{0,3}") {
        let text = format!("{blank}{}\n", render(&d, &s));
        let parsed = parse_str("<gen>", &text, Path::new("/nonexistent"))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.len(), 1, "{}", text);
        prop_assert_eq!(&parsed[0].directive, &d, "{}", text);
        prop_assert_eq!(parsed[0].at.line, 1 + blank.matches('\n').count());
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = parse_str("<any>", &text, Path::new("/nonexistent"));
    }

    #[test]
    fn never_panics_on_seclang_fragments(text in fragments()) {
        let _ = parse_str("<any>", &text, Path::new("/nonexistent"));
    }
}
