use super::*;
use proptest::prelude::*;

fn exact(v: &str) -> StringMatch {
    StringMatch::Exact {
        value: v.into(),
        ignore_case: false,
    }
}

#[test]
fn parse_classifies_like_istio() {
    assert_eq!(StringMatch::parse("*", false), StringMatch::Presence);
    assert_eq!(
        StringMatch::parse("abc*", false),
        StringMatch::Prefix {
            value: "abc".into(),
            ignore_case: false
        }
    );
    assert_eq!(
        StringMatch::parse("*abc", false),
        StringMatch::Suffix {
            value: "abc".into(),
            ignore_case: false
        }
    );
    assert_eq!(StringMatch::parse("a*c", false), exact("a*c"));
    assert_eq!(StringMatch::parse("", false), exact(""));
    // Leading `*` wins, as in Istio: `**` is the suffix "*".
    assert_eq!(
        StringMatch::parse("**", false),
        StringMatch::Suffix {
            value: "*".into(),
            ignore_case: false
        }
    );
    assert_eq!(
        StringMatch::parse("*a*", false),
        StringMatch::Suffix {
            value: "a*".into(),
            ignore_case: false
        }
    );
}

#[test]
fn absent_never_matches() {
    for p in ["*", "", "a", "a*", "*a", "**"] {
        assert!(!StringMatch::parse(p, false).matches(None), "{p}");
        assert!(!StringSet::new([p], false).matches(None), "{p}");
    }
}

#[test]
fn presence_needs_non_empty() {
    let m = StringMatch::parse("*", false);
    assert!(m.matches(Some("x")));
    assert!(!m.matches(Some("")));
}

#[test]
fn empty_pattern_matches_only_empty_value() {
    let m = StringMatch::parse("", false);
    assert!(m.matches(Some("")));
    assert!(!m.matches(Some("a")));
}

#[test]
fn double_star_is_literal_star_suffix() {
    let m = StringMatch::parse("**", false);
    assert!(m.matches(Some("a*")));
    assert!(m.matches(Some("*")));
    assert!(!m.matches(Some("a")));
}

#[test]
fn middle_star_is_literal() {
    let m = StringMatch::parse("a*c", false);
    assert!(m.matches(Some("a*c")));
    assert!(!m.matches(Some("abc")));
}

#[test]
fn prefix_and_suffix_include_equality() {
    assert!(StringMatch::parse("abc*", false).matches(Some("abc")));
    assert!(StringMatch::parse("*abc", false).matches(Some("abc")));
    assert!(!StringMatch::parse("abc*", false).matches(Some("ab")));
    assert!(!StringMatch::parse("*abc", false).matches(Some("bc")));
}

#[test]
fn ignore_case_stores_lowercase_and_compares_ascii_only() {
    let m = StringMatch::parse("GET", true);
    assert_eq!(
        m,
        StringMatch::Exact {
            value: "get".into(),
            ignore_case: true
        }
    );
    assert!(m.matches(Some("get")));
    assert!(m.matches(Some("GeT")));
    assert!(!StringMatch::parse("GET", false).matches(Some("get")));
    // Non-ASCII letters are not folded, as in Envoy.
    assert!(!StringMatch::parse("É", true).matches(Some("é")));
    assert!(StringMatch::parse("*.Example.COM", true).matches(Some("api.example.com")));
    assert!(StringMatch::parse("Spiffe://*", true).matches(Some("SPIFFE://td/ns/a")));
}

#[test]
fn prefix_on_multibyte_value_does_not_panic() {
    // The prefix length falls inside a multi-byte character of the value.
    assert!(!StringMatch::parse("a\u{e9}*", false).matches(Some("a\u{e8}x")));
    assert!(!StringMatch::parse("*\u{e9}", false).matches(Some("\u{e8}")));
    assert!(!StringMatch::parse("x*", true).matches(Some("\u{e9}")));
}

#[test]
fn set_basics() {
    let set = StringSet::new(["ns-a", "prod-*", "*-canary"], false);
    assert!(!set.is_empty());
    assert!(set.matches(Some("ns-a")));
    assert!(set.matches(Some("prod-eu")));
    assert!(set.matches(Some("x-canary")));
    assert!(!set.matches(Some("ns-b")));
    assert!(!set.matches(Some("")));

    let empty = StringSet::new([], false);
    assert!(empty.is_empty());
    assert!(!empty.matches(Some("")));
    assert!(!empty.matches(Some("x")));
}

#[test]
fn set_presence_and_empty_exact() {
    let set = StringSet::new(["*", ""], false);
    assert!(set.matches(Some("")));
    assert!(set.matches(Some("anything")));
    assert!(!StringSet::new(["*"], false).matches(Some("")));
}

#[test]
fn set_prunes_implied_prefixes_without_changing_results() {
    let set = StringSet::new(["ab*", "a*", "abc*", "*z", "*yz"], false);
    assert_eq!(set.prefixes.len(), 1);
    assert_eq!(set.suffixes.len(), 1);
    assert!(set.matches(Some("abc")));
    assert!(set.matches(Some("xyz")));
}

#[test]
fn set_ignore_case_exact_lookup_short_and_long() {
    let long = "A".repeat(STACK_LOWERCASE_MAX + 10);
    let set = StringSet::new(["Example.COM", long.as_str()], true);
    assert!(set.matches(Some("example.com")));
    assert!(set.matches(Some("EXAMPLE.com")));
    assert!(set.matches(Some(&long.to_ascii_lowercase())));
    assert!(set.matches(Some(&long)));
    assert!(!set.matches(Some("example.org")));
}

fn reference(pattern: &str, ignore_case: bool, value: Option<&str>) -> bool {
    let Some(value) = value else {
        return false;
    };
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    if p == "*" {
        !v.is_empty()
    } else if let Some(s) = p.strip_prefix('*') {
        v.ends_with(s)
    } else if let Some(s) = p.strip_suffix('*') {
        v.starts_with(s)
    } else {
        v == p
    }
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    "[aAb*,\u{e9}]{0,5}"
}

fn value_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.9, "[aAb*,\u{e9}\u{c9}]{0,7}")
}

proptest! {
    #[test]
    fn match_agrees_with_reference(
        p in pattern_strategy(),
        ic in any::<bool>(),
        v in value_strategy(),
    ) {
        let m = StringMatch::parse(&p, ic);
        prop_assert_eq!(m.matches(v.as_deref()), reference(&p, ic, v.as_deref()));
    }

    #[test]
    fn set_is_any_of_its_matches(
        ps in proptest::collection::vec(pattern_strategy(), 0..20),
        ic in any::<bool>(),
        v in value_strategy(),
    ) {
        let set = StringSet::new(ps.iter().map(String::as_str), ic);
        let any = ps.iter().any(|p| StringMatch::parse(p, ic).matches(v.as_deref()));
        prop_assert_eq!(set.matches(v.as_deref()), any);
        prop_assert_eq!(set.is_empty(), ps.is_empty());
    }
}
