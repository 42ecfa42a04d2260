use proptest::prelude::*;

use super::*;
use crate::load::parse_file;

/// The first stage's input of a one-test YAML document.
fn input(yaml: &str) -> Input {
    let file = parse_file(yaml).unwrap_or_else(|e| panic!("bad test YAML: {e}"));
    file.tests[0].stages[0].input.clone()
}

fn built(yaml: &str) -> String {
    let bytes = build_request(&input(yaml)).unwrap_or_else(|e| panic!("build failed: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn form_post_is_url_encoded_and_completed() {
    let got = built(
        r#"
rule_id: 1
tests:
  - test_id: 1
    stages:
      - input:
          method: POST
          uri: /post
          headers:
            User-Agent: "OWASP CRS test agent"
            Host: localhost
            Accept: "*/*"
          data: "var=1' or '1'='1&x=a b/c"
"#,
    );
    assert_eq!(
        got,
        "POST /post HTTP/1.1\r\nAccept: */*\r\nHost: localhost\r\nUser-Agent: OWASP CRS test agent\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: 36\r\n\r\n\
         var=1%27+or+%271%27%3D%271&x=a+b%2Fc"
    );
}

#[test]
fn already_encoded_form_body_is_sent_unchanged() {
    let got = built(
        r#"
rule_id: 1
tests:
  - stages:
      - input:
          method: POST
          headers: {Host: localhost, Content-Type: Application/X-WWW-Form-Urlencoded}
          data: "a=%3Cb%3E&c=<d>"
"#,
    );
    assert!(got.ends_with("\r\n\r\na=%3Cb%3E&c=<d>"), "{got}");
    assert!(got.contains("Content-Length: 15\r\n"), "{got}");
}

#[test]
fn bodyless_post_gets_content_length_zero() {
    let got = built(
        r#"
rule_id: 1
tests:
  - stages:
      - input:
          method: POST
          headers: {Host: localhost}
"#,
    );
    assert_eq!(
        got,
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let got =
        built("rule_id: 1\ntests:\n  - stages:\n      - input: {method: GET, version: HTTP/1.0}\n");
    assert_eq!(got, "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
}

#[test]
fn integer_header_values_and_explicit_length() {
    let got = built(
        r#"
rule_id: 1
tests:
  - stages:
      - input:
          method: POST
          headers: {Content-Length: 0, Host: localhost, Connection: keep-alive}
"#,
    );
    assert_eq!(
        got,
        "POST / HTTP/1.1\r\nConnection: keep-alive\r\nContent-Length: 0\r\nHost: localhost\r\n\r\n"
    );
}

#[test]
fn multipart_lf_becomes_crlf() {
    let got = built(
        r#"
rule_id: 1
tests:
  - stages:
      - input:
          method: POST
          headers:
            Host: localhost
            Content-Type: "multipart/form-data; boundary=xx"
          data: |
            --xx
            Content-Disposition: form-data; name="a"

            1
            --xx--
"#,
    );
    let body = "--xx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xx--\r\n";
    assert_eq!(
        got,
        format!(
            "POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=xx\r\nHost: localhost\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    );
}

#[test]
fn encoded_request_is_verbatim() {
    let got = built(
        "rule_id: 1\ntests:\n  - stages:\n      - input:\n          encoded_request: \"R0VUIC8gSFRUUC8xLjANCkhvc3Q6DQoNCg==\"\n",
    );
    assert_eq!(got, "GET / HTTP/1.0\r\nHost:\r\n\r\n");
}

#[test]
fn autocomplete_off_sends_as_given() {
    let got = built(
        r#"
rule_id: 1
tests:
  - stages:
      - input:
          method: POST
          version: ""
          headers: {Host: localhost}
          data: "a b"
          autocomplete_headers: false
"#,
    );
    assert_eq!(got, "POST / \r\nHost: localhost\r\n\r\na b");
    let stop = input("rule_id: 1\ntests:\n  - stages:\n      - input: {stop_magic: true}\n");
    assert!(!stop.autocomplete());
}

#[test]
fn repeat_template_and_escapes() {
    let got = built(
        "rule_id: 1\ntests:\n  - stages:\n      - input:\n          headers: {Content-Type: text/plain}\n          data: \"\\xff{{ \\\"ab\\\" | repeat 2 }}\"\n",
    );
    assert!(got.ends_with("\r\n\r\n\u{ff}abab"), "{got:?}");
    assert!(got.contains("Content-Length: 6\r\n"), "{got:?}");
}

#[test]
fn broken_template_drops_body() {
    let got = built("rule_id: 1\ntests:\n  - stages:\n      - input:\n          data: \"a={{b\"\n");
    assert_eq!(got, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
}

#[test]
fn encoded_data_body() {
    let got = built(
        "rule_id: 1\ntests:\n  - stages:\n      - input:\n          headers: {Content-Type: text/plain}\n          encoded_data: \"AAE=\"\n",
    );
    assert!(
        got.ends_with("Content-Length: 2\r\n\r\n\u{0}\u{1}"),
        "{got:?}"
    );
}

#[test]
fn data_and_encoded_request_conflict() {
    let i = input(
        "rule_id: 1\ntests:\n  - stages:\n      - input: {data: x, encoded_request: \"eA==\"}\n",
    );
    assert_eq!(build_request(&i), Err(BuildError::DataAndEncodedRequest));
}

proptest! {
    #[test]
    fn form_encoding_keeps_structure(pairs in proptest::collection::vec(("[a-z ]{1,5}", "[a-z<>' =]{0,5}"), 1..5)) {
        let body: Vec<u8> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        let headers = vec![("Content-Type".to_string(), FORM_TYPE.to_string())];
        let encoded = encode_form_body(&headers, body);
        let pieces = encoded.split(|&b| b == b'&').count();
        prop_assert_eq!(pieces, pairs.len());
        prop_assert!(!encoded.iter().any(|&b| b == b' ' || b == b'<'));
    }

    #[test]
    fn content_length_matches_body(data in "[ -~\n]{1,64}", multipart in any::<bool>()) {
        let headers = multipart.then(|| {
            std::collections::BTreeMap::from([(
                "Content-Type".to_string(),
                crate::model::Scalar("multipart/form-data; boundary=b".into()),
            )])
        });
        let i = Input {
            method: Some(crate::model::Scalar("POST".into())),
            headers,
            data: Some(crate::model::Scalar(data.replace("{{", ""))),
            ..Input::default()
        };
        let raw = build_request(&i).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let split = text.find("\r\n\r\n").map_or(0, |p| p + 4);
        let declared = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim_end().parse::<usize>().ok());
        prop_assert_eq!(declared, Some(raw.len() - split));
    }
}
