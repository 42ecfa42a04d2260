//! Macro expansion (`%{tx.score}`, `%{MATCHED_VAR}`, `%{rule.id}`) in action values and
//! operator arguments.

use std::borrow::Cow;

/// A value with macros, split once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Macro {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Var(MacroVar),
}

/// A variable reference inside `%{…}`: a collection (upper-cased) and an optional key
/// (lower-cased), e.g. `TX` + `critical_anomaly_score` or `MATCHED_VAR` without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MacroVar {
    /// The collection or variable name, upper-cased.
    pub(crate) name: String,
    /// The member after the first `.`, lower-cased.
    pub(crate) key: Option<String>,
}

/// Where macro values come from (the transaction and the rule being run).
pub(crate) trait MacroSource {
    /// Appends the value of `var` to `out`; unknown variables expand to nothing, as in
    /// libmodsecurity.
    fn write_var(&self, var: &MacroVar, out: &mut Vec<u8>);
}

impl Macro {
    /// Splits `text` into literals and `%{…}` references. An unterminated `%{` stays literal.
    pub(crate) fn parse(text: &str) -> Macro {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = Vec::new();
        while let Some(start) = rest.find("%{") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            literal.extend_from_slice(&rest.as_bytes()[..start]);
            let inner = &rest[start + 2..start + 2 + len];
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(parse_var(inner)));
            rest = &rest[start + 3 + len..];
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Macro { parts }
    }

    /// The text as a literal when there are no variables.
    pub(crate) fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [Part::Literal(l)] => Some(l),
            _ => None,
        }
    }

    /// The variable when the macro is exactly one `%{…}` and nothing else.
    pub(crate) fn single_var(&self) -> Option<&MacroVar> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// Expands the macro against `source`.
    pub(crate) fn expand<'a>(&'a self, source: &dyn MacroSource) -> Cow<'a, [u8]> {
        if let Some(l) = self.literal() {
            return Cow::Borrowed(l);
        }
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Var(v) => source.write_var(v, &mut out),
            }
        }
        Cow::Owned(out)
    }

    /// Expands to a string (lossy for non-UTF-8 bytes), for messages and names.
    pub(crate) fn expand_string(&self, source: &dyn MacroSource) -> String {
        String::from_utf8_lossy(&self.expand(source)).into_owned()
    }
}

fn parse_var(inner: &str) -> MacroVar {
    let inner = inner.trim();
    // libmodsecurity accepts both `tx.name` and `tx:name`.
    match inner.find(['.', ':']) {
        Some(dot) => MacroVar {
            name: inner[..dot].to_ascii_uppercase(),
            key: Some(inner[dot + 1..].to_ascii_lowercase()),
        },
        None => MacroVar {
            name: inner.to_ascii_uppercase(),
            key: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl MacroSource for Fixed {
        fn write_var(&self, var: &MacroVar, out: &mut Vec<u8>) {
            match (var.name.as_str(), var.key.as_deref()) {
                ("TX", Some("score")) => out.extend_from_slice(b"5"),
                ("MATCHED_VAR", None) => out.extend_from_slice(b"x"),
                _ => {}
            }
        }
    }

    #[test]
    fn expands_literals_and_variables() {
        let m = Macro::parse("score %{TX.score} on %{MATCHED_VAR}%{tx.unknown}!");
        assert_eq!(m.expand(&Fixed).as_ref(), b"score 5 on x!");
        assert_eq!(Macro::parse("plain").literal(), Some(&b"plain"[..]));
        assert_eq!(Macro::parse("").literal(), Some(&b""[..]));
        assert_eq!(Macro::parse("open %{tx").literal(), Some(&b"open %{tx"[..]));
    }

    proptest::proptest! {
        #[test]
        fn text_without_macros_is_kept(text in "[^%]*") {
            let m = Macro::parse(&text);
            let out = m.expand(&Fixed);
            proptest::prop_assert_eq!(out.as_ref(), text.as_bytes());
        }

        #[test]
        fn never_panics(text in ".*") {
            let _ = Macro::parse(&text).expand(&Fixed);
        }
    }
}
