//! The line-oriented multipart state machine (`Multipart::process`, `process_boundary`,
//! `process_part_header`, `process_part_data` and `multipart_complete` in libmodsecurity 3).

use super::{FilePart, Multipart, MultipartOptions, disposition};
use crate::body::Arg;
use crate::body::cookies::is_c_space;

/// libmodsecurity's line buffer size: longer lines are handled in chunks of this size.
const BUF_SIZE: usize = 4096;

/// A part being built.
#[derive(Debug, Default)]
struct Part {
    name: Vec<u8>,
    filename: Vec<u8>,
    is_file: bool,
    /// Value (form fields) or `FILES_TMP_CONTENT` (files).
    value: Vec<u8>,
    /// File size including the line endings libmodsecurity writes to the temporary file.
    size: usize,
    /// A file part has been counted against the file limit.
    counted: bool,
    /// Headers (name, value); names compare case-insensitively.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    last_header_name: Vec<u8>,
    last_header_line: Vec<u8>,
    header_lines: Vec<Vec<u8>>,
}

impl Part {
    fn header_index(&self, name: &[u8]) -> Option<usize> {
        self.headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn flush_header_line(&mut self) {
        if !self.last_header_line.is_empty() {
            self.header_lines
                .push(std::mem::take(&mut self.last_header_line));
        }
    }
}

/// Parsing state over one body.
pub(super) struct Parser<'a> {
    boundary: Vec<u8>,
    options: &'a MultipartOptions,
    out: &'a mut Multipart,
    error: Option<String>,
    buf: Vec<u8>,
    buf_contains_line: bool,
    /// Line ending seen just before the current position: 0 none, 1 CR, 2 lone LF, 3 CRLF.
    crlf_state: u8,
    crlf_state_buf_end: u8,
    part: Option<Part>,
    /// Reading the current part's data (its headers are done).
    in_data: bool,
    /// At least one data line of the current part was read.
    data_read: bool,
    /// Line ending held back from the previous data line.
    reserve: Vec<u8>,
    boundary_count: usize,
    complete: bool,
    seen_data: bool,
    files_counted: usize,
    parts: Vec<Part>,
}

/// Marker for libmodsecurity's fatal `process()` errors.
pub(super) struct Fatal;

impl<'a> Parser<'a> {
    pub(super) fn new(
        boundary: Vec<u8>,
        options: &'a MultipartOptions,
        out: &'a mut Multipart,
    ) -> Self {
        Self {
            boundary,
            options,
            out,
            error: None,
            buf: Vec::with_capacity(BUF_SIZE),
            buf_contains_line: true,
            crlf_state: 0,
            crlf_state_buf_end: 0,
            part: None,
            in_data: false,
            data_read: false,
            reserve: Vec::new(),
            boundary_count: 0,
            complete: false,
            seen_data: false,
            files_counted: 0,
            parts: Vec::new(),
        }
    }

    fn fail(&mut self, msg: impl Into<String>) {
        self.error = Some(msg.into());
    }

    /// Processes the whole body, byte by byte, a line (or full buffer) at a time.
    pub(super) fn feed(&mut self, body: &[u8]) -> Result<(), Fatal> {
        if body.is_empty() {
            return Ok(());
        }
        self.seen_data = true;
        let mut i = 0;
        while i < body.len() {
            let c = body[i];
            // A CR is never the last byte of a buffer: flush first, then read it again.
            let flush_before_cr = c == b'\r' && self.buf.len() == BUF_SIZE - 1;
            if !flush_before_cr {
                self.buf.push(c);
                i += 1;
            }
            if c == b'\n' || self.buf.len() == BUF_SIZE || flush_before_cr {
                self.process_buffer(flush_before_cr)?;
                self.buf.clear();
                self.buf_contains_line = c == b'\n';
                if c == b'\n' {
                    self.crlf_state = if self.crlf_state == 1 { 3 } else { 2 };
                }
                self.crlf_state_buf_end = self.crlf_state;
            }
            if c == b'\r' {
                self.crlf_state = 1;
            } else if c != b'\n' {
                self.crlf_state = 0;
            }
            if self.complete && i < body.len() {
                self.out.flags.data_after = true;
                return Ok(());
            }
        }
        Ok(())
    }

