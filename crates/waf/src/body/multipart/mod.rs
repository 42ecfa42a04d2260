//! `multipart/form-data` request bodies, following libmodsecurity 3's
//! `request_body_processor/multipart.cc` line by line where rules can tell the difference.
//!
//! Notable libmodsecurity behaviours kept on purpose:
//! - the body is read in lines (or 4096-byte chunks); a part's value is the concatenation of
//!   its lines **without their line endings** (libmodsecurity drops the held-back CRLF/LF of
//!   every line but the byte count in `FILES_SIZES` includes the inner ones);
//! - header errors are not fatal: the message is recorded and parsing goes on, so later parts
//!   still produce arguments (the last message wins);
//! - fatal boundary errors stop parsing, and the final check then reports
//!   `Final boundary missing.` (or `No boundaries found in payload.`) instead, with no
//!   arguments or files produced at all;
//! - a boundary line seen where part data should start (no data line read yet) is treated as
//!   data and sets `MULTIPART_INVALID_PART`.

mod boundary;
mod disposition;
mod parser;

use super::Arg;

/// Limits that change the parse (libmodsecurity configuration directives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartOptions {
    /// `SecUploadFileLimit`; 0 (libmodsecurity's default) means no limit.
    pub file_limit: usize,
}

/// One uploaded file (a part with a non-empty `filename=` parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// Part name (`FILES_NAMES`, the key of `FILES`).
    pub name: Vec<u8>,
    /// Client-supplied file name (`FILES`).
    pub filename: Vec<u8>,
    /// File size in bytes (`FILES_SIZES`, summed in `FILES_COMBINED_SIZE`).
    pub size: usize,
    /// `FILES_TMP_CONTENT`: the file's lines joined without their line endings, as
    /// libmodsecurity builds it.
    pub content: Vec<u8>,
}

/// The `MULTIPART_*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartFlags {
    /// `MULTIPART_BOUNDARY_QUOTED`.
    pub boundary_quoted: bool,
    /// `MULTIPART_BOUNDARY_WHITESPACE`.
    pub boundary_whitespace: bool,
    /// `MULTIPART_DATA_BEFORE`.
    pub data_before: bool,
    /// `MULTIPART_DATA_AFTER`.
    pub data_after: bool,
    /// `MULTIPART_HEADER_FOLDING`.
    pub header_folding: bool,
    /// `MULTIPART_LF_LINE`.
    pub lf_line: bool,
    /// A CRLF line was seen (with `lf_line`: `MULTIPART_CRLF_LF_LINES`).
    pub crlf_line: bool,
    /// `MULTIPART_MISSING_SEMICOLON` (spelled `MULTIPART_SEMICOLON_MISSING` in v2).
    pub missing_semicolon: bool,
    /// `MULTIPART_INVALID_QUOTING`.
    pub invalid_quoting: bool,
    /// `MULTIPART_INVALID_PART`.
    pub invalid_part: bool,
    /// `MULTIPART_INVALID_HEADER_FOLDING`.
    pub invalid_header_folding: bool,
    /// `MULTIPART_FILE_LIMIT_EXCEEDED`.
    pub file_limit_exceeded: bool,
    /// `MULTIPART_UNMATCHED_BOUNDARY` is 1 (what rule 200004 tests with `@eq 1`).
    pub unmatched_boundary: bool,
    /// The exact `MULTIPART_UNMATCHED_BOUNDARY` value: 0, 1 (unmatched boundary-like line seen
    /// last) or 2 (a real boundary after the first one was seen last).
    pub unmatched_boundary_value: u8,
    /// libmodsecurity's internal error flag (bad `Content-Type`, fatal boundary errors); part of
    /// `MULTIPART_STRICT_ERROR` only.
    pub error: bool,
}

impl MultipartFlags {
    /// MULTIPART_STRICT_ERROR: any of the strict flags set (as ModSecurity computes it).
    pub fn strict_error(&self) -> bool {
        self.error
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
    }

    /// `MULTIPART_CRLF_LF_LINES`: both line ending styles were used.
    pub fn crlf_lf_lines(&self) -> bool {
        self.crlf_line && self.lf_line
    }
}

/// Everything a `multipart/form-data` body yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Multipart {
    /// Non-file parts, name → value, in body order (`ARGS_POST`).
    pub args: Vec<Arg>,
    /// File parts in body order.
    pub files: Vec<FilePart>,
    /// `MULTIPART_PART_HEADERS`: (part name, whole header line `Name: value` without its line
    /// ending; folded headers joined with a space).
    pub part_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `MULTIPART_NAME`: every `name=` value seen in a `Content-Disposition`.
    pub names: Vec<Vec<u8>>,
    /// `MULTIPART_FILENAME`: every `filename=` value seen.
    pub filenames: Vec<Vec<u8>>,
    /// The `MULTIPART_*` flags.
    pub flags: MultipartFlags,
    /// `REQBODY_ERROR_MSG` / `REQBODY_PROCESSOR_ERROR_MSG` (`Multipart parsing error: …`);
    /// `Some` means `REQBODY_ERROR=1`. Arguments may still be present (header errors are not
    /// fatal in libmodsecurity).
    pub error: Option<String>,
    /// Bytes of headers and non-file data, for `SecRequestBodyNoFilesLimit`.
    pub no_files_length: usize,
}

/// multipart/form-data body: `content_type` is the full header value (the boundary parameter,
/// possibly quoted).
pub fn parse_multipart(content_type: &[u8], body: &[u8]) -> Multipart {
    parse_multipart_with(content_type, body, &MultipartOptions::default())
}

/// Like [`parse_multipart`], with configuration limits.
pub fn parse_multipart_with(
    content_type: &[u8],
    body: &[u8],
    options: &MultipartOptions,
) -> Multipart {
    let mut out = Multipart::default();
    let error = match boundary::extract_boundary(content_type, &mut out.flags) {
        Ok(b) => {
            let mut p = parser::Parser::new(b, options, &mut out);
            // A fatal error only stops reading: the final check still runs and reports.
            let _ = p.feed(body);
            p.finish()
        }
        Err(e) => e.map(str::to_owned),
    };
    out.error = error.map(|e| format!("Multipart parsing error: {e}"));
    out.flags.unmatched_boundary = out.flags.unmatched_boundary_value == 1;
    out
}

#[cfg(test)]
mod tests;
