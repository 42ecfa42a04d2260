use super::*;
use proptest::prelude::*;
use std::borrow::Cow;

fn norm(raw: &str) -> String {
    normalize_path(raw)
        .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
        .into_owned()
}

fn is_borrowed(raw: &str) -> bool {
    matches!(normalize_path(raw), Ok(Cow::Borrowed(_)))
}

#[test]
fn canonical_paths_are_borrowed() {
    for raw in [
        "/",
        "/a/b",
        "/a/b/",
        "/a%2Fb",
        "/a//b",
        "/.well-known/x",
        "/a/.../b",
    ] {
        assert!(is_borrowed(raw), "{raw}");
        assert_eq!(norm(raw), raw);
    }
    // Cutting off the query or fragment only shortens the borrow.
    assert!(is_borrowed("/a?x=1"));
    assert_eq!(norm("/a?x=1#frag"), "/a");
    assert_eq!(norm("/a#frag?x"), "/a");
}

#[test]
fn leading_slash_is_added() {
    assert_eq!(norm(""), "/");
    assert_eq!(norm("?q"), "/");
    assert_eq!(norm("a/b"), "/a/b");
    assert_eq!(norm("."), "/");
    assert_eq!(norm(".."), "/");
    assert_eq!(norm("./a"), "/a");
    assert_eq!(norm("%41"), "/A");
}

#[test]
fn dot_segments_are_removed() {
    assert_eq!(norm("/.."), "/");
    assert_eq!(norm("/../../a"), "/a");
    assert_eq!(norm("/a/./b/../c"), "/a/c");
    assert_eq!(norm("/a/b/."), "/a/b/");
    assert_eq!(norm("/a/b/.."), "/a/");
    assert_eq!(norm("/a/b/../"), "/a/");
    assert_eq!(norm("/a//../b"), "/a/b");
    assert_eq!(norm("/a/.b/..c"), "/a/.b/..c");
}

#[test]
fn unreserved_escapes_are_decoded_once() {
    assert_eq!(norm("/%2e%2e/admin"), "/admin");
    assert_eq!(norm("/a/%2E%2E/b"), "/b");
    assert_eq!(norm("/a/%2E/b"), "/a/b");
    assert_eq!(norm("/a/.%2e/b"), "/b");
    assert_eq!(norm("/%41%7a%2D%5f%7E%30"), "/Az-_~0");
    // `%25` encodes '%', which is reserved, so it stays and no second decode
    // can ever turn `%252e` into '.'.
    assert_eq!(norm("/%252e"), "/%252e");
    assert_eq!(norm("/a/%252e%252e/b"), "/a/%252e%252e/b");
}

#[test]
fn reserved_escapes_are_kept_with_uppercase_hex() {
    assert_eq!(norm("/a%2fb"), "/a%2Fb");
    assert_eq!(norm("/a%2Fb"), "/a%2Fb");
    assert_eq!(norm("/a%5cb"), "/a%5Cb");
    assert_eq!(norm("/a%5Cb"), "/a%5Cb");
    assert_eq!(norm("/%e9%C3%a9"), "/%E9%C3%A9");
    // An encoded slash does not separate segments, so this is no dot segment.
    assert_eq!(norm("/a/..%2f"), "/a/..%2F");
}

#[test]
fn backslash_becomes_slash() {
    assert_eq!(norm("/a\\b"), "/a/b");
    assert_eq!(norm("\\a"), "/a");
    assert_eq!(norm("/a\\..\\admin"), "/admin");
    assert_eq!(norm("\\..\\..\\etc"), "/etc");
}

#[test]
fn nul_and_malformed_escapes_are_rejected() {
    assert_eq!(normalize_path("/a%00b"), Err(PathError::Nul { offset: 2 }));
    assert_eq!(normalize_path("/a\0"), Err(PathError::Nul { offset: 2 }));
    for (raw, offset) in [
        ("/%", 1),
        ("/%2", 1),
        ("/a%zz", 2),
        ("/%g0", 1),
        ("/x/%2", 3),
    ] {
        assert_eq!(
            normalize_path(raw),
            Err(PathError::MalformedEscape { offset }),
            "{raw}"
        );
    }
    // Errors in the query are not the path's business.
    assert_eq!(norm("/a?%zz%00"), "/a");
    let msg = PathError::MalformedEscape { offset: 3 }.to_string();
    assert!(msg.contains("expected two hexadecimal digits"), "{msg}");
}

