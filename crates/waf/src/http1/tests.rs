use proptest::prelude::*;

use super::*;

fn parse(raw: &str) -> RawRequest {
    match parse_request(raw.as_bytes()) {
        Ok(request) => request,
        Err(e) => panic!("{raw:?} should parse: {e}"),
    }
}

fn header_pairs(request: &RawRequest) -> Vec<(String, String)> {
    request
        .headers
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

#[test]
fn simple_get() {
    let r = parse("GET /a?b=c HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
    assert_eq!(r.method, b"GET");
    assert_eq!(r.uri, b"/a?b=c");
    assert_eq!(r.version, b"1.1");
    assert_eq!(
        header_pairs(&r),
        [
            ("Host".into(), "localhost".into()),
            ("Accept".into(), "*/*".into())
        ]
    );
    assert!(r.body.is_empty());
    assert_eq!(r.header("host"), Some(&b"localhost"[..]));
}

#[test]
fn bare_lf_and_leading_blank_lines() {
    let r = parse("\r\n\nPOST / HTTP/1.0\nContent-Length: 3\n\nabcdef");
    assert_eq!(r.method, b"POST");
    assert_eq!(r.version, b"1.0");
    assert_eq!(r.body, b"abc");
}

#[test]
fn values_trimmed_names_kept() {
    let r = parse("GET / HTTP/1.1\r\nX-A:   spaced \t \r\nx-a:\r\nX-B:tight\r\n\r\n");
    assert_eq!(
        header_pairs(&r),
        [
            ("X-A".into(), "spaced".into()),
            ("x-a".into(), String::new()),
            ("X-B".into(), "tight".into())
        ]
    );
}

#[test]
fn obsolete_folding_joined() {
    let r = parse("GET / HTTP/1.1\r\nX-Long: one\r\n   two\r\n\tthree\r\nHost: h\r\n\r\n");
    assert_eq!(
        header_pairs(&r)[0],
        ("X-Long".into(), "one two three".into())
    );
    assert_eq!(r.headers.len(), 2);
}

#[test]
fn body_without_length_is_the_rest() {
    let r = parse("POST / HTTP/1.1\r\nHost: h\r\n\r\na=1&b=2");
    assert_eq!(r.body, b"a=1&b=2");
}

#[test]
fn short_body_taken_as_is() {
    let r = parse("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(r.body, b"abc");
}

#[test]
fn missing_blank_line_is_accepted() {
    let r = parse("GET / HTTP/1.1\r\nHost: h");
    assert_eq!(r.headers.len(), 1);
    assert!(r.body.is_empty());
}

#[test]
fn chunked_body_decoded() {
    let r = parse(
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n3;ext=1\r\nHi \r\n3\r\nCRS\r\n0\r\nTrailer: x\r\n\r\n",
    );
    assert_eq!(r.body, b"Hi CRS");
}

#[test]
fn chunked_lf_only() {
    let r = parse("POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\nA\n0123456789\n0\n");
    assert_eq!(r.body, b"0123456789");
}

#[test]
fn request_line_variants() {
    let r = parse("GET  /a b  HTTP/1.1\r\n\r\n");
    assert_eq!(
        (r.uri.as_slice(), r.version.as_slice()),
        (&b"/a b"[..], &b"1.1"[..])
    );
    let r = parse("GET /\r\n");
    assert_eq!(r.version, b"0.9");
    let r = parse("GET / JUNK/1.0\r\n\r\n");
    assert_eq!(r.version, b"JUNK/1.0");
    let r = parse("  GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.method, b"GET");
}

#[test]
fn errors() {
    let err = |raw: &str| parse_request(raw.as_bytes()).err();
    assert_eq!(err(""), Some(Http1Error::NoRequestLine));
    assert_eq!(err("\r\n \r\n"), Some(Http1Error::NoRequestLine));
    assert_eq!(
        err("GET\r\n\r\n"),
        Some(Http1Error::MissingUri { line: 1, offset: 0 })
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\n"),
        Some(Http1Error::HeaderWithoutColon {
            line: 3,
            offset: 25
        })
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\n folded\r\n\r\n"),
        Some(Http1Error::FoldBeforeFirstHeader {
            line: 2,
            offset: 16
        })
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
        Some(Http1Error::InvalidHeaderName {
            line: 2,
            offset: 16
        })
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\n: h\r\n\r\n"),
        Some(Http1Error::InvalidHeaderName {
            line: 2,
            offset: 16
        })
    );
    for bad in [
        "NotDigits",
        "123x",
        "3;",
        "-1",
        "",
        "99999999999999999999999",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\nabc");
        assert_eq!(
            err(&raw),
            Some(Http1Error::InvalidContentLength { value: bad.into() })
        );
    }
    assert_eq!(
        err("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        Some(Http1Error::ConflictingContentLength {
            first: 1,
            second: 2
        })
    );
    assert!(matches!(
        err("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nab"),
        Some(Http1Error::UnsupportedTransferEncoding { .. })
    ));
    assert!(matches!(
        err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        Some(Http1Error::BadChunk { offset: 47, .. })
    ));
    assert!(matches!(
        err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
        Some(Http1Error::BadChunk { .. })
    ));
    assert!(matches!(
        err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX"),
        Some(Http1Error::BadChunk { .. })
    ));
}

#[test]
fn error_messages_name_the_place() {
    let e = parse_request(b"GET / HTTP/1.1\r\nbroken\r\n\r\n")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("line 2 (byte 16): header line without a colon: expected `Name: value`")
    );
}

#[test]
fn same_length_duplicates_accepted() {
    let r = parse("POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nabc");
    assert_eq!(r.body, b"ab");
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b'-'),
            Just(b'_'),
            Just(b'.'),
            Just(b'!'),
            b'a'..=b'z',
            b'A'..=b'Z',
            b'0'..=b'9'
        ],
        1..12,
    )
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but CR/LF, without leading or trailing whitespace (the parser trims those).
    proptest::collection::vec(
        any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
        0..24,
    )
    .prop_map(|v| trim_ws(&v).to_vec())
}

