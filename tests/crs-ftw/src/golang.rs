//! The few Go standard-library behaviours go-ftw's request building depends on.

/// `net/url.QueryEscape`: space becomes `+`; everything but `A-Za-z0-9-_.~` becomes `%XX`.
pub fn query_escape(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for &b in input {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether `url.QueryUnescape(s) == s` with no error: true exactly when `s` has no `%` and no
/// `+` (a `%` either decodes to something else or is an error, `+` becomes a space).
pub fn query_unescape_is_identity(input: &[u8]) -> bool {
    !input.iter().any(|&b| b == b'%' || b == b'+')
}

pub use bulkhead_waf::replay::albedo::canonical_header_key;

/// `strings.EqualFold` for the ASCII values go-ftw compares.
pub fn equal_fold(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Go's `^POST|PUT|PATCH|DELETE$`, which (by operator precedence) means: starts with POST,
/// contains PUT or PATCH, or ends with DELETE.
pub fn method_wants_content_length(method: &str) -> bool {
    method.starts_with("POST")
        || method.contains("PUT")
        || method.contains("PATCH")
        || method.ends_with("DELETE")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escape_like_go() {
        assert_eq!(
            query_escape(b"a b&c=d/\xc3\xa9~_.-"),
            "a+b%26c%3Dd%2F%C3%A9~_.-"
        );
        assert_eq!(query_escape(b"<script>"), "%3Cscript%3E");
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_header_key("content-type"), "Content-Type");
        assert_eq!(canonical_header_key("CONTENT-LENGTH"), "Content-Length");
        assert_eq!(canonical_header_key("x_filename"), "X_filename");
        assert_eq!(canonical_header_key("bad name"), "bad name");
        assert_eq!(canonical_header_key("Sec-CH-UA"), "Sec-Ch-Ua");
    }

    #[test]
    fn method_regexp_quirk() {
        for yes in [
            "POST", "POSTX", "PUT", "XPUTX", "PATCH", "DELETE", "XDELETE",
        ] {
            assert!(method_wants_content_length(yes), "{yes}");
        }
        for no in ["GET", "XPOST", "DELETEX", "post", "OPTIONS"] {
            assert!(!method_wants_content_length(no), "{no}");
        }
    }

    proptest! {
        #[test]
        fn escaped_text_is_unreserved(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let escaped = query_escape(&input);
            prop_assert!(escaped.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b)));
            prop_assert!(!query_unescape_is_identity(escaped.as_bytes()) || !escaped.contains('%'));
        }

        #[test]
        fn canonical_key_is_idempotent(name in "[A-Za-z0-9_-]{0,20}") {
            let once = canonical_header_key(&name);
            prop_assert_eq!(canonical_header_key(&once), once.clone());
            prop_assert!(once.eq_ignore_ascii_case(&name));
        }
    }
}
