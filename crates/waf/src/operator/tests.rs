//! Tests of the public operator API and property tests against simple models.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn ctx() -> OpContext<'static> {
    OpContext {
        base_dir: Path::new("/nonexistent"),
    }
}

fn op(name: &str, arg: &str) -> Operator {
    match Operator::compile(name, arg, &ctx()) {
        Ok(o) => o,
        Err(e) => panic!("@{name} {arg}: {e}"),
    }
}

#[test]
fn names_are_case_insensitive_and_canonical() {
    assert_eq!(op("RX", "a").name(), "rx");
    assert_eq!(op("PM", "a").name(), "pm");
    assert_eq!(op("IPMATCH", "::1").name(), "ipMatch");
    assert_eq!(op("detectsqli", "").name(), "detectSQLi");
    assert_eq!(
        op("ValidateUtf8Encoding", "").name(),
        "validateUtf8Encoding"
    );
    assert_eq!(op("beginswith", "x").argument(), "x");
}

#[test]
fn unknown_and_unsupported_operators() {
    let err = |name: &str| {
        Operator::compile(name, "", &ctx())
            .err()
            .unwrap_or_default()
    };
    assert_eq!(err("nosuch"), "unknown operator @nosuch");
    assert_eq!(err("verifyCC"), "@verifyCC: operator is not supported");
}

#[test]
fn compile_errors_name_the_operator() {
    let err = |name: &str, arg: &str| {
        Operator::compile(name, arg, &ctx())
            .err()
            .unwrap_or_default()
    };
    assert!(err("rx", "(").starts_with("@rx: invalid regular expression: "));
    assert!(
        err("pmFromFile", "x.data").starts_with("@pmFromFile: cannot read /nonexistent/x.data")
    );
    assert!(err("pmf", "x.data").starts_with("@pmf: cannot read"));
    assert!(err("ipMatch", "1.2.3").starts_with("@ipMatch: "));
    assert!(err("ipMatchFromFile", "x").starts_with("@ipMatchFromFile: cannot read"));
    assert!(err("validateByteRange", "1-300").starts_with("@validateByteRange: "));
}

#[test]
fn macros_are_detected_and_expanded() {
    let o = op("ge", "%{tx.inbound_anomaly_score_threshold}");
    assert!(o.has_macros());
    assert!(o.matches(b"5", Some(b"5"), None));
    assert!(!o.matches(b"4", Some(b"5"), None));
    // Without an expansion the argument as written is used (atoll of it is 0).
    assert!(o.matches(b"0", None, None));

    let w = op("within", "%{tx.restricted_extensions}");
    assert!(w.matches(b".exe/", Some(b".asa/ .exe/ .bak/"), None));
    assert!(!w.matches(b".html/", Some(b".asa/ .exe/ .bak/"), None));

    let s = op("streq", "%{TX.2}");
    assert!(s.matches(b"abc", Some(b"abc"), None));

    let rx = op("rx", "^%{tx.prefix}");
    assert!(rx.has_macros());
    assert!(rx.matches(b"foobar", Some(b"^foo"), None));

    let pm = op("pm", "%{tx.words}");
    assert!(pm.has_macros());
    assert!(pm.matches(b"xBARx", Some(b"foo bar"), None));

    assert!(!op("rx", "a%{b").has_macros());
    assert!(!op("streq", "plain").has_macros());
    // Operators that libmodsecurity never expands keep the text literally.
    assert!(!op("validateByteRange", "1-255").has_macros());
}

#[test]
fn captures_are_cleared_before_each_evaluation() {
    let mut caps = Captures {
        groups: vec![Some(b"old".to_vec())],
    };
    assert!(!op("rx", "x").matches(b"abc", None, Some(&mut caps)));
    assert!(caps.groups.is_empty());
    assert!(op("contains", "b").matches(b"abc", None, Some(&mut caps)));
    assert!(caps.groups.is_empty());
}

