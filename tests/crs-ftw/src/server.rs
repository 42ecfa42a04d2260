//! What the web server in front of the WAF does before ModSecurity sees a request.
//!
//! The CRS CI's `status` expectations are Apache httpd 2.4's answers (`HttpProtocolOptions
//! Strict`, the default) to malformed requests, which never reach ModSecurity. This module
//! re-implements, from Apache's documented behaviour in `server/protocol.c` and
//! `server/vhost.c`, the checks of `ap_read_request`: the request line, the header block,
//! Content-Length/Transfer-Encoding, the Host header, and the merging of repeated headers
//! (`apr_table_compress`) that ModSecurity v2 then sees.

/// The front server's decision about raw request bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Front {
    /// The request reaches the WAF and the backend.
    Forward,
    /// The server answers itself; the WAF never runs.
    Reject {
        /// The status the server answers with.
        status: u16,
        /// Why (as Apache's debug log would say).
        reason: String,
    },
    /// A valid HTTP/0.9 request: the answer has no status line, so go-ftw sees an error.
    Http09,
}

const LIMIT_REQUEST_LINE: usize = 8190;
const LIMIT_REQUEST_FIELDSIZE: usize = 8190;
const LIMIT_REQUEST_FIELDS: usize = 100;

fn reject(status: u16, reason: impl Into<String>) -> Front {
    Front::Reject {
        status,
        reason: reason.into(),
    }
}

/// `apr_isspace`: SP, HT, LF, VT, FF, CR.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// VCHAR or obs-text: what `ap_scan_vchar_obstext` accepts.
fn is_vchar_obstext(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// A line and the input after it.
type LineSplit<'a> = (&'a [u8], &'a [u8]);

/// A header field: name and value.
pub type Header = (Vec<u8>, Vec<u8>);

/// Splits off one CRLF-terminated line; strict mode refuses a bare LF.
fn take_line(input: &[u8]) -> Option<Result<LineSplit<'_>, &'static str>> {
    let lf = input.iter().position(|&b| b == b'\n')?;
    if lf == 0 || input[lf - 1] != b'\r' {
        return Some(Err("line not terminated by CRLF"));
    }
    Some(Ok((&input[..lf - 1], &input[lf + 1..])))
}

/// Applies Apache's `ap_read_request` checks to raw request bytes.
pub fn apache_front(raw: &[u8]) -> Front {
    let mut rest = raw;
    // read_request_line skips empty lines before the request line.
    let line = loop {
        match take_line(rest) {
            None => return reject(400, "request line not terminated"),
            Some(Err(why)) => return reject(400, why),
            Some(Ok((line, after))) => {
                rest = after;
                if !line.is_empty() {
                    break line;
                }
            }
        }
    };
    if line.len() > LIMIT_REQUEST_LINE {
        return reject(414, "request line exceeds LimitRequestLine");
    }
    let parsed = match parse_request_line(line) {
        Ok(parsed) => parsed,
        Err(why) => return reject(400, why),
    };
    if parsed.http09 {
        return Front::Http09;
    }
    let headers = match read_headers(rest) {
        Ok(headers) => headers,
        Err(why) => return reject(400, why),
    };
    let merged = merge_repeated(&headers);
    if let Err(why) = check_framing(&merged) {
        return reject(400, why);
    }
    if let Err((status, why)) = check_host_and_expect(&merged, &parsed) {
        return reject(status, why);
    }
    Front::Forward
}

/// What the request-line check learns that later checks need.
struct RequestLine {
    http09: bool,
    version: (u8, u8),
    uri_host: Option<String>,
}

/// `ap_parse_request_line` in strict mode.
fn parse_request_line(line: &[u8]) -> Result<RequestLine, &'static str> {
    if line.first().is_some_and(|&b| is_space(b)) {
        return Err("invalid whitespace before the method");
    }
    let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    let method = &line[..method_len];
    let after = &line[method_len..];
    if method.is_empty() || after.first().is_some_and(|&b| !is_space(b)) {
        return Err("invalid method token");
    }
    let (uri, after_uri) = next_field(after, "missing URI")?;
    if uri.is_empty() {
        return Err("missing URI");
    }
    // A single SP after the URI and nothing else is still the HTTP/0.9 form.
    if after_uri.is_empty() || after_uri == b" " {
        // No protocol: a simple HTTP/0.9 request, allowed only for GET.
        if method != b"GET" {
            return Err("only GET is allowed for HTTP/0.9 requests");
        }
        check_uri(method, uri)?;
        return Ok(RequestLine {
            http09: true,
            version: (0, 9),
            uri_host: None,
        });
    }
    let (protocol, trailing) = next_field(after_uri, "missing protocol")?;
    if !trailing.is_empty() {
        return Err("excess whitespace or trailing text after the protocol");
    }
    let version = match protocol {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            major @ b'1'..=b'9',
            b'.',
            minor @ b'0'..=b'9',
        ] => (major - b'0', minor - b'0'),
        _ => return Err("unrecognized protocol"),
    };
    let uri_host = check_uri(method, uri)?;
    Ok(RequestLine {
        http09: false,
        version,
        uri_host,
    })
}

