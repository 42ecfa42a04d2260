//! Variable lists: `ARGS|!ARGS:foo|&TX:bar|REQUEST_COOKIES:/^_ga/|ARGS:'a b'`.
//!
//! Items are separated by `|` (whitespace around it is allowed). A key follows `:` (or `.`,
//! which libmodsecurity 3 accepts as well); `/…/` is a regular expression except for `XML`,
//! whose keys are XPath expressions; `'…'` quotes a key, and a quoted `'/…/'` is a regular
//! expression too.

use super::ast::{VarKey, VarSpec};
use super::words::{read_quoted, unterminated};

/// Parses a whole variable list; it must name at least one variable.
pub(crate) fn parse_variables(list: &str) -> Result<Vec<VarSpec>, String> {
    let mut vars = Vec::new();
    let mut rest = list.trim();
    if rest.is_empty() {
        return Err("expected a variable list, found nothing".to_owned());
    }
    loop {
        let (var, after) = parse_one(rest)?;
        vars.push(var);
        let after = after.trim_start();
        match after.strip_prefix('|') {
            Some(next) => rest = next.trim_start(),
            None if after.is_empty() => return Ok(vars),
            None => return Err(format!("expected `|` between variables, found `{after}`")),
        }
    }
}

/// Parses one variable at the start of `text`; returns it and the text after it.
fn parse_one(text: &str) -> Result<(VarSpec, &str), String> {
    let (exclude, count, body) = prefixes(text)?;
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    if name_len == 0 {
        return Err(match body.chars().next() {
            None | Some('|') => format!("expected a variable name in `{text}`"),
            Some(c) => format!("unknown variable prefix `{c}` in `{text}`"),
        });
    }
    let name = body[..name_len].to_ascii_uppercase();
    let after_name = &body[name_len..];
    let (key, rest) = match after_name.strip_prefix([':', '.']) {
        Some(key_text) => {
            let (key, rest) = parse_key(&name, key_text)?;
            (Some(key), rest)
        }
        None => (None, after_name),
    };
    let var = VarSpec {
        exclude,
        count,
        name,
        key,
    };
    Ok((var, rest))
}

/// Reads the optional `!` or `&` prefix.
fn prefixes(text: &str) -> Result<(bool, bool, &str), String> {
    let (exclude, count, body) = match text.as_bytes().first() {
        Some(b'!') => (true, false, &text[1..]),
        Some(b'&') => (false, true, &text[1..]),
        _ => (false, false, text),
    };
    if (exclude || count) && body.starts_with(['!', '&']) {
        return Err(format!(
            "a variable takes only one of the prefixes `!` and `&`: `{text}`"
        ));
    }
    Ok((exclude, count, body))
}

/// Parses the key after `NAME:`; returns it and the text after it.
fn parse_key<'a>(name: &str, text: &'a str) -> Result<(VarKey, &'a str), String> {
    if let Some(quoted) = text.strip_prefix('\'') {
        let (key, rest) = read_quoted(quoted, '\'').ok_or_else(|| unterminated('\'', text))?;
        let key = match key.strip_prefix('/').and_then(|k| k.strip_suffix('/')) {
            Some(regex) if name != "XML" => VarKey::Regex(regex.to_owned()),
            _ => VarKey::Name(key),
        };
        return Ok((key, rest));
    }
    if let Some(body) = text.strip_prefix('/')
        && name != "XML"
    {
        let end = regex_end(body).ok_or_else(|| {
            format!("unterminated regular expression in `{name}:{text}`: expected a closing `/`")
        })?;
        return Ok((VarKey::Regex(body[..end].to_owned()), &body[end + 1..]));
    }
    let end = text
        .find(|c: char| c == '|' || c.is_whitespace())
        .unwrap_or(text.len());
    if end == 0 {
        return Err(format!("expected a key after `{name}:`"));
    }
    Ok((VarKey::Name(text[..end].to_owned()), &text[end..]))
}

/// The index of the `/` closing a regular expression key: the first unescaped `/` followed
/// by the end of the list, whitespace or `|` (so `|` may appear inside the expression).
fn regex_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' if matches!(bytes.get(i + 1), None | Some(b'|' | b' ' | b'\t')) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn var(exclude: bool, count: bool, name: &str, key: Option<VarKey>) -> VarSpec {
        VarSpec {
            exclude,
            count,
            name: name.to_owned(),
            key,
        }
    }

    fn name(k: &str) -> Option<VarKey> {
        Some(VarKey::Name(k.to_owned()))
    }

    fn regex(k: &str) -> Option<VarKey> {
        Some(VarKey::Regex(k.to_owned()))
    }

    #[test]
    fn parses_prefixes_keys_and_case() {
        let got = parse_variables("args|!ARGS:foo|&tx:Bar|REQUEST_COOKIES:/^_ga(?:_\\w+)?$/");
        assert_eq!(
            got,
            Ok(vec![
                var(false, false, "ARGS", None),
                var(true, false, "ARGS", name("foo")),
                var(false, true, "TX", name("Bar")),
                var(false, false, "REQUEST_COOKIES", regex("^_ga(?:_\\w+)?$")),
            ])
        );
    }

    #[test]
    fn quoted_keys_xml_and_dot() {
        let got = parse_variables("ARGS:'a b|c' | ARGS:'/x|y/'|XML:/*|XML://@*|TX.score");
        assert_eq!(
            got,
            Ok(vec![
                var(false, false, "ARGS", name("a b|c")),
                var(false, false, "ARGS", regex("x|y")),
                var(false, false, "XML", name("/*")),
                var(false, false, "XML", name("//@*")),
                var(false, false, "TX", name("score")),
            ])
        );
    }

    #[test]
    fn regex_may_hold_pipes_and_slashes() {
        let got = parse_variables("ARGS:/a|b/c/|ARGS_NAMES");
        assert_eq!(
            got,
            Ok(vec![
                var(false, false, "ARGS", regex("a|b/c")),
                var(false, false, "ARGS_NAMES", None)
            ])
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = |s: &str| parse_variables(s).unwrap_err();
        assert!(err("$ARGS").contains("unknown variable prefix `$`"));
        assert!(err("ARGS||TX").contains("expected a variable name"));
        assert!(err("ARGS|").contains("expected a variable name"));
        assert!(err("!&ARGS").contains("only one of the prefixes"));
        assert!(err("ARGS:").contains("expected a key after `ARGS:`"));
        assert!(err("ARGS:/abc").contains("unterminated regular expression"));
        assert!(err("ARGS:'abc").contains("unterminated quoted string"));
        assert!(err("ARGS:'a'b").contains("expected `|` between variables"));
        assert!(err("").contains("expected a variable list"));
    }

    proptest! {
        #[test]
        fn never_panics(list in "\\PC{0,60}") {
            let _ = parse_variables(&list);
        }
    }
}
