//! The exact bytes go-ftw 2.1.0 sends for a stage (`ftwhttp/request.go`, `test/data.go`).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::golang::{
    canonical_header_key, equal_fold, method_wants_content_length, query_escape,
    query_unescape_is_identity,
};
use crate::model::Input;
use crate::template::{self, UnsupportedTemplate};

/// Why a stage's request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `encoded_request` is not valid base64.
    #[error("encoded_request is not valid base64: {0}")]
    EncodedRequest(String),
    /// `data` and `encoded_request` are both set (go-ftw refuses the stage).
    #[error("'data' and 'encoded_request' must not be set simultaneously")]
    DataAndEncodedRequest,
    /// `data` uses a template feature we do not emulate.
    #[error(transparent)]
    Template(#[from] UnsupportedTemplate),
}

/// Go's `base64.StdEncoding`: padded, lenient about trailing bits, CR/LF ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let cleaned: Vec<u8> = text.bytes().filter(|&b| b != b'\r' && b != b'\n').collect();
    engine.decode(cleaned)
}

/// The body go-ftw sends before header completion: `data` through the template engine
/// (`None` when Go's template fails), else decoded `encoded_data` (`None` when invalid).
pub fn stage_body(input: &Input) -> Result<Option<Vec<u8>>, UnsupportedTemplate> {
    if let Some(data) = &input.data {
        return Ok(template::render(&data.0)?.map(String::into_bytes));
    }
    Ok(input
        .encoded_data
        .as_deref()
        .and_then(|e| decode_base64(e).ok()))
}

/// Builds the complete request bytes for a stage.
pub fn build_request(input: &Input) -> Result<Vec<u8>, BuildError> {
    if let Some(encoded) = input.encoded_request.as_deref().filter(|e| !e.is_empty()) {
        if input.data.as_ref().is_some_and(|d| !d.0.is_empty()) {
            return Err(BuildError::DataAndEncodedRequest);
        }
        return decode_base64(encoded).map_err(|e| BuildError::EncodedRequest(e.to_string()));
    }
    let mut headers = input.header_list();
    let mut body = stage_body(input)?.unwrap_or_default();
    let autocomplete = input.autocomplete();
    if autocomplete && !body.is_empty() {
        if !has_header(&headers, "Content-Type") {
            headers.push(("Content-Type".into(), FORM_TYPE.into()));
        }
        body = encode_form_body(&headers, body);
    }
    // Multipart bodies get CRLF line ends whatever the autocomplete setting.
    if headers.iter().any(|(n, v)| {
        is_named(n, "Content-Type") && v.to_lowercase().contains("multipart/form-data;")
    }) {
        body = lf_to_crlf(&body);
    }
    if autocomplete {
        if !has_header(&headers, "Connection") {
            headers.push(("Connection".into(), "close".into()));
        }
        if !has_header(&headers, "Content-Length")
            && (!body.is_empty() || method_wants_content_length(input.method()))
        {
            headers.push(("Content-Length".into(), body.len().to_string()));
        }
    }
    let mut out =
        format!("{} {} {}\r\n", input.method(), input.uri(), input.version()).into_bytes();
    for (name, value) in &headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Ok(out)
}

const FORM_TYPE: &str = "application/x-www-form-urlencoded";

fn is_named(name: &str, wanted: &str) -> bool {
    canonical_header_key(name) == canonical_header_key(wanted)
}

fn has_header(headers: &[(String, String)], wanted: &str) -> bool {
    headers.iter().any(|(n, _)| is_named(n, wanted))
}

/// go-ftw's `encodeDataParameters`: an unencoded form body has each key and value escaped.
fn encode_form_body(headers: &[(String, String)], body: Vec<u8>) -> Vec<u8> {
    let is_form = headers
        .iter()
        .any(|(n, v)| is_named(n, "Content-Type") && equal_fold(v, FORM_TYPE));
    if !is_form || !query_unescape_is_identity(&body) {
        return body;
    }
    let pieces: Vec<String> = body
        .split(|&b| b == b'&')
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => format!(
                "{}={}",
                query_escape(&piece[..eq]),
                query_escape(&piece[eq + 1..])
            ),
            None => query_escape(piece),
        })
        .collect();
    // go-ftw loops over `&`-separated tokens while input remains, so a trailing `&` adds nothing.
    let mut joined = pieces.join("&");
    if body.ends_with(b"&") && joined.ends_with('&') {
        joined.pop();
    }
    joined.into_bytes()
}

fn lf_to_crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 16);
    for &b in body {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