/// After a token: exactly one SP, then a VCHAR/obs-text run up to whitespace or the end.
fn next_field<'a>(
    after: &'a [u8],
    missing: &'static str,
) -> Result<(&'a [u8], &'a [u8]), &'static str> {
    match after {
        [] => Err(missing),
        [b' ', next, ..] if is_space(*next) => Err("excess whitespace in the request line"),
        [b' ', rest @ ..] => {
            let len = rest.iter().take_while(|&&b| is_vchar_obstext(b)).count();
            let (field, tail) = rest.split_at(len);
            if tail.first().is_some_and(|&b| !is_space(b)) {
                return Err("control character in the request line");
            }
            Ok((field, tail))
        }
        _ => Err("invalid whitespace in the request line"),
    }
}

/// `ap_parse_uri` plus the strict checks on the parsed URI; returns an absolute URI's host.
fn check_uri(method: &[u8], uri: &[u8]) -> Result<Option<String>, &'static str> {
    if method == b"CONNECT" {
        // apr_uri_parse_hostinfo: host:port with a numeric port.
        return match uri.iter().rposition(|&b| b == b':') {
            Some(colon) if colon > 0 && valid_port(&uri[colon + 1..]) => Ok(None),
            _ => Err("CONNECT target is not host:port"),
        };
    }
    if uri.contains(&b'#') {
        return Err("URI must not contain a fragment");
    }
    // ap_parse_uri collapses leading slashes, so `//x` is a path too.
    if uri.starts_with(b"/") {
        return Ok(None);
    }
    if uri == b"*" {
        return if method == b"OPTIONS" {
            Ok(None)
        } else {
            Err("invalid request target")
        };
    }
    let scheme_len = match uri.first() {
        Some(b) if b.is_ascii_alphabetic() => uri
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            .count(),
        _ => 0,
    };
    let Some(after_scheme) = uri[scheme_len..]
        .strip_prefix(b":")
        .filter(|_| scheme_len > 0)
    else {
        return Err("invalid request target: not absolute-path or absolute-URI");
    };
    let Some(authority_and_path) = after_scheme.strip_prefix(b"//") else {
        return Err("invalid request target: absolute-URI without authority");
    };
    let authority_len = authority_and_path
        .iter()
        .take_while(|&&b| b != b'/' && b != b'?')
        .count();
    let authority = &authority_and_path[..authority_len];
    if authority.contains(&b'@') {
        return Err("URI must not contain a username/password");
    }
    Ok(Some(String::from_utf8_lossy(authority).into_owned()))
}

fn valid_port(text: &[u8]) -> bool {
    !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .is_some_and(|p| (1..=65535).contains(&p))
}

/// `ap_get_mime_headers_core` in strict mode: the header lines as (name, value).
fn read_headers(mut rest: &[u8]) -> Result<Vec<Header>, &'static str> {
    let mut headers: Vec<Header> = Vec::new();
    loop {
        let (line, after) = match take_line(rest) {
            None => return Err("header section not terminated"),
            Some(result) => result?,
        };
        rest = after;
        if line.len() > LIMIT_REQUEST_FIELDSIZE {
            return Err("header line exceeds LimitRequestFieldSize");
        }
        let line = trim_end_ws(line);
        if line.is_empty() {
            return Ok(headers);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some((_, value)) = headers.last_mut() else {
                return Err("line folding before the first header line");
            };
            let more = trim_start_ws(line);
            if more.is_empty() {
                return Err("empty folded line");
            }
            check_field_content(more)?;
            value.push(b' ');
            value.extend_from_slice(more);
            continue;
        }
        let name_len = line.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 || line.get(name_len) != Some(&b':') {
            return Err("header field name is malformed");
        }
        let value = trim_start_ws(&line[name_len + 1..]);
        check_field_content(value)?;
        headers.push((line[..name_len].to_vec(), value.to_vec()));
        if headers.len() > LIMIT_REQUEST_FIELDS {
            return Err("too many header fields");
        }
    }
}

