//! A directive's words to its AST: dispatch on the (case-insensitive) directive name.

use super::actions::parse_actions;
use super::ast::{Directive, IdRange, RuleDecl, VarSpec};
use super::operator::parse_operator;
use super::variables::parse_variables;

/// What one logical line means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    /// A directive for the output.
    Directive(Directive),
    /// `Include PATTERN`: the caller reads the files.
    Include(String),
}

/// Interprets the words of one logical line (the first word is the directive name).
pub(crate) fn build(words: Vec<String>) -> Result<Parsed, String> {
    let mut words = words.into_iter();
    let Some(name) = words.next() else {
        return Err("expected a directive".to_owned());
    };
    let args: Vec<String> = words.collect();
    let directive = match name.to_ascii_lowercase().as_str() {
        "include" => return Ok(Parsed::Include(one(&name, args, "a file name or pattern")?)),
        "secrule" => Directive::Rule(rule(args)?),
        "secaction" => Directive::Action(parse_actions(&one(&name, args, "an action list")?)?),
        "secdefaultaction" => {
            Directive::DefaultAction(parse_actions(&one(&name, args, "an action list")?)?)
        }
        "secmarker" => Directive::Marker(one(&name, args, "a marker name")?),
        "secruleupdatetargetbyid" => update_target_by_id(args)?,
        "secruleupdatetargetbytag" => {
            let [tag, targets] = exactly(&name, args, "a tag and a variable list")?;
            Directive::UpdateTargetByTag {
                tag,
                targets: parse_variables(&targets)?,
            }
        }
        "secruleupdateactionbyid" => {
            let [id, actions] = exactly(&name, args, "a rule id and an action list")?;
            Directive::UpdateActionById {
                id: parse_id(&id)?,
                actions: parse_actions(&actions)?,
            }
        }
        "secruleremovebyid" => Directive::RemoveById(id_ranges(&name, &args)?),
        "secruleremovebytag" => Directive::RemoveByTag(one(&name, args, "a tag pattern")?),
        "secruleremovebymsg" => Directive::RemoveByMsg(one(&name, args, "a message pattern")?),
        lower if lower.starts_with("sec") => Directive::Setting { name, args },
        _ => {
            return Err(format!(
                "unknown directive `{name}`: expected a `Sec…` directive or `Include`"
            ));
        }
    };
    Ok(Parsed::Directive(directive))
}

/// `SecRule VARIABLES OPERATOR [ACTIONS]`.
fn rule(args: Vec<String>) -> Result<RuleDecl, String> {
    if args.len() < 2 || args.len() > 3 {
        return Err(format!(
            "SecRule needs a variable list and an operator, optionally followed by an action \
             list; found {} argument(s) (is a quote or a line-continuation backslash missing?)",
            args.len()
        ));
    }
    let variables = parse_variables(&args[0])?;
    let operator = parse_operator(&args[1])?;
    let actions = match args.get(2) {
        Some(list) => parse_actions(list)?,
        None => Vec::new(),
    };
    Ok(RuleDecl {
        variables,
        operator,
        actions,
    })
}

/// `SecRuleUpdateTargetById IDS TARGETS [REPLACED]`.
fn update_target_by_id(args: Vec<String>) -> Result<Directive, String> {
    if args.len() < 2 || args.len() > 3 {
        return Err(format!(
            "SecRuleUpdateTargetById needs rule ids and a variable list, optionally followed \
             by the variable they replace; found {} argument(s)",
            args.len()
        ));
    }
    let ids = id_ranges("SecRuleUpdateTargetById", &args[..1])?;
    let targets = parse_variables(&args[1])?;
    let replaced = match args.get(2) {
        Some(text) => Some(single_variable(text)?),
        None => None,
    };
    Ok(Directive::UpdateTargetById {
        ids,
        targets,
        replaced,
    })
}

/// The third argument of `SecRuleUpdateTargetById`: exactly one variable.
fn single_variable(text: &str) -> Result<VarSpec, String> {
    let mut vars = parse_variables(text)?;
    match vars.pop() {
        Some(var) if vars.is_empty() => Ok(var),
        _ => Err(format!(
            "expected a single variable to replace, found `{text}`"
        )),
    }
}

/// Ids and ranges from several arguments, each of which may hold a list separated by
/// commas or whitespace (`942100 942200-942299,942300`).
fn id_ranges(directive: &str, args: &[String]) -> Result<Vec<IdRange>, String> {
    let mut ranges = Vec::new();
    for piece in args
        .iter()
        .flat_map(|a| a.split(|c: char| c == ',' || c.is_whitespace()))
    {
        if piece.is_empty() {
            continue;
        }
        let range = match piece.split_once('-') {
            Some((first, last)) => IdRange {
                first: parse_id(first)?,
                last: parse_id(last)?,
            },
            None => {
                let id = parse_id(piece)?;
                IdRange {
                    first: id,
                    last: id,
                }
            }
        };
        if range.first > range.last {
            return Err(format!(
                "the id range `{piece}` is empty: its first id is larger"
            ));
        }
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err(format!(
            "{directive} needs at least one rule id or id range"
        ));
    }
    Ok(ranges)
}

/// A rule id: a non-negative decimal number that fits 32 bits.
fn parse_id(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a rule id or an id range `first-last`, found `{text}`"
        ));
    }
    digits
        .parse()
        .map_err(|_| format!("the rule id `{text}` is too large"))
}

/// The single argument of a one-argument directive.
fn one(directive: &str, args: Vec<String>, what: &str) -> Result<String, String> {
    let [arg] = exactly(directive, args, what)?;
    Ok(arg)
}