#[test]
fn captures_per_operator() {
    let mut caps = Captures::default();
    assert!(op("rx", "(b)(c)").matches(b"abcd", None, Some(&mut caps)));
    assert_eq!(caps.groups.len(), 3);
    assert!(op("pm", "BC").matches(b"abcd", None, Some(&mut caps)));
    assert_eq!(caps.groups, vec![Some(b"BC".to_vec())]);
    assert!(op("detectSQLi", "").matches(b"1' or 1=1--", None, Some(&mut caps)));
    assert_eq!(caps.groups.len(), 1);
}

#[test]
fn trivial_operators() {
    assert!(op("unconditionalMatch", "").matches(b"", None, None));
    assert!(!op("noMatch", "").matches(b"x", None, None));
    assert!(op("validateUrlEncoding", "").matches(b"%zz", None, None));
    assert!(op("validateUtf8Encoding", "").matches(b"\xc0\xaf", None, None));
    assert!(op("ipMatch", "127.0.0.1,::1").matches(b"::1", None, None));
    assert!(op("containsWord", "select").matches(b"a select b", None, None));
    assert!(op("strmatch", "abc").matches(b"xabcx", None, None));
    assert!(op("detectXSS", "").matches(b"<script>alert(1)</script>", None, None));
}

/// A number as text, the way clients and rules write them, with C-ignorable decoration.
fn number_text(n: i64) -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", " ", "\t ", "+"]),
        prop::sample::select(vec!["", "abc", " 1", ".5"]),
    )
        .prop_map(move |(pre, post)| {
            let sign = if pre == "+" && n < 0 { "" } else { pre };
            format!("{sign}{n}{post}")
        })
}

