use proptest::prelude::*;

use super::*;

fn front(head: &str) -> Front {
    apache_front(head.as_bytes())
}

fn status(head: &str) -> Option<u16> {
    match front(head) {
        Front::Reject { status, .. } => Some(status),
        Front::Forward => None,
        Front::Http09 => Some(9),
    }
}

const H: &str = "Host: localhost\r\n\r\n";

#[test]
fn accepted_requests() {
    for line in [
        "GET / HTTP/1.1",
        "|GET /get HTTP/1.1",
        "GET /get/index.html:80?I=Like HTTP/1.1",
        "CONNECT 1.2.3.4:80 HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "GET http://localhost HTTP/1.1",
        "GET //double HTTP/1.1",
        "GET / HTTP/4.0",
        "GET /i%FFndex.html?test=test1 HTTP/1.1",
    ] {
        assert_eq!(status(&format!("{line}\r\n{H}")), None, "{line}");
    }
    assert_eq!(
        status("\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        None
    );
    assert_eq!(status("GET / HTTP/1.0\r\nHost:\r\n\r\n"), None);
    assert_eq!(status("GET / HTTP/1.0\r\n\r\n"), None);
}

#[test]
fn rejected_request_lines() {
    for line in [
        "     GET /get HTTP/1.1",
        "\tGET /get HTTP/1.1",
        "CONNECT www.coreruleset.org HTTP/1.1",
        "GET /get/index.html:80?I=Like&Apples=Today#tag HTTP/1.1",
        "GET /#fragment HTTP/1.1",
        "GET \\ HTTP/1.1",
        "GET \\index.html HTTP\\1.0",
        "GET /a?<script xmlns=\"x\">setTimeout(\"x\",1)</script> HTTP/1.1",
        "GET / HTTP/0.9",
        "GET / 1.1",
        "GET / TEST",
        "GET / HTTP/0.8",
        "GET / JUNK/1.0",
        "GET / http/1.1",
        "GET  / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET",
        "GET * HTTP/1.1",
        "GET http://user:pw@localhost/ HTTP/1.1",
        "GET /a\u{1}b HTTP/1.1",
    ] {
        assert_eq!(status(&format!("{line}\r\n{H}")), Some(400), "{line:?}");
    }
    assert_eq!(
        status(&format!("GET /{} HTTP/1.1\r\n{H}", "a".repeat(9000))),
        Some(414)
    );
}

#[test]
fn http09() {
    assert_eq!(front("GET / \r\nHost: localhost\r\n\r\n"), Front::Http09);
    assert_eq!(front("GET /\r\n"), Front::Http09);
    assert_eq!(status("POST / \r\n\r\n"), Some(400));
    assert_eq!(status("HEAD /\r\n\r\n"), Some(400));
}

#[test]
fn rejected_headers() {
    let cases = [
        "Host: localhost\r\nContent-Length: NotDigits\r\n\r\n",
        "Host: localhost\r\nContent-Length: 123x\r\n\r\n",
        "Host: localhost\r\nContent-Length: 3;\r\n\r\n",
        "Host: localhost\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        "Host: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
        "Host: localhost\r\nSomeHeader: a\rInjected: b\r\n\r\n",
        "Host: localhost%1F\r\n\r\n",
        "Host: %00\r\n\r\n",
        "Host: \r\n\r\n",
        "Host: 1234\r\n\r\n",
        "Host: a..b\r\n\r\n",
        "Host: 01.2.3.4\r\n\r\n",
        "Host: example.123\r\n\r\n",
        "Host: a, b\r\n\r\n",
        "Host: localhost\r\nHost: other\r\n\r\n",
        "\r\n",
        " folded: x\r\nHost: localhost\r\n\r\n",
        "Host : localhost\r\n\r\n",
        "Host: localhost\r\nbroken\r\n\r\n",
        "Host: localhost\nAccept: */*\r\n\r\n",
        "Host: localhost\r\n",
    ];
    for headers in cases {
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\n{headers}")),
            Some(400),
            "{headers:?}"
        );
    }
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n"),
        Some(417)
    );
}

#[test]
fn accepted_headers() {
    let cases = [
        "Host: localhost\r\nContent-Length: 3\r\n\r\nabc",
        "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Host: [::1]\r\n\r\n",
        "Host: [fe80::f1:01:fe01:1]:80\r\n\r\n",
        "Host: deadbeef.de:8080\r\n\r\n",
        "Host: 127.0.0.1\r\n\r\n",
        "Host: localhost.\r\n\r\n",
        "Host: localhost\r\nX-Long: a\r\n  b\r\n\r\n",
        "Host: localhost\r\nX_Filename: \u{e9}\t \r\n\r\n",
        "Host: localhost\r\nExpect: 100-continue\r\n\r\n",
    ];
    for headers in cases {
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\n{headers}")),
            None,
            "{headers:?}"
        );
    }
}

#[test]
fn view_merges_and_fixes() {
    let h = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
    let headers = vec![
        h("Content-Type", "application/json"),
        h("Host", "localhost"),
        h("content-type", "application/xml"),
        h("Transfer-Encoding", "chunked"),
        h("Content-Length", "5"),
    ];
    let view = apache_view(&headers, b"http://example.com:8080/x");
    assert_eq!(
        view,
        vec![
            h("Content-Type", "application/json, application/xml"),
            h("Host", "example.com:8080"),
            h("Transfer-Encoding", "chunked"),
        ]
    );
}

#[test]
fn unframed_body_is_not_read() {
    let h = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
    assert_eq!(apache_body(&[h("Host", "h")], b"abc"), b"");
    assert_eq!(apache_body(&[h("content-length", "3")], b"abc"), b"abc");
    assert_eq!(
        apache_body(&[h("Transfer-Encoding", "chunked")], b"abc"),
        b"abc"
    );
}

proptest! {
    #[test]
    fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = apache_front(&raw);
    }

    #[test]
    fn well_formed_requests_are_forwarded(
        path in "/[a-zA-Z0-9/._~%-]{0,30}",
        query in proptest::option::of("[a-zA-Z0-9=&%+]{0,20}"),
        names in proptest::collection::vec("X-[A-Za-z]{1,8}", 0..5),
        value in "[ -~]{0,20}",
    ) {
        let uri = match query { Some(q) => format!("{path}?{q}"), None => path };
        let mut raw = format!("GET {uri} HTTP/1.1\r\nHost: localhost\r\n");
        for name in names {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        prop_assert_eq!(apache_front(raw.as_bytes()), Front::Forward);
    }
}