/// Exactly `N` arguments, or an error naming what the directive expects.
fn exactly<const N: usize>(
    directive: &str,
    args: Vec<String>,
    what: &str,
) -> Result<[String; N], String> {
    let found = args.len();
    let hint = if found > N {
        " (quote an argument that contains spaces)"
    } else {
        ""
    };
    args.try_into()
        .map_err(|_| format!("{directive} needs {what}; found {found} argument(s){hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ast::{OperatorSpec, RawAction, VarKey};
    use crate::parse::words::split_words;
    use proptest::prelude::*;

    fn parse(line: &str) -> Result<Parsed, String> {
        build(split_words(line)?)
    }

    fn directive(line: &str) -> Directive {
        match parse(line) {
            Ok(Parsed::Directive(d)) => d,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn range(first: u32, last: u32) -> IdRange {
        IdRange { first, last }
    }

    #[test]
    fn rule_with_and_without_actions() {
        let d = directive("secrule ARGS \"@rx a\"");
        let want = RuleDecl {
            variables: vec![VarSpec {
                exclude: false,
                count: false,
                name: "ARGS".into(),
                key: None,
            }],
            operator: OperatorSpec {
                negated: false,
                name: "rx".into(),
                argument: "a".into(),
            },
            actions: vec![],
        };
        assert_eq!(d, Directive::Rule(want.clone()));
        let d = directive("SecRule ARGS \"@rx a\" \"id:1,pass\"");
        let actions = vec![
            RawAction {
                name: "id".into(),
                value: Some("1".into()),
            },
            RawAction {
                name: "pass".into(),
                value: None,
            },
        ];
        assert_eq!(d, Directive::Rule(RuleDecl { actions, ..want }));
    }

    #[test]
    fn simple_directives() {
        assert_eq!(
            directive("SecMarker \"END-X\""),
            Directive::Marker("END-X".into())
        );
        assert_eq!(
            directive("SECMARKER END-X"),
            Directive::Marker("END-X".into())
        );
        assert_eq!(directive("SecAction \"\""), Directive::Action(vec![]));
        assert_eq!(
            directive("SecRuleRemoveByTag \"attack-sqli\""),
            Directive::RemoveByTag("attack-sqli".into())
        );
        assert_eq!(
            directive("SecRuleRemoveByMsg \"a b\""),
            Directive::RemoveByMsg("a b".into())
        );
        assert_eq!(
            directive("SecResponseBodyMimeType text/plain \"text/html\""),
            Directive::Setting {
                name: "SecResponseBodyMimeType".into(),
                args: vec!["text/plain".into(), "text/html".into()]
            }
        );
        assert_eq!(
            parse("include \"a b/*.conf\""),
            Ok(Parsed::Include("a b/*.conf".into()))
        );
    }

    #[test]
    fn id_lists_and_ranges() {
        assert_eq!(
            directive("SecRuleRemoveById 1 5-9 \"10,11 12-12\""),
            Directive::RemoveById(vec![
                range(1, 1),
                range(5, 9),
                range(10, 10),
                range(11, 11),
                range(12, 12)
            ])
        );
        let d = directive(
            "SecRuleUpdateTargetById 942100-942200,942300 \"!ARGS:foo|!REQUEST_COOKIES:/^_ga/\" ARGS",
        );
        let Directive::UpdateTargetById {
            ids,
            targets,
            replaced,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(ids, vec![range(942100, 942200), range(942300, 942300)]);
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].key, Some(VarKey::Regex("^_ga".into())));
        assert_eq!(replaced.map(|v| v.name), Some("ARGS".into()));
        assert_eq!(
            directive("SecRuleUpdateActionById 949110 \"t:none,drop\""),
            Directive::UpdateActionById {
                id: 949110,
                actions: vec![
                    RawAction {
                        name: "t".into(),
                        value: Some("none".into())
                    },
                    RawAction {
                        name: "drop".into(),
                        value: None
                    }
                ]
            }
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = |s: &str| parse(s).unwrap_err();
        assert!(err("SecRule ARGS").contains("SecRule needs a variable list and an operator"));
        assert!(err("SecRule ARGS x y z").contains("found 4 argument(s)"));
        assert!(err("Foo bar").contains("unknown directive `Foo`"));
        assert!(err("SecRuleRemoveById 5-1").contains("is empty"));
        assert!(err("SecRuleRemoveById abc").contains("expected a rule id"));
        assert!(err("SecRuleRemoveById 99999999999").contains("too large"));
        assert!(err("SecRuleRemoveById").contains("at least one rule id"));
        assert!(err("SecMarker a b").contains("SecMarker needs a marker name; found 2"));
        assert!(err("SecRuleUpdateTargetById 1 ARGS A|B").contains("single variable"));
        assert!(err("SecRuleUpdateActionById 1-2 pass").contains("expected a rule id"));
    }

    proptest! {
        #[test]
        fn never_panics(words in proptest::collection::vec("\\PC{0,20}", 0..5)) {
            let _ = build(words);
        }

        #[test]
        fn id_ranges_round_trip(pairs in proptest::collection::vec((0u32..1000, 0u32..1000), 1..6)) {
            let text: Vec<String> = pairs.iter().map(|(a, b)| {
                let (a, b) = (a.min(b), a.max(b));
                if a == b { a.to_string() } else { format!("{a}-{b}") }
            }).collect();
            let got = id_ranges("SecRuleRemoveById", &[text.join(",")]);
            let want: Vec<IdRange> = pairs.iter().map(|(a, b)| range(*a.min(b), *a.max(b))).collect();
            prop_assert_eq!(got, Ok(want));
        }
    }
}
