//! A lenient, sans-IO parser of one raw HTTP/1.1 request as sent on the wire.
//!
//! Used by `bulkhead waf test --request FILE` and by the CRS conformance runner. It accepts
//! what web servers commonly accept (bare `\n` line ends, obsolete line folding, extra
//! whitespace in the request line) and rejects what Apache httpd answers with 400 to
//! (no request line, a header line without a colon, an invalid Content-Length, an
//! undecodable chunked body).

use memchr::memchr;

/// One parsed HTTP/1.x request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawRequest {
    /// The method token, e.g. `GET`.
    pub method: Vec<u8>,
    /// The request target exactly as on the request line.
    pub uri: Vec<u8>,
    /// The protocol version without `HTTP/`, e.g. `1.1`; `0.9` when the request line has none.
    pub version: Vec<u8>,
    /// Header fields in wire order, duplicates kept; values trimmed, folded lines joined.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The message body (chunked transfer coding removed).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first value of a header, the name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// Renders the request as wire bytes (CRLF line ends); a chunked request gets one chunk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.body.len());
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.uri);
        if self.version.as_slice() != b"0.9" {
            out.extend_from_slice(b" HTTP/");
            out.extend_from_slice(&self.version);
        }
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if is_chunked(self) {
            if !self.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Why a raw request could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Http1Error {
    /// Nothing but blank lines.
    #[error("empty request: expected a request line `METHOD URI HTTP/x.y`")]
    NoRequestLine,
    /// The request line has no request target.
    #[error("line {line} (byte {offset}): request line has no URI: expected `METHOD URI HTTP/x.y`")]
    MissingUri {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line in the input.
        offset: usize,
    },
    /// A header line has no `:` separator.
    #[error("line {line} (byte {offset}): header line without a colon: expected `Name: value`")]
    HeaderWithoutColon {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line in the input.
        offset: usize,
    },
    /// A header line starts with `:` or the name contains whitespace.
    #[error(
        "line {line} (byte {offset}): invalid header name: expected a token directly followed by `:`"
    )]
    InvalidHeaderName {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line in the input.
        offset: usize,
    },
    /// A continuation line (leading whitespace) before the first header.
    #[error("line {line} (byte {offset}): folded continuation line before the first header")]
    FoldBeforeFirstHeader {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line in the input.
        offset: usize,
    },
    /// A Content-Length value that is not a plain decimal number.
    #[error("invalid Content-Length {value:?}: expected decimal digits only")]
    InvalidContentLength {
        /// The offending value (lossy UTF-8).
        value: String,
    },
    /// Several Content-Length headers with different values.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength {
        /// The first value.
        first: u64,
        /// A different later value.
        second: u64,
    },
    /// A Transfer-Encoding whose final coding is not `chunked`.
    #[error("unsupported Transfer-Encoding {value:?}: expected `chunked` as the final coding")]
    UnsupportedTransferEncoding {
        /// The offending value (lossy UTF-8).
        value: String,
    },
    /// A malformed chunk in a chunked body.
    #[error("chunked body, byte {offset}: {expected}")]
    BadChunk {
        /// Byte offset in the input.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
}

/// A header field: name and value.
type Header = (Vec<u8>, Vec<u8>);

/// One line of the head: its content (without the line end) and where it starts.
struct Line<'a> {
    text: &'a [u8],
    offset: usize,
    number: usize,
}