fn check_field_content(value: &[u8]) -> Result<(), &'static str> {
    if value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
    {
        Ok(())
    } else {
        Err("header value contains a control character")
    }
}

fn trim_end_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn trim_start_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// `apr_table_compress(…, APR_OVERLAP_TABLES_MERGE)`: repeated headers (names compared
/// case-insensitively) become one, at the first one's place, values joined with `", "`.
pub fn merge_repeated(headers: &[Header]) -> Vec<Header> {
    let mut merged: Vec<Header> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, existing)) => {
                existing.extend_from_slice(b", ");
                existing.extend_from_slice(value);
            }
            None => merged.push((name.clone(), value.clone())),
        }
    }
    merged
}

fn header<'a>(headers: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

/// Content-Length must be plain digits; Transfer-Encoding must end in `chunked`.
fn check_framing(headers: &[Header]) -> Result<(), &'static str> {
    if let Some(length) = header(headers, "Content-Length") {
        let ok = !length.is_empty()
            && length.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(length)
                .ok()
                .and_then(|l| l.parse::<i64>().ok())
                .is_some();
        if !ok {
            return Err("invalid Content-Length");
        }
    }
    if let Some(coding) = header(headers, "Transfer-Encoding") {
        let last = coding
            .split(|&b| b == b',')
            .map(trim_start_ws)
            .map(trim_end_ws)
            .next_back();
        if !last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return Err("unknown Transfer-Encoding");
        }
    }
    Ok(())
}

/// `ap_check_request_header`: Host syntax (strict), Host required for HTTP/1.1, Expect.
fn check_host_and_expect(
    headers: &[Header],
    line: &RequestLine,
) -> Result<(), (u16, &'static str)> {
    let host = line
        .uri_host
        .as_deref()
        .map(str::as_bytes)
        .or_else(|| header(headers, "Host"));
    match host {
        Some(host) if !host.is_empty() && !valid_host(host) => {
            return Err((400, "malformed Host header"));
        }
        Some(host) if !host.is_empty() => {}
        _ if line.version >= (1, 1) => return Err((400, "HTTP/1.1 request without a hostname")),
        _ => {}
    }
    let expect = header(headers, "Expect").filter(|e| !e.is_empty());
    if expect.is_some_and(|e| !e.eq_ignore_ascii_case(b"100-continue")) {
        return Err((417, "unrecognized Expect value"));
    }
    Ok(())
}

/// `fix_hostname` with `strict_hostname_check`.
fn valid_host(host: &[u8]) -> bool {
    if host.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if let Some(inner) = host.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let port_ok = match &inner[close + 1..] {
            [] => true,
            [b':', port @ ..] => valid_port(port),
            _ => false,
        };
        return port_ok
            && std::str::from_utf8(&inner[..close])
                .is_ok_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = match host.iter().rposition(|&b| b == b':') {
        Some(colon) if valid_port(&host[colon + 1..]) => &host[..colon],
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.windows(2).any(|w| w == b"..") {
        return false;
    }
    strict_hostname(name)
}

fn strict_hostname(name: &[u8]) -> bool {
    if !name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    let dotted_decimal = name.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    if dotted_decimal {
        let parts: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
        return parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && (p.len() == 1 || p[0] != b'0'));
    }
    // The top-level domain must start with a letter (RFC 1123 2.1).
    let tld = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
    !name.contains(&b'.') || tld.first().is_none_or(u8::is_ascii_alphabetic)
}

/// The request body Apache reads: nothing without Content-Length or Transfer-Encoding (the
/// bytes after the header block are then the next request on the connection).
pub fn apache_body<'a>(headers: &[Header], body: &'a [u8]) -> &'a [u8] {
    if header(headers, "Content-Length").is_some() || header(headers, "Transfer-Encoding").is_some()
    {
        body
    } else {
        &[]
    }
}

/// The header list as Apache hands it to ModSecurity: repeated headers merged, the
/// Content-Length of a chunked request removed, and an absolute URI's host in `Host`.
pub fn apache_view(headers: &[Header], uri: &[u8]) -> Vec<Header> {
    let mut merged = merge_repeated(headers);
    if header(&merged, "Transfer-Encoding").is_some() {
        merged.retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-length"));
    }
    let uri_host = check_uri(b"GET", uri).ok().flatten();
    let host_header = merged
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"host"));
    if let (Some(host), Some((_, value))) = (uri_host, host_header) {
        *value = host.into_bytes();
    }
    merged
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
