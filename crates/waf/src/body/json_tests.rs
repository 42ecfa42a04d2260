use super::*;
use proptest::prelude::*;

fn named(body: &str) -> Vec<(String, String)> {
    match parse_json(body.as_bytes(), 10_000) {
        Ok(args) => args
            .into_iter()
            .map(|a| {
                (
                    String::from_utf8_lossy(&a.name).into_owned(),
                    String::from_utf8_lossy(&a.value).into_owned(),
                )
            })
            .collect(),
        Err(e) => panic!("unexpected error for {body:?}: {e}"),
    }
}

fn a(n: &str, v: &str) -> (String, String) {
    (n.to_owned(), v.to_owned())
}

fn err(body: &[u8]) -> String {
    parse_json(body, 10_000).expect_err("an error")
}

#[test]
fn object_members_and_nesting() {
    assert_eq!(
        named(r#"{"a":"1","b":{"c":"2","d":{"e":"3"}}}"#),
        vec![a("json.a", "1"), a("json.b.c", "2"), a("json.b.d.e", "3")]
    );
}

#[test]
fn arrays_are_numbered_from_zero() {
    assert_eq!(
        named(r#"{"ids":[10,20,30]}"#),
        vec![
            a("json.ids.array_0", "10"),
            a("json.ids.array_1", "20"),
            a("json.ids.array_2", "30")
        ]
    );
    assert_eq!(
        named(r#"{"m":[[1,2],[3]]}"#),
        vec![
            a("json.m.array_0.array_0", "1"),
            a("json.m.array_0.array_1", "2"),
            a("json.m.array_1.array_0", "3")
        ]
    );
    assert_eq!(
        named(r#"{"a":[{"k":1},{"k":2,"j":[true]}],"z":0}"#),
        vec![
            a("json.a.array_0.k", "1"),
            a("json.a.array_1.k", "2"),
            a("json.a.array_1.j.array_0", "true"),
            a("json.z", "0")
        ]
    );
}

#[test]
fn top_level_arrays_and_scalars() {
    assert_eq!(
        named("[1,\"x\"]"),
        vec![a("json.array_0", "1"), a("json.array_1", "x")]
    );
    assert_eq!(named("[[1]]"), vec![a("json.array_0.array_0", "1")]);
    assert_eq!(named("[{\"a\":1}]"), vec![a("json.array_0.a", "1")]);
    assert_eq!(named("\"hello\""), vec![a("json", "hello")]);
    assert_eq!(named(" 42 "), vec![a("json", "42")]);
}

#[test]
fn scalar_values() {
    assert_eq!(
        named(r#"{"t":true,"f":false,"n":null,"x":-1.50E+2}"#),
        vec![
            a("json.t", "true"),
            a("json.f", "false"),
            a("json.n", ""),
            a("json.x", "-1.50E+2")
        ]
    );
}

#[test]
fn empty_keys_and_containers() {
    assert_eq!(
        named(r#"{"":1,"e":{},"l":[],"o":{"":{"":2}}}"#),
        vec![
            a("json.empty-key", "1"),
            a("json.o.empty-key.empty-key", "2")
        ]
    );
    assert_eq!(named(r#"{"":[1]}"#), vec![a("json.empty-key.array_0", "1")]);
    assert!(named("{}").is_empty());
    assert!(named("[]").is_empty());
}

#[test]
fn keys_with_dots_and_escapes_are_kept_verbatim() {
    assert_eq!(
        named(r#"{"a.b":{"c\"d":"\u0041\n"}}"#),
        vec![a("json.a.b.c\"d", "A\n")]
    );
}

#[test]
fn duplicate_keys_are_all_reported_in_order() {
    assert_eq!(
        named(r#"{"a":1,"a":2}"#),
        vec![a("json.a", "1"), a("json.a", "2")]
    );
}

#[test]
fn empty_body_is_not_an_error() {
    assert_eq!(parse_json(b"", 10), Ok(vec![]));
}

#[test]
fn yajl_error_messages() {
    assert_eq!(
        err(b" "),
        "JSON parsing error: parse error: premature EOF\n"
    );
    assert_eq!(
        err(b"{\"a\":1"),
        "JSON parsing error: parse error: premature EOF\n"
    );
    assert_eq!(
        err(b"{\"a\":1} x"),
        "JSON parsing error: parse error: trailing garbage\n"
    );
    assert_eq!(
        err(b"[1,]"),
        "JSON parsing error: parse error: unallowed token at this point in JSON text\n"
    );
    assert_eq!(
        err(b"{\"a\":1,}"),
        "JSON parsing error: parse error: invalid object key (must be a string)\n"
    );
    assert_eq!(
        err(b"{\"a\" 1}"),
        "JSON parsing error: parse error: object key and value must be separated by a colon (':')\n"
    );
    assert_eq!(
        err(b"{\"a\":1 2}"),
        "JSON parsing error: parse error: after key and value, inside map, I expect ',' or '}'\n"
    );
    assert_eq!(
        err(b"[1 2]"),
        "JSON parsing error: parse error: after array element, I expect ',' or ']'\n"
    );
    assert_eq!(
        err(b"{'a':1}"),
        "JSON parsing error: lexical error: invalid char in json text.\n"
    );
    assert_eq!(
        err(b"[01]"),
        "JSON parsing error: parse error: after array element, I expect ',' or ']'\n"
    );
    assert_eq!(
        err(b"a=1&b=2"),
        "JSON parsing error: lexical error: invalid char in json text.\n"
    );
}

#[test]
fn trailing_unterminated_string_after_value_is_accepted_like_yajl() {
    assert_eq!(named("1 \"abc"), vec![a("json", "1")]);
}

#[test]
fn depth_limit() {
    assert!(parse_json(b"[[[1]]]", 3).is_ok());
    let e = parse_json(b"[[[[1]]]]", 3).expect_err("too deep");
    assert_eq!(
        e,
        "JSON parsing error: parse error: client cancelled parse via callback return value\n. Parsing depth limit exceeded"
    );
    assert!(parse_json(b"{\"a\":{\"b\":{}}}", 2).is_err());
    // Deep nesting does not recurse.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_json(deep.as_bytes(), 200_000).is_ok());
    assert!(parse_json(deep.as_bytes(), 512).is_err());
}

#[test]
fn argument_limit_cancels_but_keeps_what_was_added() {
    let out = parse_json_limited(br#"{"a":1,"b":2,"c":3}"#, 100, 2);
    assert_eq!(
        out.args,
        vec![Arg::new("json.a", "1"), Arg::new("json.b", "2")]
    );
    assert_eq!(
        out.error.as_deref(),
        Some("JSON parsing error: parse error: client cancelled parse via callback return value\n")
    );
}

#[test]
fn partial_results_before_a_syntax_error_are_kept() {
    let out = parse_json_limited(br#"{"a":"x","b":}"#, 100, usize::MAX);
    assert_eq!(out.args, vec![Arg::new("json.a", "x")]);
    assert!(out.error.is_some());
}

#[test]
fn crs_style_bodies() {
    assert_eq!(
        named(r#"{"foo": "1' OR '1'='1"}"#),
        vec![a("json.foo", "1' OR '1'='1")]
    );
    assert_eq!(
        named(r#"{"body": "<script>alert(1)</script>"}"#),
        vec![a("json.body", "<script>alert(1)</script>")]
    );
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z\"\\\\/\u{0}-\u{1f}é€😀]{0,6}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            proptest::collection::vec(("[a-z.]{0,4}", inner), 0..5)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn leaves(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => a.iter().map(leaves).sum(),
        serde_json::Value::Object(o) => o.values().map(leaves).sum(),
        _ => 1,
    }
}

fn leaf_values(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| leaf_values(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| leaf_values(x, out)),
        serde_json::Value::Null => out.push(Vec::new()),
        serde_json::Value::String(s) => out.push(s.as_bytes().to_vec()),
        other => out.push(other.to_string().into_bytes()),
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..200), depth in 0usize..8) {
        let _ = parse_json_limited(&body, depth, 5);
    }

    #[test]
    fn never_panics_on_json_like_bytes(body in "[\\[\\]{}:,\" a-z0-9.eE+\\-\\\\u]{0,60}") {
        let _ = parse_json(body.as_bytes(), 4);
    }

    #[test]
    fn arg_count_equals_scalar_leaves(v in arb_json()) {
        let text = serde_json::to_vec(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let args = parse_json(&text, 10_000).map_err(TestCaseError::fail)?;
        prop_assert_eq!(args.len(), leaves(&v));
        let mut values = Vec::new();
        leaf_values(&v, &mut values);
        let got: Vec<Vec<u8>> = args.into_iter().map(|a| a.value).collect();
        prop_assert_eq!(got, values);
    }

    #[test]
    fn pretty_printing_does_not_change_the_result(v in arb_json()) {
        let compact = serde_json::to_vec(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pretty = serde_json::to_vec_pretty(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parse_json(&compact, 100), parse_json(&pretty, 100));
    }
}
