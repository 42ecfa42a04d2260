use super::*;
use proptest::prelude::*;

const CT: &[u8] = b"multipart/form-data; boundary=XyZ";

/// Joins lines with CRLF, as go-ftw sends multipart bodies.
fn crlf(lines: &[&str]) -> Vec<u8> {
    lines.join("\r\n").into_bytes()
}

fn args(m: &Multipart) -> Vec<(String, String)> {
    m.args
        .iter()
        .map(|a| {
            (
                String::from_utf8_lossy(&a.name).into_owned(),
                String::from_utf8_lossy(&a.value).into_owned(),
            )
        })
        .collect()
}

fn headers(m: &Multipart) -> Vec<(String, String)> {
    m.part_headers
        .iter()
        .map(|(n, l)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(l).into_owned(),
            )
        })
        .collect()
}

fn s(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn simple_form_fields() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "1",
        "--XyZ",
        "Content-Disposition: form-data; name=\"b\"",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "two words",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.error, None);
    assert_eq!(args(&m), vec![s("a", "1"), s("b", "two words")]);
    assert_eq!(
        headers(&m),
        vec![
            s("a", "Content-Disposition: form-data; name=\"a\""),
            s("b", "Content-Disposition: form-data; name=\"b\""),
            s("b", "Content-Type: text/plain; charset=utf-8"),
        ]
    );
    assert!(!m.flags.strict_error(), "{:?}", m.flags);
    assert!(m.flags.crlf_line && !m.flags.lf_line);
    assert_eq!(m.flags.unmatched_boundary_value, 2);
    assert!(!m.flags.unmatched_boundary);
    assert!(m.files.is_empty());
}

#[test]
fn file_parts() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"up\"; filename=\"shell.php\"",
        "Content-Type: application/octet-stream",
        "",
        "<?php",
        "system($_GET['c']);",
        "--XyZ--",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.error, None);
    assert!(m.args.is_empty());
    assert_eq!(
        m.files,
        vec![FilePart {
            name: b"up".to_vec(),
            filename: b"shell.php".to_vec(),
            size: "<?php\r\nsystem($_GET['c']);".len(),
            content: b"<?phpsystem($_GET['c']);".to_vec(),
        }]
    );
    assert_eq!(m.filenames, vec![b"shell.php".to_vec()]);
    assert_eq!(m.names, vec![b"up".to_vec()]);
}

#[test]
fn multi_line_values_lose_line_endings_like_libmodsecurity() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"t\"",
        "",
        "line1",
        "line2",
        "",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(args(&m), vec![s("t", "line1line2")]);
}

#[test]
fn empty_value_needs_a_data_line() {
    let good = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"e\"",
        "",
        "",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &good);
    assert_eq!(args(&m), vec![s("e", "")]);
    assert!(!m.flags.invalid_part);

    // Boundary right after the blank line: taken as data, the part swallows the rest.
    let glued = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"e\"",
        "",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &glued);
    assert!(m.flags.invalid_part);
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: Final boundary missing.")
    );
    assert!(m.args.is_empty());
}

#[test]
fn lf_only_bodies_set_lf_line() {
    let body = b"--XyZ\nContent-Disposition: form-data; name=\"a\"\n\nv\n--XyZ--\n";
    let m = parse_multipart(CT, body);
    assert_eq!(args(&m), vec![s("a", "v")]);
    assert!(m.flags.lf_line && !m.flags.crlf_line);
    assert!(m.flags.strict_error());
}

#[test]
fn final_boundary_without_line_ending() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "v",
        "--XyZ--",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.error, None);
    assert_eq!(args(&m), vec![s("a", "v")]);
    assert!(!m.flags.strict_error());
}

