//! The CRS CI backend, albedo 0.3.0, emulated: `POST /reflect` (and `/reflect/…`) answers
//! with the status, headers and body described by its JSON request body; every other request
//! gets `200` with an empty body. Headers are those Go's `net/http` server would send,
//! including the sniffed Content-Type that decides whether ModSecurity inspects the body.

use serde_json::Value;

/// The backend's response, as the WAF's response phases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// A fixed Date header keeps runs deterministic.
const DATE: &str = "Thu, 02 Jul 2026 00:00:00 GMT";

/// Go's `bufferBeforeChunkingSize`: larger bodies are sent chunked, without Content-Length.
const CHUNKING_THRESHOLD: usize = 2048;

/// The response albedo gives to a request that reached it.
pub fn respond(method: &[u8], uri: &[u8], body: &[u8]) -> Response {
    let path = uri.split(|&b| b == b'?').next().unwrap_or_default();
    if method == b"POST" && (path == b"/reflect" || path.starts_with(b"/reflect/")) {
        return reflect(body);
    }
    finish(200, Vec::new(), Vec::new())
}

/// `handleReflect`: decode the specification, answer with it.
fn reflect(body: &[u8]) -> Response {
    let spec = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(spec)) => spec,
        Ok(Value::Null) => serde_json::Map::new(),
        _ => return finish(400, Vec::new(), b"Invalid JSON in request body".to_vec()),
    };
    // Go's encoding/json matches field names case-insensitively; the last match wins.
    let field = |name: &str| {
        spec.iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let status = match field("status") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(n) => n,
            None => return finish(400, Vec::new(), b"Invalid JSON in request body".to_vec()),
        },
    };
    let mut headers = Vec::new();
    if let Some(Value::Object(map)) = field("headers") {
        for (name, value) in map {
            match value.as_str() {
                Some(v) => headers.push((canonical_header_key(name), v.to_owned())),
                None => return finish(400, Vec::new(), b"Invalid JSON in request body".to_vec()),
            }
        }
    }
    if (status > 0 && status < 100) || status >= 600 {
        return finish(
            400,
            headers,
            format!("Invalid status code: {status}").into_bytes(),
        );
    }
    let status = u16::try_from(status)
        .ok()
        .filter(|&s| s != 0)
        .unwrap_or(200);
    let text = field("body").and_then(Value::as_str).unwrap_or_default();
    let body = if text.is_empty() {
        let encoded = field("encodedBody")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match decode_base64(encoded) {
            Some(bytes) => bytes,
            None => {
                return finish(
                    status,
                    headers,
                    b"invalid base64 encoding of response body".to_vec(),
                );
            }
        }
    } else {
        text.as_bytes().to_vec()
    };
    finish(status, headers, body)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// What `net/http` adds: Content-Type (sniffed) unless set, Content-Length for small bodies, Date.
fn finish(status: u16, mut headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !body.is_empty() && !has(&headers, "Content-Type") {
        headers.push(("Content-Type".into(), sniff_content_type(&body).into()));
    }
    if !has(&headers, "Date") {
        headers.push(("Date".into(), DATE.into()));
    }
    if body.len() <= CHUNKING_THRESHOLD && !has(&headers, "Content-Length") && body_allowed(status)
    {
        headers.push(("Content-Length".into(), body.len().to_string()));
    }
    Response {
        status,
        headers,
        body,
    }
}

fn body_allowed(status: u16) -> bool {
    !((100..200).contains(&status) || status == 204 || status == 304)
}

