//! Splitting a file into documents, each with its index and the line where it starts.
//!
//! YAML streams are split by hand at `---` / `...` markers rather than left to the YAML
//! parser, because the parser does not say where each document starts; the YAML spec
//! forbids a document marker at the start of a line inside any scalar, so a column-0
//! marker always separates documents. JSON files hold one object or an array of objects;
//! each array element counts as one document.

use serde_json::value::RawValue;

/// Syntax of a text given to the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// YAML, possibly several `---`-separated documents.
    Yaml,
    /// JSON: one object (which may be a `List`) or an array of objects.
    Json,
    /// By the origin's extension (`.json`, `.yaml`, `.yml`); otherwise JSON when the first
    /// non-blank character is `{` or `[`, else YAML.
    #[default]
    Auto,
}

impl Format {
    /// The concrete syntax for a text called `origin`.
    pub(crate) fn resolve(self, origin: &str, text: &str) -> Syntax {
        match self {
            Format::Yaml => Syntax::Yaml,
            Format::Json => Syntax::Json,
            Format::Auto => {
                let ext = std::path::Path::new(origin)
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                match ext.as_deref() {
                    Some("json") => Syntax::Json,
                    Some("yaml" | "yml") => Syntax::Yaml,
                    _ if text.trim_start().starts_with(['{', '[']) => Syntax::Json,
                    _ => Syntax::Yaml,
                }
            }
        }
    }
}

/// A resolved [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Yaml,
    Json,
}

/// One document of a file.
#[derive(Debug, Clone)]
pub(crate) struct Document<'a> {
    /// The document's own text (a YAML document includes its `---` line).
    pub(crate) text: &'a str,
    pub(crate) syntax: Syntax,
    /// 1-based index in the file.
    pub(crate) index: usize,
    /// File line of the first line of `text`.
    pub(crate) first_line: usize,
    /// File line where the document's content starts (reported when nothing better is known).
    pub(crate) start_line: usize,
}

/// A file-level syntax error: where (when known) and the parser's message.
#[derive(Debug, Clone)]
pub(crate) struct SourceError {
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// The non-empty documents of `text`, in order.
pub(crate) fn documents(text: &str, syntax: Syntax) -> Result<Vec<Document<'_>>, SourceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match syntax {
        Syntax::Yaml => Ok(split_yaml(text)),
        Syntax::Json => split_json(text),
    }
}

/// How a YAML line takes part in document splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineClass {
    /// `---`; `true` when content follows on the same line.
    Start(bool),
    /// `...`, the end of a document.
    End,
    /// Blank, comment or directive: not content.
    Blank,
    /// Anything else.
    Content,
}

fn classify(line: &str) -> LineClass {
    let marker_rest = |marker: &str| {
        line.strip_prefix(marker)
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
            .map(str::trim)
    };
    if let Some(rest) = marker_rest("---") {
        return LineClass::Start(!rest.is_empty() && !rest.starts_with('#'));
    }
    if marker_rest("...").is_some() {
        return LineClass::End;
    }
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%') {
        LineClass::Blank
    } else {
        LineClass::Content
    }
}

/// Accumulates the current YAML chunk while scanning lines.
struct Splitter<'a> {
    text: &'a str,
    docs: Vec<Document<'a>>,
    /// Documents counted so far, including empty ones (as the YAML parser counts them).
    count: usize,
    chunk_offset: usize,
    chunk_line: usize,
    has_marker: bool,
    content_line: Option<usize>,
}

impl<'a> Splitter<'a> {
    /// Ends the chunk at byte `end`; the next one starts there, on file line `next_line`.
    fn close(&mut self, end: usize, next_line: usize) {
        // A chunk with neither a `---` nor content (leading comments, a trailing comment
        // after `...`) is not a document at all; one with only a marker is an empty
        // document: counted, but skipped.
        if self.has_marker || self.content_line.is_some() {
            self.count += 1;
            if let Some(start_line) = self.content_line {
                self.docs.push(Document {
                    text: &self.text[self.chunk_offset..end],
                    syntax: Syntax::Yaml,
                    index: self.count,
                    first_line: self.chunk_line,
                    start_line,
                });
            }
        }
        self.chunk_offset = end;
        self.chunk_line = next_line;
        self.has_marker = false;
        self.content_line = None;
    }
}

fn split_yaml(text: &str) -> Vec<Document<'_>> {
    let mut s = Splitter {
        text,
        docs: Vec::new(),
        count: 0,
        chunk_offset: 0,
        chunk_line: 1,
        has_marker: false,
        content_line: None,
    };
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        match classify(line.trim_end_matches(['\n', '\r'])) {
            LineClass::Start(inline) => {
                // Comments and directives before the first marker belong to its document.
                if s.has_marker || s.content_line.is_some() {
                    s.close(offset, line_no);
                }
                s.has_marker = true;
                if inline {
                    s.content_line = Some(line_no);
                }
            }
            LineClass::End => s.close(offset + line.len(), line_no + 1),
            LineClass::Blank => {}
            LineClass::Content => {
                s.content_line.get_or_insert(line_no);
            }
        }
        offset += line.len();
    }
    s.close(text.len(), 0);
    s.docs
}

fn split_json(text: &str) -> Result<Vec<Document<'_>>, SourceError> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    if !trimmed.starts_with('[') {
        let start_line = line_at(text.len() - trimmed.len());
        return Ok(vec![Document {
            text,
            syntax: Syntax::Json,
            index: 1,
            first_line: 1,
            start_line,
        }]);
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| SourceError {
        line: (e.line() > 0).then_some(e.line()),
        message: json_message(&e),
    })?;
    let base = text.as_ptr() as usize;
    let docs = items.into_iter().enumerate().map(|(i, raw)| {
        // `RawValue` borrows from `text`, so the pointer difference is the element's offset.
        let offset = (raw.get().as_ptr() as usize)
            .checked_sub(base)
            .filter(|o| *o <= text.len() && text.is_char_boundary(*o))
            .unwrap_or(0);
        let line = line_at(offset);
        Document {
            text: raw.get(),
            syntax: Syntax::Json,
            index: i + 1,
            first_line: line,
            start_line: line,
        }
    });
    Ok(docs.collect())
}

/// serde_json's message without its trailing ` at line L column C` (the line is reported
/// separately, relative to the file).
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}
