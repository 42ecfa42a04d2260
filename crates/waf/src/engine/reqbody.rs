//! Request body processing at the start of phase 2: REQUEST_BODY, ARGS_POST, FILES,
//! MULTIPART_* and XML, and the REQBODY_ERROR family when a body cannot be parsed.

use super::rule::BodyProcessor;
use super::state::FileVar;
use super::tx::Transaction;
use super::vars::Scalar;
use crate::body;

/// Runs the chosen body processor on the buffered body.
pub(crate) fn process(tx: &mut Transaction) {
    if !tx.body_access {
        return;
    }
    let body = std::mem::take(&mut tx.request_body);
    let settings = tx.rules.settings();
    let (sep, limit, depth) = (
        settings.argument_separator,
        settings.arguments_limit,
        settings.json_depth_limit,
    );
    tx.data.set(Scalar::ReqbodyError, "0");
    tx.data.set(Scalar::ReqbodyProcessorError, "0");
    if tx.request_body_truncated {
        tx.data.set(Scalar::InboundDataError, "1");
    }
    match tx.body_processor {
        Some(BodyProcessor::UrlEncoded) if !body.is_empty() => {
            let parsed = body::parse_urlencoded_checked(&body, sep);
            if parsed.invalid_encoding {
                tx.data.set(Scalar::UrlencodedError, "1");
            }
            push_args(tx, parsed.args, limit);
        }
        Some(BodyProcessor::Json) if !body.is_empty() => {
            // JSON arguments join ARGS only, not ARGS_POST, as in libmodsecurity.
            let room = limit.saturating_sub(tx.data.args_get.len() + tx.data.args_post.len());
            let parsed = body::parse_json_limited(&body, depth, room);
            tx.data.args_other.extend(parsed.args);
            if let Some(e) = parsed.error {
                body_error(tx, &e);
            }
        }
        Some(BodyProcessor::Xml) => match body::parse_xml(&body) {
            Ok(doc) => tx.data.xml = Some(doc),
            Err(e) => body_error(tx, &e),
        },
        // Multipart runs on empty bodies too, so that its flags are set.
        Some(BodyProcessor::Multipart) => multipart(tx, &body),
        _ => {}
    }
    let force = tx.force_body_variable;
    let processor = tx.body_processor;
    let d = &mut tx.data;
    d.set(Scalar::RequestBodyLength, body.len().to_string());
    // REQUEST_BODY holds the raw body only for URL-encoded bodies or when a rule forces it
    // (CRS does for unknown content types), as in ModSecurity 2, which the CRS regression
    // tests are written for; libmodsecurity 3 always fills it, so XML bodies also hit the
    // REQUEST_BODY rules there (upstream's nginx overrides for 944100/944110/944120/944210).
    if processor == Some(BodyProcessor::UrlEncoded) || force {
        d.set(Scalar::RequestBody, body);
    }
    super::uri::update_combined_size(d);
}

/// Adds form arguments, dropping those past SecArgumentsLimit as libmodsecurity does.
fn push_args(tx: &mut Transaction, args: Vec<body::Arg>, limit: usize) {
    let room = limit.saturating_sub(tx.data.args_get.len() + tx.data.args_post.len());
    tx.data.args_post.extend(args.into_iter().take(room));
}

fn body_error(tx: &mut Transaction, msg: &str) {
    let d = &mut tx.data;
    d.set(Scalar::ReqbodyError, "1");
    d.set(Scalar::ReqbodyErrorMsg, msg.as_bytes().to_vec());
    d.set(Scalar::ReqbodyProcessorError, "1");
    d.set(Scalar::ReqbodyProcessorErrorMsg, msg.as_bytes().to_vec());
}

fn multipart(tx: &mut Transaction, raw: &[u8]) {
    let content_type = tx
        .data
        .request_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let m = body::parse_multipart(&content_type, raw);
    let f = &m.flags;
    let flag = |b: bool| if b { "1" } else { "0" };
    let d = &mut tx.data;
    for (s, v) in [
        (Scalar::MultipartBoundaryQuoted, f.boundary_quoted),
        (Scalar::MultipartBoundaryWhitespace, f.boundary_whitespace),
        (Scalar::MultipartDataBefore, f.data_before),
        (Scalar::MultipartDataAfter, f.data_after),
        (Scalar::MultipartHeaderFolding, f.header_folding),
        (Scalar::MultipartLfLine, f.lf_line),
        (Scalar::MultipartCrlfLfLines, f.crlf_lf_lines()),
        (Scalar::MultipartMissingSemicolon, f.missing_semicolon),
        (Scalar::MultipartInvalidQuoting, f.invalid_quoting),
        (Scalar::MultipartInvalidPart, f.invalid_part),
        (
            Scalar::MultipartInvalidHeaderFolding,
            f.invalid_header_folding,
        ),
        (Scalar::MultipartFileLimitExceeded, f.file_limit_exceeded),
        (Scalar::MultipartStrictError, f.strict_error()),
    ] {
        d.set(s, flag(v));
    }
    d.set(
        Scalar::MultipartUnmatchedBoundary,
        f.unmatched_boundary_value.to_string(),
    );
    d.files = m
        .files
        .iter()
        .map(|p| FileVar {
            name: p.name.clone(),
            filename: p.filename.clone(),
            size: p.size,
        })
        .collect();
    let combined: usize = m.files.iter().map(|p| p.size).sum();
    d.set(Scalar::FilesCombinedSize, combined.to_string());
    d.part_headers = m.part_headers.clone();
    let error = m.error.clone();
    // Multipart form fields are not subject to SecArgumentsLimit in libmodsecurity.
    tx.data.args_post.extend(m.args);
    if let Some(e) = error {
        body_error(tx, &e);
    }
}