/// Splits off lines one at a time; `\r\n` and bare `\n` both end a line.
struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.input.len() {
            return None;
        }
        let rest = &self.input[self.pos..];
        let (text, consumed) = match memchr(b'\n', rest) {
            Some(i) => (strip_cr(&rest[..i]), i + 1),
            None => (rest, rest.len()),
        };
        let line = Line {
            text,
            offset: self.pos,
            number: self.number + 1,
        };
        self.pos += consumed;
        self.number += 1;
        Some(line)
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Parses one raw request: request line, header fields, blank line, body.
pub fn parse_request(raw: &[u8]) -> Result<RawRequest, Http1Error> {
    let mut lines = Lines {
        input: raw,
        pos: 0,
        number: 0,
    };
    // RFC 9112 2.2: ignore empty lines before the request line, as Apache and nginx do.
    let request_line = loop {
        match lines.next_line() {
            None => return Err(Http1Error::NoRequestLine),
            Some(line) if trim_ws(line.text).is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut request = parse_request_line(&request_line)?;
    request.headers = parse_headers(&mut lines)?;
    let rest = &raw[lines.pos.min(raw.len())..];
    request.body = read_body(&request, rest, lines.pos)?;
    Ok(request)
}

/// Splits `METHOD URI [HTTP/x.y]`. Whitespace runs count as one separator; a request target
/// containing spaces keeps them (the version is the last token when it looks like one).
fn parse_request_line(line: &Line<'_>) -> Result<RawRequest, Http1Error> {
    let text = trim_ws(line.text);
    let method_end = text.iter().position(|&b| is_ws(b)).unwrap_or(text.len());
    let method = text[..method_end].to_vec();
    let after_method = trim_ws(&text[method_end..]);
    if after_method.is_empty() {
        return Err(Http1Error::MissingUri {
            line: line.number,
            offset: line.offset,
        });
    }
    let (uri, version) = match after_method.iter().rposition(|&b| is_ws(b)) {
        Some(split) => {
            let last = &after_method[split + 1..];
            let version = last.strip_prefix(b"HTTP/").unwrap_or(last);
            (trim_ws(&after_method[..split]), version.to_vec())
        }
        None => (after_method, b"0.9".to_vec()),
    };
    Ok(RawRequest {
        method,
        uri: uri.to_vec(),
        version,
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// Reads header lines up to the blank line (or the end of the input).
fn parse_headers(lines: &mut Lines<'_>) -> Result<Vec<Header>, Http1Error> {
    let mut headers: Vec<Header> = Vec::new();
    while let Some(line) = lines.next_line() {
        if line.text.is_empty() {
            break;
        }
        if is_ws(line.text[0]) {
            // Obsolete line folding (RFC 9112 5.2): join with one space, as Apache does.
            let Some((_, value)) = headers.last_mut() else {
                return Err(Http1Error::FoldBeforeFirstHeader {
                    line: line.number,
                    offset: line.offset,
                });
            };
            let more = trim_ws(line.text);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(b' ');
                }
                value.extend_from_slice(more);
            }
            continue;
        }
        let Some(colon) = memchr(b':', line.text) else {
            return Err(Http1Error::HeaderWithoutColon {
                line: line.number,
                offset: line.offset,
            });
        };
        let name = &line.text[..colon];
        if name.is_empty() || name.iter().any(|&b| b.is_ascii_whitespace()) {
            return Err(Http1Error::InvalidHeaderName {
                line: line.number,
                offset: line.offset,
            });
        }
        // Apache and nginx both drop leading and trailing SP/HT from field values.
        headers.push((name.to_vec(), trim_ws(&line.text[colon + 1..]).to_vec()));
    }
    Ok(headers)
}

fn is_chunked(request: &RawRequest) -> bool {
    last_transfer_coding(request).is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// The final coding of all Transfer-Encoding headers taken together.
fn last_transfer_coding(request: &RawRequest) -> Option<&[u8]> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(trim_ws)
        .rfind(|c| !c.is_empty())
}

/// The declared Content-Length, if any; every occurrence must be digits and agree.
fn content_length(request: &RawRequest) -> Result<Option<u64>, Http1Error> {
    let mut found: Option<u64> = None;
    for (_, value) in request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
    {
        let invalid = || Http1Error::InvalidContentLength {
            value: String::from_utf8_lossy(value).into_owned(),
        };
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let parsed = value
            .iter()
            .try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or_else(invalid)?;
        match found {
            Some(first) if first != parsed => {
                return Err(Http1Error::ConflictingContentLength {
                    first,
                    second: parsed,
                });
            }
            _ => found = Some(parsed),
        }
    }
    Ok(found)
}

/// The body: chunked-decoded, else limited by Content-Length, else everything left.
fn read_body(request: &RawRequest, rest: &[u8], base: usize) -> Result<Vec<u8>, Http1Error> {
    if let Some(coding) = last_transfer_coding(request) {
        if !coding.eq_ignore_ascii_case(b"chunked") {
            return Err(Http1Error::UnsupportedTransferEncoding {
                value: String::from_utf8_lossy(coding).into_owned(),
            });
        }
        // RFC 9112 6.3: Transfer-Encoding overrides Content-Length (which is still validated).
        content_length(request)?;
        return decode_chunked(rest, base);
    }
    match content_length(request)? {
        // A body shorter than declared is taken as it is: the input is all there is.
        Some(len) => {
            Ok(rest[..usize::try_from(len).unwrap_or(usize::MAX).min(rest.len())].to_vec())
        }
        None => Ok(rest.to_vec()),
    }
}

/// Decodes a chunked body; chunk extensions and trailer fields are dropped.
fn decode_chunked(input: &[u8], base: usize) -> Result<Vec<u8>, Http1Error> {
    let mut lines = Lines {
        input,
        pos: 0,
        number: 0,
    };
    let mut body = Vec::new();
    loop {
        let offset = base + lines.pos;
        let Some(line) = lines.next_line() else {
            return Err(Http1Error::BadChunk {
                offset,
                expected: "a chunk size line",
            });
        };
        let size_text = trim_ws(line.text.split(|&b| b == b';').next().unwrap_or_default());
        let size = parse_hex(size_text).ok_or(Http1Error::BadChunk {
            offset,
            expected: "a hexadecimal chunk size",
        })?;
        if size == 0 {
            // Skip trailer fields up to the final blank line (or the end of the input).
            while let Some(trailer) = lines.next_line() {
                if trailer.text.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        let start = lines.pos;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= input.len())
            .ok_or(Http1Error::BadChunk {
                offset: base + start,
                expected: "as many data bytes as the chunk size",
            })?;
        body.extend_from_slice(&input[start..end]);
        let after = &input[end..];
        let line_end = if after.starts_with(b"\r\n") {
            2
        } else if after.starts_with(b"\n") {
            1
        } else {
            return Err(Http1Error::BadChunk {
                offset: base + end,
                expected: "CRLF after the chunk data",
            });
        };
        lines.pos = end + line_end;
    }
}

fn parse_hex(text: &[u8]) -> Option<usize> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0usize, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(digit as usize)
    })
}

#[cfg(test)]
mod tests;
