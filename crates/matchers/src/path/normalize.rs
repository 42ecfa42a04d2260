//! Canonical form of a request path, computed once per request.

use std::borrow::Cow;

/// Why a request path cannot be normalized; such a request should be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A `%` not followed by two hexadecimal digits.
    #[error("expected two hexadecimal digits after '%' at byte {offset} of the request path")]
    MalformedEscape {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// A NUL character, raw or as `%00`, which C-based upstreams would truncate at.
    #[error(
        "expected no NUL character (raw or %00) in the request path, found one at byte {offset}"
    )]
    Nul {
        /// Byte offset of the NUL or of its `%` in the raw path.
        offset: usize,
    },
}

/// Normalizes a raw request target's path for policy matching.
///
/// In order: drops `?query` and `#fragment`; rejects NUL and malformed
/// escapes; turns `\` into `/`; decodes escaped unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) exactly once and upper-cases the hex of every other
/// escape; prefixes `/` when missing; removes dot segments (RFC 3986
/// §5.2.4). `%2F` and `%5C` stay encoded and `//` is not merged, because
/// upstreams disagree on both and a policy must not guess. Returns
/// [`Cow::Borrowed`] when the path is already canonical, the common case.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let decoded = decode(&raw[..end])?;
    if has_dot_segment(&decoded) {
        Ok(Cow::Owned(remove_dot_segments(&decoded)))
    } else {
        Ok(decoded)
    }
}

/// Copies the input only from the first byte that has to change, so a path
/// that needs no change is returned borrowed without allocating.
struct Rewriter<'a> {
    src: &'a str,
    out: Option<String>,
    copied: usize,
}

impl<'a> Rewriter<'a> {
    fn new(src: &'a str) -> Self {
        // `\` becomes `/` later, so only a path starting with neither needs one.
        let out = (!src.starts_with(['/', '\\'])).then(|| {
            let mut s = String::with_capacity(src.len() + 1);
            s.push('/');
            s
        });
        Rewriter {
            src,
            out,
            copied: 0,
        }
    }

    /// Replaces `src[at..at + len]` with what `write` appends.
    fn replace(&mut self, at: usize, len: usize, write: impl FnOnce(&mut String)) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.src.len()));
        out.push_str(&self.src[self.copied..at]);
        write(out);
        self.copied = at + len;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.src),
            Some(mut out) => {
                out.push_str(&self.src[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}

/// Validates escapes, decodes unreserved ones, canonicalizes the rest.
fn decode(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    let mut out = Rewriter::new(path);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0 => return Err(PathError::Nul { offset: i }),
            b'\\' => out.replace(i, 1, |s| s.push('/')),
            b'%' => {
                let byte = escaped_byte(bytes, i)?;
                if is_unreserved(byte) {
                    out.replace(i, 3, |s| s.push(char::from(byte)));
                } else if bytes[i + 1].is_ascii_lowercase() || bytes[i + 2].is_ascii_lowercase() {
                    out.replace(i, 3, |s| push_upper_escape(s, byte));
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out.finish())
}

/// The byte encoded by the escape starting at `bytes[at] == b'%'`.
fn escaped_byte(bytes: &[u8], at: usize) -> Result<u8, PathError> {
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let (Some(hi), Some(lo)) = (hex(bytes.get(at + 1)), hex(bytes.get(at + 2))) else {
        return Err(PathError::MalformedEscape { offset: at });
    };
    // Both digits are < 16, so the value fits a byte.
    let byte = (hi * 16 + lo) as u8;
    if byte == 0 {
        return Err(PathError::Nul { offset: at });
    }
    Ok(byte)
}

fn push_upper_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xF)]));
}

/// RFC 3986 §2.3 unreserved characters: decoding them never changes meaning.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn has_dot_segment(path: &str) -> bool {
    // Decoded paths start with '/', so every dot segment follows a "/."; the
    // substring test keeps the common dot-free path to one scan.
    path.contains("/.") && path.split('/').any(|s| s == "." || s == "..")
}

/// RFC 3986 §5.2.4 `remove_dot_segments` for a path starting with `/`.
///
/// Works segment by segment instead of on the string buffer the RFC
/// describes; for absolute paths the two are equivalent (the tests compare
/// them), and this one is simpler to read.
fn remove_dot_segments(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let body = path.strip_prefix('/').unwrap_or(path);
    let mut segments = body.split('/').peekable();
    while let Some(segment) = segments.next() {
        match segment {
            "." => {}
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                out.push('/');
                out.push_str(segment);
                continue;
            }
        }
        // A trailing dot segment leaves a directory: "/a/b/.." is "/a/".
        if segments.peek().is_none() {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}