#[test]
fn string_patterns() {
    let p = |s: &str| PathPattern::parse(s).unwrap();
    assert!(p("*").matches("/"));
    assert!(p("/api/*").matches("/api/"));
    assert!(p("/api/*").matches("/api/v1/x"));
    assert!(!p("/api/*").matches("/apix"));
    assert!(p("*.html").matches("/a/b.html"));
    assert!(p("/a*b").matches("/a*b"));
    assert!(!p("/a*b").matches("/axb"));
    assert!(!p("/Admin").matches("/admin"));
    assert!(!p("").matches("/"));
}

#[test]
fn template_one_segment() {
    let t = PathPattern::parse("/a/{*}/b").unwrap();
    assert!(matches!(t, PathPattern::Template(_)));
    assert!(t.matches("/a/x/b"));
    assert!(t.matches("/a/x%2Fy/b"));
    assert!(!t.matches("/a//b"));
    assert!(!t.matches("/a/x/y/b"));
    assert!(!t.matches("/a/x/b/"));
    let t = PathPattern::parse("/a/{*}").unwrap();
    assert!(t.matches("/a/x"));
    assert!(!t.matches("/a/x/"));
    assert!(!t.matches("/a/"));
    assert!(!t.matches("/a"));
    assert!(PathPattern::parse("/a/{*}/").unwrap().matches("/a/x/"));
}

#[test]
fn template_many_segments_follows_envoy() {
    let t = PathPattern::parse("/foo/{**}").unwrap();
    assert!(t.matches("/foo/x"));
    assert!(t.matches("/foo/x/y/z"));
    // Envoy compiles `**` to `[...]*`, so the empty remainder matches too.
    assert!(t.matches("/foo/"));
    assert!(!t.matches("/foo"));
    assert!(!t.matches("/foobar"));
    assert!(!t.matches("foo/x"));

    let all = PathPattern::parse("/{**}").unwrap();
    assert!(all.matches("/"));
    assert!(all.matches("/a/b"));

    let mid = PathPattern::parse("/a/{*}/{**}/c").unwrap();
    assert!(mid.matches("/a/x/y/z/c"));
    assert!(mid.matches("/a/x//c"));
    assert!(!mid.matches("/a/x/c"));
    assert!(!mid.matches("/a/x/y/c/d"));
}

#[test]
fn template_errors() {
    use PatternError::*;
    let err = |s: &str| PathPattern::parse(s).unwrap_err();
    let pos = |e: PatternError| match e {
        OperatorNotWholeSegment { position, .. }
        | MultiSegmentNotLast { position, .. }
        | UnexpectedBrace { position, .. }
        | StarInTemplate { position, .. } => position,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        err("/a/x{*}"),
        OperatorNotWholeSegment { position: 4, .. }
    ));
    assert!(matches!(
        err("/a/{*}x"),
        OperatorNotWholeSegment { position: 3, .. }
    ));
    assert!(matches!(err("/{**}.mpd"), OperatorNotWholeSegment { .. }));
    assert!(matches!(
        err("/{**}{*}"),
        OperatorNotWholeSegment { position: 1, .. }
    ));
    assert!(matches!(
        err("/{**}/{*}"),
        MultiSegmentNotLast { position: 6, .. }
    ));
    assert!(matches!(
        err("/{**}/x/{**}"),
        MultiSegmentNotLast { position: 8, .. }
    ));
    assert!(matches!(
        err("/a/{id}"),
        UnexpectedBrace { position: 3, .. }
    ));
    assert!(matches!(
        err("/a/{*}/{id}"),
        UnexpectedBrace { position: 7, .. }
    ));
    assert!(matches!(err("/{***}"), UnexpectedBrace { position: 1, .. }));
    assert!(matches!(err("/a}"), UnexpectedBrace { position: 2, .. }));
    assert_eq!(pos(err("/{*}/a*")), 6);
    assert!(matches!(err("a/{*}"), TemplateNotAbsolute { .. }));

    let msg = err("/a/x{*}").to_string();
    assert!(msg.contains("must be a whole path segment"), "{msg}");
    assert!(msg.contains("/a/x{*}"), "{msg}");
    let msg = err("/{**}/{*}").to_string();
    assert!(msg.contains("last operator"), "{msg}");
}

