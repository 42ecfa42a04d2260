//! Running one raw request through every phase, with an emulated backend — what
//! `bulkhead waf test` and the conformance runner do.
//!
//! The backend is the one the CRS regression tests run against (albedo): `POST /reflect`
//! with a JSON body `{"status", "headers", "body" | "encodedBody"}` answers with that
//! response, every other request gets `200` and an empty body. The response Content-Type
//! is sniffed from the body as Go's `net/http` does, because the response rules only see
//! bodies of the configured MIME types.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;

use crate::http1::RawRequest;
use crate::{RuleSet, Transaction};

/// A backend response for the response phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Runs `req` through phases 1–5 from 127.0.0.1, with `response` as the upstream answer
/// (skipped when a request phase stopped the transaction).
pub fn run(rules: &Arc<RuleSet>, req: &RawRequest, response: &Response) -> Transaction {
    let mut tx = Transaction::new(Arc::clone(rules));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    tx.process_connection(local, 40_000, local, 80);
    tx.process_uri(&req.uri, &req.method, &req.version);
    for (name, value) in &req.headers {
        tx.add_request_header(name, value);
    }
    if tx.process_request_headers().is_none() {
        tx.append_request_body(&req.body);
        if tx.process_request_body().is_none() {
            for (name, value) in &response.headers {
                tx.add_response_header(name, value);
            }
            if tx
                .process_response_headers(response.status, b"1.1")
                .is_none()
            {
                tx.append_response_body(&response.body);
                tx.process_response_body();
            }
        }
    }
    tx.process_logging();
    tx
}

/// What the albedo test backend answers to `req`.
pub fn albedo(req: &RawRequest) -> Response {
    let empty = Response {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let path = req.uri.split(|b| *b == b'?').next().unwrap_or_default();
    if !req.method.eq_ignore_ascii_case(b"POST") || path != b"/reflect" {
        return empty;
    }
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return Response {
            status: 400,
            ..empty
        };
    };
    let status = spec
        .get("status")
        .and_then(|s| s.as_u64())
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    let body = match (
        spec.get("body").and_then(|b| b.as_str()),
        spec.get("encodedBody").and_then(|b| b.as_str()),
    ) {
        (_, Some(enc)) => base64::engine::general_purpose::STANDARD
            .decode(enc)
            .unwrap_or_default(),
        (Some(b), None) => b.as_bytes().to_vec(),
        (None, None) => Vec::new(),
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = spec
        .get("headers")
        .and_then(|h| h.as_object())
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_bytes().to_vec(),
                        v.as_str().unwrap_or_default().as_bytes().to_vec(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
    {
        headers.push((
            b"Content-Type".to_vec(),
            sniff_content_type(&body).as_bytes().to_vec(),
        ));
    }
    headers.push((
        b"Content-Length".to_vec(),
        body.len().to_string().into_bytes(),
    ));
    Response {
        status,
        headers,
        body,
    }
}

/// The Content-Type Go's `http.DetectContentType` gives a body, for the types that decide
/// whether response rules see it (HTML, XML, plain text, binary).
pub fn sniff_content_type(body: &[u8]) -> &'static str {
    const HTML: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    let data = &body[..body.len().min(512)];
    let start = data
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .unwrap_or(data.len());
    let rest = &data[start..];
    for sig in HTML {
        if rest.len() > sig.len()
            && rest[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(rest[sig.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if rest.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    if rest.starts_with(b"%PDF-") {
        return "application/pdf";
    }
    let binary = data
        .iter()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f));
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> RawRequest {
        RawRequest {
            method: b"POST".to_vec(),
            uri: b"/reflect".to_vec(),
            version: b"1.1".to_vec(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reflects_status_headers_and_body() {
        let r = albedo(&post(
            r#"{"status": 500, "headers": {"X-A": "b"}, "body": "<html><body>oops</body></html>"}"#,
        ));
        assert_eq!(r.status, 500);
        assert_eq!(r.body, b"<html><body>oops</body></html>");
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == b"Content-Type" && v.starts_with(b"text/html"))
        );
        assert!(r.headers.iter().any(|(k, _)| k == b"X-A"));
        let plain = albedo(&post(r#"{"body": "ORA-01234 error"}"#));
        assert!(
            plain
                .headers
                .iter()
                .any(|(_, v)| v.starts_with(b"text/plain"))
        );
        let mut get = post("");
        get.method = b"GET".to_vec();
        assert_eq!(albedo(&get).body, b"");
    }

    #[test]
    fn sniffs_like_go() {
        assert_eq!(
            sniff_content_type(b"  <!-- x -->"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<a href=x>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"<abbr>"), "text/plain; charset=utf-8");
        assert_eq!(
            sniff_content_type(b"<?xml version='1.0'?>"),
            "text/xml; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"\x00\x01"), "application/octet-stream");
    }

    proptest::proptest! {
        #[test]
        fn albedo_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut r = post("");
            r.body = body;
            let _ = albedo(&r);
        }
    }
}
