//! Label selectors as kubectl writes them: `app=web,tier!=db,env in (a,b),env notin (c),
//! team,!legacy`. An empty selector matches everything.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `k=v` or `k==v`.
    Equals(String, String),
    /// `k!=v` (also matches objects without `k`).
    NotEquals(String, String),
    /// `k in (a,b)`.
    In(String, Vec<String>),
    /// `k notin (a,b)` (also matches objects without `k`).
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parses `text`; errors name the offending requirement and what was expected.
    pub fn parse(text: &str) -> Result<Selector, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(requirement(part).map_err(|expected| {
                ApiError::invalid(format!("labelSelector: `{part}`: expected {expected}"))
            })?);
        }
        Ok(Selector(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

const SHAPES: &str =
    "`key=value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`, `key` or `!key`";

fn requirement(part: &str) -> Result<Requirement, &'static str> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(label_key(key)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(label_key(key)?, label_value(value)?));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(label_key(key)?, label_value(value)?));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let Some(rest) = words.next().map(str::trim_start) else {
        return Ok(Requirement::Exists(label_key(key)?));
    };
    let (op, list) = rest.split_once(char::is_whitespace).map_or_else(
        || rest.split_at(rest.find('(').unwrap_or(rest.len())),
        |(op, list)| (op, list),
    );
    let values = value_list(list.trim())?;
    match op.trim() {
        "in" => Ok(Requirement::In(label_key(key)?, values)),
        "notin" => Ok(Requirement::NotIn(label_key(key)?, values)),
        _ => Err(SHAPES),
    }
}

fn value_list(list: &str) -> Result<Vec<String>, &'static str> {
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or("a parenthesised list of values such as `(a,b)`")?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| label_value(v))
        .collect::<Result<_, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err("at least one value in the list");
    }
    Ok(values)
}

fn label_key(key: &str) -> Result<String, &'static str> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(SHAPES)
    }
}

fn label_value(value: &str) -> Result<String, &'static str> {
    let value = value.trim();
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err("a label value: at most 63 characters of letters, digits, `-`, `_`, `.`")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kubectl_forms() {
        let s =
            Selector::parse("app=web, tier!=db,env in (a, b),zone notin (x),team,!legacy").unwrap();
        assert_eq!(s.0.len(), 6);
        let good = labels(&[("app", "web"), ("env", "a"), ("team", "t")]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("legacy".into(), "1".into());
        assert!(!s.matches(&bad));
        assert!(Selector::parse("").unwrap().matches(&BTreeMap::new()));
    }

    #[test]
    fn errors_name_the_requirement() {
        let e = Selector::parse("app in a,b").unwrap_err().to_string();
        assert!(e.contains("`app in a`"), "{e}");
        assert!(Selector::parse("a b c").is_err());
        assert!(Selector::parse("=x").is_err());
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9.-]{0,8}"
    }

    fn value() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}"
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        prop_oneof![
            (key(), value()).prop_map(|(k, v)| Requirement::Equals(k, v)),
            (key(), value()).prop_map(|(k, v)| Requirement::NotEquals(k, v)),
            (key(), prop::collection::vec(value(), 1..4)).prop_map(|(k, v)| Requirement::In(k, v)),
            (key(), prop::collection::vec(value(), 1..4))
                .prop_map(|(k, v)| Requirement::NotIn(k, v)),
            key().prop_map(Requirement::Exists),
            key().prop_map(Requirement::DoesNotExist),
        ]
    }

    fn render(r: &Requirement) -> String {
        match r {
            Requirement::Equals(k, v) => format!("{k}={v}"),
            Requirement::NotEquals(k, v) => format!("{k}!={v}"),
            Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(", ")),
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
        }
    }

    proptest! {
        #[test]
        fn rendered_selectors_parse_back(rs in prop::collection::vec(requirement(), 0..5)) {
            let text: Vec<String> = rs.iter().map(render).collect();
            let parsed = Selector::parse(&text.join(",")).unwrap();
            prop_assert_eq!(parsed.0, rs);
        }

        #[test]
        fn any_text_parses_or_errors_without_panicking(text in "\\PC{0,40}") {
            let _ = Selector::parse(&text);
        }
    }
}
