//! Boundary extraction from the `Content-Type` header (`Multipart::init` in libmodsecurity 3).

use super::MultipartFlags;
use crate::body::cookies::is_c_space;

/// Why the header was rejected: `None` for libmodsecurity's silent failures (an empty
/// boundary value), which stop processing without an error message or strict flag.
pub(super) type InitError = Option<&'static str>;

/// Extracts the boundary, setting `boundary_quoted`, `boundary_whitespace`,
/// `missing_semicolon` and (on failure) the internal `error` flag as libmodsecurity does.
pub(super) fn extract_boundary(
    header: &[u8],
    flags: &mut MultipartFlags,
) -> Result<Vec<u8>, InitError> {
    let result = extract(header, flags);
    if matches!(result, Err(Some(_))) {
        flags.error = true;
    }
    result
}

fn extract(header: &[u8], flags: &mut MultipartFlags) -> Result<Vec<u8>, InitError> {
    if header.is_empty() {
        return Err(Some("Multipart: Content-Type header not available."));
    }
    if header.len() > 1024 {
        return Err(Some("Multipart: Invalid boundary in C-T (length)."));
    }
    // The C code works on the NUL-terminated string from here on.
    let header = match memchr::memchr(0, header) {
        Some(nul) => &header[..nul],
        None => header,
    };
    const MIME: &[u8] = b"multipart/form-data";
    if header.len() < MIME.len() || !header[..MIME.len()].eq_ignore_ascii_case(MIME) {
        return Err(Some("Multipart: Invalid MIME type."));
    }
    if count_boundary_params(header) > 1 {
        return Err(Some("Multipart: Multiple boundary parameters in C-T."));
    }
    let Some(at) = memchr::memmem::find(header, b"boundary") else {
        if count_boundary_params(header) > 0 {
            return Err(Some(
                "Multipart: Invalid boundary in C-T (case sensitivity).",
            ));
        }
        return Err(Some("Multipart: Boundary not found in C-T."));
    };
    check_before_parameter(&header[MIME.len().min(at)..at], flags)?;
    let after_name = &header[at + 8..];
    let Some(eq) = memchr::memchr(b'=', after_name) else {
        return Err(Some("Multipart: Invalid boundary in C-T (malformed)."));
    };
    for &c in &after_name[..eq] {
        if !is_c_space(c) {
            return Err(Some("Multipart: Invalid boundary in C-T (parameter name)."));
        }
        flags.boundary_whitespace = true;
    }
    let value = &after_name[eq + 1..];
    if value.first().is_some_and(|c| is_c_space(*c)) {
        flags.boundary_whitespace = true;
    }
    let mut boundary = unquote(value, flags)?;
    if count_boundary_params(&boundary) != 0 {
        return Err(Some("Multipart: Invalid boundary in C-T (content)."));
    }
    // Tolerated: frameworks that append `; charset=…` after the boundary.
    if !boundary_characters_valid(&boundary)
        && let Some(semi) = memchr::memchr(b';', &boundary)
    {
        boundary.truncate(semi);
    }
    if !boundary_characters_valid(&boundary) {
        return Err(Some("Multipart: Invalid boundary in C-T (characters)."));
    }
    if boundary.is_empty() {
        return Err(Some("Multipart: Invalid boundary in C-T (empty)."));
    }
    Ok(boundary)
}

/// Between the MIME type and `boundary` only whitespace and one `;` may appear.
fn check_before_parameter(between: &[u8], flags: &mut MultipartFlags) -> Result<(), InitError> {
    let mut seen_semicolon = false;
    for &c in between {
        if is_c_space(c) {
            continue;
        }
        if !seen_semicolon && c == b';' {
            seen_semicolon = true;
        } else {
            return Err(Some("Multipart: Invalid boundary in C-T (malformed)."));
        }
    }
    if !seen_semicolon {
        flags.missing_semicolon = true;
    }
    Ok(())
}

fn unquote(value: &[u8], flags: &mut MultipartFlags) -> Result<Vec<u8>, InitError> {
    let len = value.len();
    if len >= 2 && value[0] == b'"' && value[len - 1] == b'"' {
        let inner = &value[1..len - 1];
        if inner.is_empty() {
            return Err(None);
        }
        flags.boundary_quoted = true;
        return Ok(inner.to_vec());
    }
    if value.first() == Some(&b'"') || (len >= 2 && value[len - 1] == b'"') {
        return Err(Some("Multipart: Invalid boundary in C-T (quote)."));
    }
    if value.is_empty() {
        return Err(None);
    }
    Ok(value.to_vec())
}