proptest! {
    #[test]
    fn ordering_agrees_with_i64(a in any::<i64>(), b in any::<i64>(), sa in 0usize..4, sb in 0usize..4) {
        let text = |n: i64, style: usize| match style {
            0 => n.to_string(),
            1 => format!("  {n}"),
            2 => format!("{n}xyz"),
            _ => format!("\t{n} 7"),
        };
        let (ta, tb) = (text(a, sa), text(b, sb));
        prop_assert_eq!(op("gt", &tb).matches(ta.as_bytes(), None, None), a > b);
        prop_assert_eq!(op("ge", &tb).matches(ta.as_bytes(), None, None), a >= b);
        prop_assert_eq!(op("lt", &tb).matches(ta.as_bytes(), None, None), a < b);
        prop_assert_eq!(op("le", &tb).matches(ta.as_bytes(), None, None), a <= b);
    }

    #[test]
    fn equality_agrees_with_i64(a in any::<i32>(), b in any::<i32>(), decorated in any::<bool>()) {
        let (a, b) = (i64::from(a), i64::from(b));
        let ta = if decorated { format!(" {a}rest") } else { a.to_string() };
        prop_assert_eq!(op("eq", &b.to_string()).matches(ta.as_bytes(), None, None), a == b);
        prop_assert_eq!(op("ne", &b.to_string()).matches(ta.as_bytes(), None, None), a != b);
    }

    #[test]
    fn macro_numbers_agree(a in -1000i64..1000, b in -1000i64..1000, t in number_text(7)) {
        let o = op("lt", "%{tx.x}");
        let (ta, tb) = (a.to_string(), b.to_string());
        prop_assert_eq!(o.matches(ta.as_bytes(), Some(tb.as_bytes()), None), a < b);
        prop_assert!(op("eq", "7").matches(t.as_bytes(), None, None));
    }

    #[test]
    fn pm_agrees_with_naive_search(
        phrases in prop::collection::vec("[abcAB]{1,4}", 0..6),
        input in "[abcABC ]{0,24}",
    ) {
        let arg = phrases.join(" ");
        let lower_input = input.to_ascii_lowercase();
        let naive = phrases.iter().any(|p| lower_input.contains(&p.to_ascii_lowercase()));
        let o = op("pm", &arg);
        let mut caps = Captures::default();
        prop_assert_eq!(o.matches(input.as_bytes(), None, None), naive);
        prop_assert_eq!(o.matches(input.as_bytes(), None, Some(&mut caps)), naive);
        if naive {
            let found = caps.groups.first().cloned().flatten().unwrap_or_default();
            let found = String::from_utf8_lossy(&found).to_ascii_lowercase();
            prop_assert!(phrases.iter().any(|p| p.to_ascii_lowercase() == found));
            prop_assert!(lower_input.contains(&found));
        }
    }

    #[test]
    fn string_operators_agree_with_std(arg in "[ab ]{0,6}", input in "[ab ]{0,6}") {
        let m = |name: &str| op(name, &arg).matches(input.as_bytes(), None, None);
        prop_assert_eq!(m("contains"), input.contains(&arg));
        prop_assert_eq!(m("strmatch"), input.contains(&arg));
        prop_assert_eq!(m("beginsWith"), input.starts_with(&arg));
        prop_assert_eq!(m("endsWith"), input.ends_with(&arg));
        prop_assert_eq!(m("streq"), input == arg);
        prop_assert_eq!(m("within"), input.is_empty() || arg.contains(&input));
    }

    #[test]
    fn byte_range_agrees_with_naive(
        ranges in prop::collection::vec((any::<u8>(), any::<u8>()), 1..5),
        input in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let ranges: Vec<(u8, u8)> = ranges.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect();
        let arg = ranges
            .iter()
            .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect::<Vec<_>>()
            .join(",");
        let naive = input.iter().any(|x| !ranges.iter().any(|(a, b)| (a..=b).contains(&x)));
        prop_assert_eq!(op("validateByteRange", &arg).matches(&input, None, None), naive);
    }

    #[test]
    fn utf8_check_agrees_with_std(input in prop::collection::vec(any::<u8>(), 0..32)) {
        // libmodsecurity accepts 0xF4-led forms above U+10FFFF; std does not.
        prop_assume!(!input.contains(&0xf4));
        let o = op("validateUtf8Encoding", "");
        prop_assert_eq!(o.matches(&input, None, None), std::str::from_utf8(&input).is_err());
    }

    #[test]
    fn url_encoding_agrees_with_naive(input in "[%a-hz0-9]{0,12}") {
        let b = input.as_bytes();
        // `%` is not a hex digit, so checking every `%` independently sees the same escapes
        // as a left-to-right scan.
        let naive = (0..b.len()).any(|i| {
            b[i] == b'%' && !b.get(i + 1..i + 3).is_some_and(|d| d.len() == 2 && d.iter().all(u8::is_ascii_hexdigit))
        });
        prop_assert_eq!(op("validateUrlEncoding", "").matches(b, None, None), naive);
    }

    #[test]
    fn rx_capture_and_plain_paths_agree(pattern in "[ab.()|*?^$]{0,8}", input in "[ab\n]{0,10}") {
        if let Ok(o) = Operator::compile("rx", &pattern, &ctx()) {
            let mut caps = Captures::default();
            let plain = o.matches(input.as_bytes(), None, None);
            prop_assert_eq!(o.matches(input.as_bytes(), None, Some(&mut caps)), plain);
            prop_assert!(caps.groups.len() <= MAX_CAPTURES);
        }
    }

    #[test]
    fn no_operator_panics(
        name_idx in 0usize..NAMES.len(),
        arg in any::<String>(),
        input in prop::collection::vec(any::<u8>(), 0..64),
        expanded in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
    ) {
        let name = NAMES[name_idx].0;
        let mut caps = Captures::default();
        if let Ok(o) = Operator::compile(name, &arg, &ctx()) {
            let _ = o.matches(&input, expanded.as_deref(), Some(&mut caps));
            let _ = o.matches(&input, expanded.as_deref(), None);
            prop_assert!(caps.groups.len() <= MAX_CAPTURES);
        }
    }

    #[test]
    fn injection_detectors_never_panic(input in prop::collection::vec(any::<u8>(), 0..128)) {
        let mut caps = Captures::default();
        let _ = op("detectSQLi", "").matches(&input, None, Some(&mut caps));
        let _ = op("detectXSS", "").matches(&input, None, Some(&mut caps));
    }

    #[test]
    fn injection_detectors_never_panic_on_text(input in "[ -~]{0,96}") {
        let _ = op("detectSQLi", "").matches(input.as_bytes(), None, None);
        let _ = op("detectXSS", "").matches(input.as_bytes(), None, None);
    }
}

#[test]
fn operators_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Operator>();
    assert_send_sync::<Captures>();
}