prop_compose! {
    fn request()(
        method in token(),
        uri in proptest::collection::vec(b'!'..=b'~', 1..40),
        version in prop_oneof![Just(b"1.1".to_vec()), Just(b"1.0".to_vec())],
        mut headers in proptest::collection::vec((token(), header_value()), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        chunked in any::<bool>(),
    ) -> RawRequest {
        headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case(b"content-length") && !n.eq_ignore_ascii_case(b"transfer-encoding")
        });
        if chunked {
            headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
        } else {
            headers.push((b"Content-Length".to_vec(), body.len().to_string().into_bytes()));
        }
        RawRequest { method, uri, version, headers, body }
    }
}

proptest! {
    #[test]
    fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request(&raw);
    }

    #[test]
    fn never_panics_on_near_requests(
        head in "(GET|POST) /[a-z]* HTTP/1.1\r?\n",
        lines in proptest::collection::vec("[A-Za-z: \t\r0-9;-]{0,20}\r?\n", 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut raw = head.into_bytes();
        for line in lines {
            raw.extend_from_slice(line.as_bytes());
        }
        raw.extend_from_slice(&tail);
        let _ = parse_request(&raw);
    }

    #[test]
    fn rendered_request_parses_back(request in request()) {
        let parsed = parse_request(&request.to_bytes());
        prop_assert_eq!(parsed, Ok(request));
    }

    #[test]
    fn trailing_bytes_beyond_content_length_ignored(
        request in request(),
        extra in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        prop_assume!(request.header("content-length").is_some());
        let mut raw = request.to_bytes();
        raw.extend_from_slice(&extra);
        prop_assert_eq!(parse_request(&raw), Ok(request));
    }
}