#[test]
fn path_set_mixes_strings_and_templates() {
    let set = PathSet::new(["/healthz", "/api/*", "/u/{*}/profile", "/u/{*}/profile"]).unwrap();
    assert!(!set.is_empty());
    assert!(set.matches("/healthz"));
    assert!(set.matches("/api/x"));
    assert!(set.matches("/u/42/profile"));
    assert!(!set.matches("/u/42/other"));
    assert!(!set.matches("/"));
    assert!(PathSet::new([]).unwrap().is_empty());
    assert!(!PathSet::new([]).unwrap().matches("/"));
    assert!(PathSet::new(["/ok", "/a/{x}"]).is_err());
}

/// RFC 3986 §5.2.4 as written, on a string buffer, to check our segment version.
fn rfc_remove_dot_segments(path: &str) -> String {
    fn pop(output: &mut String) {
        let cut = output.rfind('/').unwrap_or(0);
        output.truncate(cut);
    }
    let mut input = path.to_owned();
    let mut output = String::new();
    while !input.is_empty() {
        if input.starts_with("../") {
            input.drain(..3);
        } else if input.starts_with("./") {
            input.drain(..2);
        } else if input.starts_with("/./") || input == "/." {
            input.replace_range(..2, "");
            if input.is_empty() {
                input.push('/');
            }
        } else if input.starts_with("/../") || input == "/.." {
            input.replace_range(..3, "");
            if input.is_empty() {
                input.push('/');
            }
            pop(&mut output);
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.extend(input.drain(..end));
        }
    }
    output
}

/// Naive segment-by-segment template matcher: `{**}` takes one or more
/// segments (each possibly empty), tried by backtracking.
fn reference_template(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"{**}", rest)) => (1..=path.len()).any(|k| reference_template(rest, &path[k..])),
        Some((&p, rest)) => path.split_first().is_some_and(|(&s, tail)| {
            (if p == "{*}" { !s.is_empty() } else { p == s }) && reference_template(rest, tail)
        }),
    }
}

fn template_strategy() -> impl Strategy<Value = Vec<&'static str>> {
    let head = proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just(""), Just("{*}")],
        0..4,
    );
    let tail = proptest::option::of(proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("")],
        0..3,
    ));
    (head, tail).prop_map(|(mut segments, tail)| {
        if let Some(tail) = tail {
            segments.push("{**}");
            segments.extend(tail);
        }
        segments
    })
}

proptest! {
    #[test]
    fn normalized_output_is_canonical(raw in "[a./\\\\?#%2eEfF0]{0,14}") {
        let Ok(out) = normalize_path(&raw) else { return Ok(()) };
        prop_assert!(out.starts_with('/'), "{:?} -> {:?}", raw, out);
        prop_assert!(!out.contains('\\'));
        prop_assert!(!out.contains("/./") && !out.contains("/../"), "{:?} -> {:?}", raw, out);
        prop_assert!(!out.ends_with("/.") && !out.ends_with("/.."), "{:?} -> {:?}", raw, out);
        // Idempotent, and the second pass finds nothing to change.
        let again = normalize_path(&out).unwrap();
        prop_assert!(matches!(again, Cow::Borrowed(_)));
        prop_assert_eq!(&*again, &*out);
    }

    #[test]
    fn idempotent_without_percent(raw in "[ab./\\\\?#]{0,14}") {
        let out = normalize_path(&raw).unwrap();
        prop_assert_eq!(&*normalize_path(&out).unwrap(), &*out);
    }

    #[test]
    fn dot_removal_agrees_with_rfc(raw in "[ab./]{0,14}") {
        let absolute = if raw.starts_with('/') { raw.clone() } else { format!("/{raw}") };
        prop_assert_eq!(norm(&raw), rfc_remove_dot_segments(&absolute));
    }

    #[test]
    fn template_agrees_with_reference(
        pattern in template_strategy(),
        path in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just(""), Just("ab")], 0..6),
    ) {
        let text = format!("/{}", pattern.join("/"));
        let compiled = PathPattern::parse(&text).unwrap();
        let path_text = format!("/{}", path.join("/"));
        // Re-split the rendered text: `[]` and `[""]` both render as "/".
        let pattern_segments: Vec<&str> = text[1..].split('/').collect();
        let path_segments: Vec<&str> = path_text[1..].split('/').collect();
        prop_assert_eq!(
            compiled.matches(&path_text),
            reference_template(&pattern_segments, &path_segments),
            "{} vs {}", text, path_text
        );
        let set = PathSet::new([text.as_str()]).unwrap();
        prop_assert_eq!(set.matches(&path_text), compiled.matches(&path_text));
    }
}
