//! A rule's operator: `@rx …`, `!@rx …`, `@detectSQLi`, or a bare pattern meaning `@rx`.

use super::ast::OperatorSpec;

/// Parses the operator word of a `SecRule` (its quotes already removed).
pub(crate) fn parse_operator(text: &str) -> Result<OperatorSpec, String> {
    let (negated, body) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some(named) = body.strip_prefix('@') else {
        return Ok(OperatorSpec {
            negated,
            name: "rx".to_owned(),
            argument: body.to_owned(),
        });
    };
    let name_end = named
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(named.len());
    let (name, after) = named.split_at(name_end);
    if name.is_empty() {
        return Err(format!("expected an operator name after `@` in `{text}`"));
    }
    let argument = match after.chars().next() {
        None => "",
        Some(' ' | '\t') => &after[1..],
        Some(c) => {
            return Err(format!(
                "expected a space after the operator name `@{name}`, found `{c}`"
            ));
        }
    };
    let spec = OperatorSpec {
        negated,
        name: name.to_owned(),
        argument: argument.to_owned(),
    };
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(negated: bool, name: &str, argument: &str) -> OperatorSpec {
        OperatorSpec {
            negated,
            name: name.to_owned(),
            argument: argument.to_owned(),
        }
    }

    #[test]
    fn named_negated_and_bare() {
        assert_eq!(parse_operator("@rx ^a b "), Ok(op(false, "rx", "^a b ")));
        assert_eq!(
            parse_operator("!@pmFromFile x.data"),
            Ok(op(true, "pmFromFile", "x.data"))
        );
        assert_eq!(
            parse_operator("@detectSQLi"),
            Ok(op(false, "detectSQLi", ""))
        );
        assert_eq!(parse_operator("@eq  0"), Ok(op(false, "eq", " 0")));
        assert_eq!(
            parse_operator("^(?:application/json)"),
            Ok(op(false, "rx", "^(?:application/json)"))
        );
        assert_eq!(parse_operator("!^a"), Ok(op(true, "rx", "^a")));
        assert_eq!(parse_operator(""), Ok(op(false, "rx", "")));
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(
            parse_operator("@ x")
                .unwrap_err()
                .contains("expected an operator name")
        );
        assert!(
            parse_operator("@rx/a/")
                .unwrap_err()
                .contains("expected a space after")
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_operator(&text);
        }

        #[test]
        fn bare_patterns_are_rx(pattern in "[^!@][^\n]{0,30}") {
            prop_assert_eq!(parse_operator(&pattern), Ok(op(false, "rx", &pattern)));
        }
    }
}