    /// The buffer up to its first NUL, as the C string functions see it.
    fn c_str(&self) -> &[u8] {
        match memchr::memchr(0, &self.buf) {
            Some(n) => &self.buf[..n],
            None => &self.buf,
        }
    }

    fn process_buffer(&mut self, flushed_before_cr: bool) -> Result<(), Fatal> {
        let mut as_boundary = false;
        let blen = self.boundary.len();
        let line = self.c_str();
        if self.buf_contains_line && line.len() > 3 && line.starts_with(b"--") {
            if line.len() >= blen + 2 && line[2..2 + blen] == self.boundary[..] {
                as_boundary = self.boundary_line()?;
            } else {
                self.boundary_like_line()?;
            }
        } else if self.buf_contains_line {
            let b = &self.boundary;
            let found = self
                .buf
                .windows(2)
                .enumerate()
                .any(|(i, w)| w == b"--" && self.buf[i + 2..].starts_with(b));
            if found {
                self.out.flags.unmatched_boundary_value = 1;
            }
        }
        if as_boundary {
            return Ok(());
        }
        if self.part.is_none() {
            self.out.flags.data_before = true;
        } else if !self.in_data {
            if self.buf.len() == BUF_SIZE || flushed_before_cr {
                self.out.flags.error = true;
                self.fail(format!(
                    "Multipart: Part header line over {BUF_SIZE} bytes long"
                ));
                return Err(Fatal);
            }
            self.part_header();
        } else {
            self.part_data();
        }
        Ok(())
    }

    /// A line starting with `--boundary`; returns whether it was taken as a boundary.
    fn boundary_line(&mut self) -> Result<bool, Fatal> {
        if self.crlf_state_buf_end == 2 {
            self.out.flags.lf_line = true;
        }
        if !self.data_read && self.boundary_count > 0 {
            // Where part data should begin: libmodsecurity treats it as data.
            self.out.flags.invalid_part = true;
            return Ok(false);
        }
        if self.boundary_count > 0 {
            self.out.flags.unmatched_boundary_value = 2;
        }
        let line = self.c_str();
        let mut rest = &line[2 + self.boundary.len()..];
        let is_final = rest.starts_with(b"--");
        if is_final {
            rest = &rest[2..];
            if self.complete {
                self.out.flags.error = true;
                self.fail("Multipart: Invalid boundary (final duplicate).");
                return Err(Fatal);
            }
        }
        match rest {
            b"\n" => self.out.flags.lf_line = true,
            b"\r\n" => self.out.flags.crlf_line = true,
            _ => {
                let msg = format!(
                    "Multipart: Invalid boundary: {}",
                    String::from_utf8_lossy(line)
                );
                self.out.flags.error = true;
                self.fail(msg);
                return Err(Fatal);
            }
        }
        self.process_boundary(is_final);
        if is_final {
            self.complete = true;
        }
        self.boundary_count += 1;
        Ok(true)
    }

    /// A `--` line that is not our boundary: quoting or whitespace attempts are fatal.
    fn boundary_like_line(&mut self) -> Result<(), Fatal> {
        let line = self.c_str();
        let b = &self.boundary;
        if self.out.flags.boundary_quoted
            && line.len() > b.len() + 2
            && line[2] == b'"'
            && line[3..].starts_with(b)
        {
            self.out.flags.error = true;
            self.fail("Multipart: Invalid boundary (quotes).");
            return Err(Fatal);
        }
        let ws = line[2..].iter().take_while(|c| is_c_space(**c)).count();
        if ws > 0 && line[2 + ws..].starts_with(b) {
            self.out.flags.error = true;
            self.fail("Multipart: Invalid boundary (whitespace).");
            return Err(Fatal);
        }
        self.out.flags.unmatched_boundary_value = 1;
        Ok(())
    }