/// How many times `boundary` (any case) appears with a `=` somewhere after it.
pub(super) fn count_boundary_params(s: &[u8]) -> usize {
    let lower = s.to_ascii_lowercase();
    let mut count = 0;
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&lower[from..], b"boundary") {
        from += i + 8;
        if memchr::memchr(b'=', &lower[from..]).is_some() {
            count += 1;
        }
    }
    count
}

/// RFC 2046 boundary characters (a space is allowed, but not last).
fn boundary_characters_valid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_alphanumeric()
            || (c == b' ' && i + 1 < b.len())
            || matches!(
                c,
                b'\'' | b'(' | b')' | b'+' | b'_' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(h: &str) -> (String, MultipartFlags) {
        let mut f = MultipartFlags::default();
        let b = extract_boundary(h.as_bytes(), &mut f).unwrap_or_else(|e| panic!("{h}: {e:?}"));
        (String::from_utf8_lossy(&b).into_owned(), f)
    }

    fn bad(h: &str) -> (InitError, MultipartFlags) {
        let mut f = MultipartFlags::default();
        let e = extract_boundary(h.as_bytes(), &mut f).expect_err(h);
        (e, f)
    }

    #[test]
    fn plain_and_quoted() {
        let (b, f) = ok("multipart/form-data; boundary=abc");
        assert_eq!(b, "abc");
        assert!(!f.boundary_quoted && !f.missing_semicolon && !f.boundary_whitespace);
        let (b, f) = ok("Multipart/Form-Data; boundary=\"a b\"");
        assert_eq!(b, "a b");
        assert!(f.boundary_quoted);
    }

    #[test]
    fn flags_from_the_header() {
        assert!(ok("multipart/form-data boundary=x").1.missing_semicolon);
        assert!(ok("multipart/form-data; boundary =x").1.boundary_whitespace);
        assert!(ok("multipart/form-data; boundary= x").1.boundary_whitespace);
        assert_eq!(ok("multipart/form-data; boundary=x; charset=utf-8").0, "x");
    }

    #[test]
    fn rejected_headers() {
        let msg = |h: &str| bad(h).0;
        assert_eq!(
            msg("text/plain; boundary=x"),
            Some("Multipart: Invalid MIME type.")
        );
        assert_eq!(
            msg("multipart/form-data"),
            Some("Multipart: Boundary not found in C-T.")
        );
        assert_eq!(
            msg("multipart/form-data; BOUNDARY=x"),
            Some("Multipart: Invalid boundary in C-T (case sensitivity).")
        );
        assert_eq!(
            msg("multipart/form-data; boundary=a; boundary=b"),
            Some("Multipart: Multiple boundary parameters in C-T.")
        );
        assert_eq!(
            msg("multipart/form-data; x; boundary=a"),
            Some("Multipart: Invalid boundary in C-T (malformed).")
        );
        assert_eq!(
            msg("multipart/form-data; boundary"),
            Some("Multipart: Invalid boundary in C-T (malformed).")
        );
        assert_eq!(
            msg("multipart/form-data; boundaryx=a"),
            Some("Multipart: Invalid boundary in C-T (parameter name).")
        );
        assert_eq!(
            msg("multipart/form-data; boundary=\"abc"),
            Some("Multipart: Invalid boundary in C-T (quote).")
        );
        assert_eq!(
            msg("multipart/form-data; boundary=a{b"),
            Some("Multipart: Invalid boundary in C-T (characters).")
        );
        assert_eq!(
            msg("multipart/form-data; boundary=abc "),
            Some("Multipart: Invalid boundary in C-T (characters).")
        );
        assert_eq!(msg("multipart/form-data; boundary=\"\""), None);
        assert!(bad("multipart/form-data").1.error);
        assert!(!bad("multipart/form-data; boundary=").1.error);
    }

    #[test]
    fn counting_boundary_parameters() {
        assert_eq!(count_boundary_params(b"multipart/form-data; boundary=x"), 1);
        assert_eq!(count_boundary_params(b"boundary"), 0);
        // As in libmodsecurity: any later '=' counts, even in another parameter.
        assert_eq!(
            count_boundary_params(b"boundary=geckoformboundary1;charset=utf-8"),
            2
        );
    }
}