#[test]
fn invalid_header_character_is_reported_but_parsing_goes_on() {
    // CRS 922130-1: a 0x0E byte before the first header name.
    let body = crlf(&[
        "--boundary",
        "\u{e}Content-Disposition: form-data; name=\"file\"; filename=\"1.php\"",
        "Content-Disposition: form-data; name=\"post\"",
        "",
        "<?php var_dump(file_get_contents(\"/etc/passwd\"));",
        "--boundary--",
    ]);
    let m = parse_multipart(b"multipart/form-data; boundary=boundary", &body);
    assert_eq!(
        m.error.as_deref(),
        Some(
            "Multipart parsing error: Multipart: Invalid part header (contains invalid character)."
        )
    );
    assert_eq!(
        args(&m),
        vec![s(
            "post",
            "<?php var_dump(file_get_contents(\"/etc/passwd\"));"
        )]
    );
    assert_eq!(
        headers(&m),
        vec![s("post", "Content-Disposition: form-data; name=\"post\"")]
    );
}

#[test]
fn charset_part_is_keyed_by_its_name() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"_charset_\"",
        "",
        "utf-7",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.part_headers[0].0, b"_charset_");
    assert_eq!(args(&m), vec![s("_charset_", "utf-7")]);
}

#[test]
fn missing_final_boundary_drops_all_arguments() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "1",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: Final boundary missing.")
    );
    assert!(m.args.is_empty());
    // Part headers are recorded as parts close, so none here; strict flags unaffected.
    assert!(!m.flags.strict_error());
}

#[test]
fn no_boundary_in_body() {
    let m = parse_multipart(CT, b"just some text\r\n");
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: No boundaries found in payload.")
    );
    assert!(m.flags.data_before);
}

#[test]
fn empty_body_is_fine() {
    let m = parse_multipart(CT, b"");
    assert_eq!(m.error, None);
    assert!(m.args.is_empty() && !m.flags.strict_error());
}

#[test]
fn data_before_and_after() {
    let body = crlf(&[
        "preamble",
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "1",
        "--XyZ--",
        "epilogue",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.data_before && m.flags.data_after);
    assert_eq!(args(&m), vec![s("a", "1")]);
    assert!(m.flags.strict_error());
}

#[test]
fn unmatched_boundary_values() {
    // The last boundary-ish event wins: a later real boundary turns 1 into 2.
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "--other",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.flags.unmatched_boundary_value, 2);
    assert!(!m.flags.unmatched_boundary);
    assert_eq!(args(&m), vec![s("a", "--other")]);
    // A closing boundary without line ending is handled at the end and leaves the value alone.
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "x --XyZ y",
        "--XyZ--",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.flags.unmatched_boundary_value, 1);
    assert!(m.flags.unmatched_boundary);
    assert_eq!(args(&m), vec![s("a", "x --XyZ y")]);
}

#[test]
fn header_folding() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data;",
        "\tname=\"a\"",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.header_folding && !m.flags.invalid_header_folding);
    assert_eq!(args(&m), vec![s("a", "1")]);
    assert_eq!(
        headers(&m),
        vec![s("a", "Content-Disposition: form-data; name=\"a\"")]
    );
    let body = crlf(&["--XyZ", "\tname=\"a\"", "", "1", "--XyZ--", ""]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.header_folding);
    assert!(m.error.is_some());
}

#[test]
fn content_disposition_errors() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"; x=y",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: Final boundary missing."),
        "the part never leaves its header state, so the closing boundary is not seen"
    );
    let body = crlf(&["--XyZ", "Content-Type: text/plain", "", "1", "--XyZ--", ""]);
    assert!(parse_multipart(CT, &body).flags.invalid_part);
}

#[test]
fn single_quotes_flag_invalid_quoting() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name='a'",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.invalid_quoting);
    assert_eq!(args(&m), vec![s("a", "1")]);
}

#[test]
fn quoted_and_whitespace_boundaries() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=a",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(b"multipart/form-data; boundary=\"XyZ\"", &body);
    assert!(m.flags.boundary_quoted && m.flags.strict_error());
    assert_eq!(args(&m), vec![s("a", "1")]);

    let body = crlf(&[
        "-- XyZ",
        "Content-Disposition: form-data; name=a",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.error);
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: No boundaries found in payload.")
    );

    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=a",
        "",
        "1",
        "--XyZ-- x",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.error && m.args.is_empty());
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: Final boundary missing.")
    );
}