    /// Closes the current part (keeping it when it has a name) and, unless final, opens one.
    fn process_boundary(&mut self, last: bool) {
        if let Some(part) = self.part.take() {
            for line in &part.header_lines {
                self.out
                    .part_headers
                    .push((part.name.clone(), line.clone()));
            }
            if part.name.is_empty() {
                self.out.flags.invalid_part = true;
            } else {
                self.parts.push(part);
            }
        }
        if !last {
            self.part = Some(Part::default());
            self.in_data = false;
            self.data_read = false;
            self.reserve.clear();
        }
    }

    fn part_header(&mut self) {
        if memchr::memchr(0, &self.buf).is_some() {
            self.fail("Multipart: Nul byte in part headers.");
            return;
        }
        let len = self.buf.len();
        self.out.no_files_length += len;
        let mut content_len = len.saturating_sub(1);
        if len > 1 && self.buf[len - 2] == b'\r' {
            self.out.flags.crlf_line = true;
            content_len -= 1;
        } else {
            self.out.flags.lf_line = true;
        }
        if self.buf == b"\r\n" || self.buf == b"\n" {
            self.end_of_headers();
        } else if is_c_space(self.buf[0]) {
            self.folded_header_line();
        } else {
            self.new_header_line(content_len);
        }
    }

    fn end_of_headers(&mut self) {
        let Some(part) = self.part.as_mut() else {
            return;
        };
        part.flush_header_line();
        let Some(idx) = part.header_index(b"Content-Disposition") else {
            self.fail("Multipart: Part missing Content-Disposition header.");
            return;
        };
        let value = part.headers[idx].1.clone();
        let (d, rc) = disposition::parse(
            &value,
            std::mem::take(&mut part.name),
            std::mem::take(&mut part.filename),
        );
        part.name = d.name;
        part.filename = d.filename;
        self.out.flags.invalid_quoting |= d.invalid_quoting;
        self.out.names.extend(d.names);
        self.out.filenames.extend(d.filenames);
        if let Err(code) = rc {
            let v = String::from_utf8_lossy(&value).into_owned();
            self.fail(format!(
                "Multipart: Invalid Content-Disposition header ({code}): {v}"
            ));
            return;
        }
        if part.name.is_empty() {
            self.fail("Multipart: Content-Disposition header missing name field.");
            return;
        }
        if !part.filename.is_empty() {
            // Guards against parsers that found a filename where a cruder one would not.
            if memchr::memmem::find(&value, b"filename=").is_none() {
                self.fail("Multipart: Invalid Content-Disposition header (filename).");
                return;
            }
            part.is_file = true;
        } else {
            part.is_file = false;
        }
        part.last_header_name.clear();
        self.in_data = true;
        self.data_read = false;
    }

    fn folded_header_line(&mut self) {
        self.out.flags.header_folding = true;
        // RFC 2557 folding is SP / HTAB only; PHP and others accept any whitespace.
        if self.buf[0] != b' ' && self.buf[0] != b'\t' {
            self.out.flags.invalid_header_folding = true;
        }
        let Some(part) = self.part.as_mut() else {
            return;
        };
        let Some(idx) = part
            .header_index(&part.last_header_name)
            .filter(|_| !part.last_header_name.is_empty())
        else {
            self.fail("Multipart: Invalid part header (folding error).");
            return;
        };
        let ws = self.buf.iter().take_while(|c| is_c_space(**c)).count();
        if self.buf[..ws].iter().any(|c| *c != b' ' && *c != b'\t') {
            self.out.flags.invalid_header_folding = true;
        }
        let mut joined = part.headers[idx].1.clone();
        joined.push(b' ');
        joined.extend_from_slice(chomp(&self.buf[ws..]));
        part.headers[idx].1.clone_from(&joined);
        if joined.len() > BUF_SIZE {
            self.fail("Multipart: Part header too long.");
            return;
        }
        let mut line = part.last_header_name.clone();
        line.extend_from_slice(b": ");
        line.extend_from_slice(&joined);
        part.last_header_line = line;
    }

