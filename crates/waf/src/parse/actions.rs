//! Action lists: `id:1, phase:2,t:none,msg:'a, b',setvar:'tx.x=+%{tx.y}',chain`.
//!
//! Actions are separated by commas with optional whitespace around them. An action is a
//! name, optionally followed by `:` and a value. A value that starts with `'` runs to the
//! closing `'` (commas and spaces included; `\'` stands for a quote, other backslashes are
//! kept), and the quotes are removed; any other value runs to the next comma and is trimmed.
//! Empty items (`a,,b`, a trailing comma) are skipped, as ModSecurity v2 does.

use super::ast::RawAction;
use super::words::{read_quoted, unterminated};

/// Parses an action list; an empty or blank list gives no actions.
pub(crate) fn parse_actions(list: &str) -> Result<Vec<RawAction>, String> {
    let mut actions = Vec::new();
    let mut rest = list.trim_start();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
            continue;
        }
        let (action, after) = parse_one(rest)?;
        actions.push(action);
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => after,
            None => {
                return Err(format!(
                    "expected `,` after the value of action `{}`, found `{after}`",
                    actions.last().map_or("", |a: &RawAction| a.name.as_str())
                ));
            }
        };
    }
    Ok(actions)
}

/// Parses one action at the start of `text`; returns it and the text after it.
fn parse_one(text: &str) -> Result<(RawAction, &str), String> {
    let name_end = text.find([':', ',']).unwrap_or(text.len());
    let name = text[..name_end].trim_end();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("expected an action name, found `{name}`"));
    }
    let name = name.to_ascii_lowercase();
    let Some(value_text) = text[name_end..].strip_prefix(':') else {
        return Ok((RawAction { name, value: None }, &text[name_end..]));
    };
    let value_text = value_text.trim_start();
    let (value, rest) = match value_text.strip_prefix('\'') {
        Some(quoted) => read_quoted(quoted, '\'').ok_or_else(|| unterminated('\'', value_text))?,
        None => {
            let end = value_text.find(',').unwrap_or(value_text.len());
            (value_text[..end].trim_end().to_owned(), &value_text[end..])
        }
    };
    Ok((
        RawAction {
            name,
            value: Some(value),
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn act(name: &str, value: Option<&str>) -> RawAction {
        RawAction {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn parses_names_values_and_quotes() {
        let got = parse_actions(
            "id:'200007', phase:2,t:none,msg:'a, b',setvar:'tx.x=+%{tx.y}',Chain,\
             ctl:ruleRemoveTargetById=942100;ARGS:foo",
        );
        assert_eq!(
            got,
            Ok(vec![
                act("id", Some("200007")),
                act("phase", Some("2")),
                act("t", Some("none")),
                act("msg", Some("a, b")),
                act("setvar", Some("tx.x=+%{tx.y}")),
                act("chain", None),
                act("ctl", Some("ruleRemoveTargetById=942100;ARGS:foo")),
            ])
        );
    }

    #[test]
    fn escapes_and_empty_items() {
        let got = parse_actions(r"msg:'lama\'s\'hell \d', ,nolog,");
        assert_eq!(
            got,
            Ok(vec![
                act("msg", Some(r"lama's'hell \d")),
                act("nolog", None)
            ])
        );
        assert_eq!(parse_actions("  "), Ok(vec![]));
        assert_eq!(parse_actions("msg:"), Ok(vec![act("msg", Some(""))]));
        assert_eq!(
            parse_actions("msg: x y ,pass"),
            Ok(vec![act("msg", Some("x y")), act("pass", None)])
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = |s: &str| parse_actions(s).unwrap_err();
        assert!(err("msg:'abc").contains("unterminated quoted string"));
        assert!(err("msg:'a'b,pass").contains("expected `,` after the value of action `msg`"));
        assert!(err("id 1,pass").contains("expected an action name, found `id 1`"));
        assert!(err(":x").contains("expected an action name"));
    }

    proptest! {
        #[test]
        fn never_panics(list in "\\PC{0,60}") {
            let _ = parse_actions(&list);
        }
    }
}