#[test]
fn bad_content_type() {
    let m = parse_multipart(b"multipart/form-data", b"--x\r\n");
    assert_eq!(
        m.error.as_deref(),
        Some("Multipart parsing error: Multipart: Boundary not found in C-T.")
    );
    assert!(m.flags.error && m.flags.strict_error());
    let m = parse_multipart(b"multipart/form-data boundary=XyZ", &crlf(&["--XyZ--", ""]));
    assert!(m.flags.missing_semicolon && m.error.is_none());
}

#[test]
fn long_lines_are_chunked() {
    let long = "a".repeat(10_000);
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "",
        &long,
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(args(&m), vec![s("a", &long)]);
    let long_header = format!("X-Long: {}", "h".repeat(5000));
    let body = crlf(&[
        "--XyZ",
        &long_header,
        "Content-Disposition: form-data; name=\"a\"",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert!(m.flags.error);
    assert!(m.args.is_empty());
}

#[test]
fn file_limit() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"f1\"; filename=\"a\"",
        "",
        "x",
        "--XyZ",
        "Content-Disposition: form-data; name=\"f2\"; filename=\"b\"",
        "",
        "y",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart_with(CT, &body, &MultipartOptions { file_limit: 1 });
    assert!(m.flags.file_limit_exceeded && m.flags.strict_error());
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.files[1].content, b"");
    assert_eq!(m.files[1].size, 1);
    assert!(
        m.error
            .as_deref()
            .is_some_and(|e| e.contains("Upload file limit exceeded 1"))
    );
    assert!(!parse_multipart(CT, &body).flags.file_limit_exceeded);
}

#[test]
fn duplicate_part_header_is_ignored_silently() {
    let body = crlf(&[
        "--XyZ",
        "Content-Disposition: form-data; name=\"a\"",
        "content-disposition: form-data; name=\"b\"",
        "",
        "1",
        "--XyZ--",
        "",
    ]);
    let m = parse_multipart(CT, &body);
    assert_eq!(m.error, None);
    assert_eq!(args(&m), vec![s("a", "1")]);
    assert_eq!(headers(&m).len(), 1);
}

fn arb_part() -> impl Strategy<Value = (String, String)> {
    ("[a-z_]{1,8}", "[ -~]{0,30}")
        .prop_filter("no boundary-like values", |(_, v)| !v.starts_with("--"))
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_multipart(CT, &body);
    }

    #[test]
    fn never_panics_on_line_soup(lines in proptest::collection::vec(
        prop_oneof![
            Just("--XyZ".to_owned()),
            Just("--XyZ--".to_owned()),
            Just("".to_owned()),
            Just("Content-Disposition: form-data; name=\"n\"; filename=\"f\"".to_owned()),
            "[ -~\t]{0,20}",
        ],
        0..16,
    ), lf in any::<bool>()) {
        let body = lines.join(if lf { "\n" } else { "\r\n" });
        let m = parse_multipart(CT, body.as_bytes());
        prop_assert!(m.args.iter().all(|a| !a.name.is_empty()));
    }

    #[test]
    fn never_panics_on_arbitrary_content_types(ct in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = parse_multipart(&ct, b"--x\r\n\r\n--x--\r\n");
    }

    #[test]
    fn well_formed_bodies_round_trip(parts in proptest::collection::vec(arb_part(), 0..6)) {
        let mut body = Vec::new();
        for (n, v) in &parts {
            body.extend_from_slice(format!("--XyZ\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n").as_bytes());
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        let m = parse_multipart(CT, &body);
        if parts.is_empty() {
            prop_assert_eq!(m.error, None);
        } else {
            prop_assert_eq!(m.error.clone(), None);
            prop_assert!(!m.flags.strict_error());
            prop_assert_eq!(args(&m), parts);
        }
    }
}