/// `http.CanonicalHeaderKey` (`content-type` → `Content-Type`), as Go's `Header.Add`
/// applies it; a name with a byte that is not a token character is returned unchanged.
pub fn canonical_header_key(name: &str) -> String {
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Go's `http.DetectContentType` (WHATWG MIME sniffing), for the signatures that matter
/// for text responses; other binary formats fall through to `application/octet-stream`.
pub fn sniff_content_type(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(512)];
    let first = data.iter().position(|&b| !is_ws(b)).unwrap_or(data.len());
    let trimmed = &data[first..];
    for sig in HTML_SIGNATURES {
        if html_match(trimmed, sig) {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    // Go's byte-order-mark patterns are four bytes long (the last one masked out).
    if let Some((_, ct)) = BOM_SIGNATURES
        .iter()
        .find(|(sig, _)| data.len() >= 4 && data.starts_with(sig))
    {
        return ct;
    }
    if let Some((_, ct)) = EXACT_SIGNATURES
        .iter()
        .find(|(sig, _)| data.starts_with(sig))
    {
        return ct;
    }
    if data.len() >= 14 && data.starts_with(b"RIFF") && &data[8..14] == b"WEBPVP" {
        return "image/webp";
    }
    if trimmed.iter().any(|&b| is_binary(b)) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// HTML tags (upper case) that Go recognises at the start of a body.
const HTML_SIGNATURES: &[&[u8]] = &[
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

/// Byte order marks.
const BOM_SIGNATURES: &[(&[u8], &str)] = &[
    (b"\xFE\xFF", "text/plain; charset=utf-16be"),
    (b"\xFF\xFE", "text/plain; charset=utf-16le"),
    (b"\xEF\xBB\xBF", "text/plain; charset=utf-8"),
];

/// Magic numbers checked on the raw (untrimmed) body, in Go's table order.
const EXACT_SIGNATURES: &[(&[u8], &str)] = &[
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    (b"\xFF\xD8\xFF", "image/jpeg"),
    (b"OggS\x00", "application/ogg"),
    (b"MThd\x00\x00\x00\x06", "audio/midi"),
    (b"ID3", "audio/mpeg"),
    (b"\x1A\x45\xDF\xA3", "video/webm"),
    (b"\x00\x01\x00\x00", "font/ttf"),
    (b"OTTO", "font/otf"),
    (b"ttcf", "font/collection"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
    (b"\x1F\x8B\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00\x61\x73\x6D", "application/wasm"),
];

/// Whitespace skipped before sniffing: HT, LF, FF, CR, SP.
fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// WHATWG "binary data byte".
fn is_binary(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f)
}

/// The tag matches case-insensitively and is followed by a space or `>`.
fn html_match(data: &[u8], sig: &[u8]) -> bool {
    data.len() > sig.len()
        && data[..sig.len()]
            .iter()
            .zip(sig)
            .all(|(d, s)| d.to_ascii_uppercase() == *s)
        && matches!(data[sig.len()], b' ' | b'>')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            sniff_content_type(b"  <html><body>x"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<!doctype html>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<b>bold</b>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"<br/>"), "text/plain; charset=utf-8");
        assert_eq!(sniff_content_type(b"<html"), "text/plain; charset=utf-8");
        assert_eq!(
            sniff_content_type(b"\n<?xml version"),
            "text/xml; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"Warning: mysql_connect()"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"BMW rocks"), "image/bmp");
        assert_eq!(sniff_content_type(b"a\x00b"), "application/octet-stream");
        assert_eq!(
            sniff_content_type("caf\u{e9}".as_bytes()),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn reflect_builds_the_response() {
        let r = respond(
            b"POST",
            b"/reflect",
            br#"{"body": "<html> ORA-00933 </html>"}"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<html> ORA-00933 </html>");
        assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
        assert_eq!(header(&r, "Content-Length"), Some("24"));
        let r = respond(
            b"POST",
            b"/reflect?x",
            br#"{"STATUS": 503, "headers": {"x-a": "1"}, "encodedBody": "aGk="}"#,
        );
        assert_eq!((r.status, r.body.as_slice()), (503, &b"hi"[..]));
        assert_eq!(header(&r, "X-A"), Some("1"));
        let r = respond(b"POST", b"/reflect", br#"{"status": 42}"#);
        assert_eq!(r.status, 400);
        let r = respond(b"POST", b"/reflect", b"not json");
        assert_eq!(r.status, 400);
    }

    #[test]
    fn other_paths_are_empty() {
        for (method, uri) in [
            (&b"GET"[..], &b"/reflect"[..]),
            (b"POST", b"/post"),
            (b"GET", b"/"),
        ] {
            let r = respond(method, uri, b"{\"body\":\"x\"}");
            assert_eq!((r.status, r.body.len()), (200, 0));
            assert_eq!(header(&r, "Content-Type"), None);
            assert_eq!(header(&r, "Content-Length"), Some("0"));
        }
    }

    #[test]
    fn large_bodies_have_no_length() {
        let big = format!("{{\"body\": \"{}\"}}", "a".repeat(3000));
        let r = respond(b"POST", b"/reflect", big.as_bytes());
        assert_eq!(header(&r, "Content-Length"), None);
    }

    proptest! {
        #[test]
        fn sniff_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = sniff_content_type(&data);
        }

        #[test]
        fn printable_text_is_text_or_html(text in "[a-zA-Z0-9 .,;:!?\n]{1,100}") {
            let ct = sniff_content_type(text.as_bytes());
            prop_assert!(ct.starts_with("text/"), "{}", ct);
        }

        #[test]
        fn reflect_roundtrips_body(body in "[ -~]{1,300}") {
            let spec = serde_json::json!({ "body": body }).to_string();
            let r = respond(b"POST", b"/reflect", spec.as_bytes());
            prop_assert_eq!(r.status, 200);
            prop_assert_eq!(r.body, body.as_bytes().to_vec());
        }
    }
}