    fn new_header_line(&mut self, content_len: usize) {
        let Some(part) = self.part.as_mut() else {
            return;
        };
        part.flush_header_line();
        let Some(colon) = memchr::memchr(b':', &self.buf) else {
            let msg = format!(
                "Multipart: Invalid part header (colon missing): {}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fail(msg);
            return;
        };
        let name = &self.buf[..colon];
        if name.is_empty() {
            self.fail("Multipart: Invalid part header (header name missing).");
            return;
        }
        if name.iter().any(|c| !(33..=126).contains(c)) {
            self.fail("Multipart: Invalid part header (contains invalid character).");
            return;
        }
        let mut v = colon + 1;
        while matches!(self.buf.get(v), Some(b' ' | b'\t')) {
            v += 1;
        }
        let value = chomp(&self.buf[v..]).to_vec();
        if part.header_index(name).is_some() {
            // libmodsecurity ignores a repeated header without reporting an error.
            return;
        }
        part.last_header_name = name.to_vec();
        part.headers.push((name.to_vec(), value));
        part.last_header_line = self.buf[..content_len].to_vec();
    }

    fn part_data(&mut self) {
        self.data_read = true;
        let len = self.buf.len();
        let held = if len >= 2 && self.buf.ends_with(b"\r\n") {
            2
        } else if self.buf.ends_with(b"\n") {
            1
        } else {
            0
        };
        let data_len = len - held;
        let previous_reserve = self.reserve.len();
        let Some(part) = self.part.as_mut() else {
            return;
        };
        if part.is_file {
            let limit = self.options.file_limit;
            if limit > 0 && self.files_counted >= limit {
                if !self.out.flags.file_limit_exceeded {
                    self.out.flags.file_limit_exceeded = true;
                    self.error = Some(format!(
                        "Multipart: Upload file limit exceeded {limit}. Use SecUploadFileLimit to change the limit."
                    ));
                }
            } else {
                if !part.counted {
                    part.counted = true;
                    self.files_counted += 1;
                }
                // libmodsecurity writes the held-back line ending to the file but not to the
                // in-memory copy.
                part.value.extend_from_slice(&self.buf[..data_len]);
            }
            part.size += data_len + previous_reserve;
        } else {
            self.out.no_files_length += data_len + previous_reserve;
            // libmodsecurity overwrites the held-back line ending instead of prepending it.
            part.value.extend_from_slice(&self.buf[..data_len]);
        }
        self.reserve = self.buf[data_len..].to_vec();
    }

    /// End of body (`multipart_complete`): a final boundary without a line ending is accepted,
    /// then complete parts become arguments and files. Returns the error message.
    pub(super) fn finish(mut self) -> Option<String> {
        if self.seen_data && !self.complete {
            if self.boundary_count == 0 {
                return Some("Multipart: No boundaries found in payload.".to_owned());
            }
            let mut closing = b"--".to_vec();
            closing.extend_from_slice(&self.boundary);
            closing.extend_from_slice(b"--");
            if self.buf_contains_line && self.buf == closing {
                if self.crlf_state_buf_end == 2 {
                    self.out.flags.lf_line = true;
                }
                if !self.data_read {
                    self.out.flags.invalid_part = true;
                }
                self.process_boundary(true);
                self.complete = true;
            }
            if !self.complete {
                return Some("Multipart: Final boundary missing.".to_owned());
            }
        }
        for part in std::mem::take(&mut self.parts) {
            if part.is_file {
                let file = FilePart {
                    name: part.name,
                    filename: part.filename,
                    size: part.size,
                    content: part.value,
                };
                self.out.files.push(file);
            } else {
                self.out.args.push(Arg {
                    name: part.name,
                    value: part.value,
                });
            }
        }
        self.error
    }
}

/// Removes trailing CR and LF bytes like `utils::string::chomp`, which leaves a string made
/// only of CR/LF untouched.
fn chomp(s: &[u8]) -> &[u8] {
    match s.iter().rposition(|c| *c != b'\r' && *c != b'\n') {
        Some(i) => &s[..=i],
        None => s,
    }
}
