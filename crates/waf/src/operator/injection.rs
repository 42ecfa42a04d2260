//! `@detectSQLi` and `@detectXSS` (libinjection, via the `libinjectionrs` port).

use libinjectionrs::{SqliFlags, SqliState};

use super::Captures;

/// libinjection's `libinjection_sqli`; with `captures`, group 0 is the fingerprint.
pub(super) fn sqli(input: &[u8], captures: Option<&mut Captures>) -> bool {
    let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
    if !state.detect() {
        return false;
    }
    if let Some(out) = captures {
        // After a positive `detect` the state holds the fingerprint of the context that
        // matched, which is what libinjection hands back to libmodsecurity.
        out.set_group_zero(state.fingerprint_string().as_bytes());
    }
    true
}

/// libinjection's `libinjection_xss`; with `captures`, group 0 is the whole value, as
/// libmodsecurity 3 records it.
pub(super) fn xss(input: &[u8], captures: Option<&mut Captures>) -> bool {
    if !libinjectionrs::detect_xss(input).is_injection() {
        return false;
    }
    if let Some(out) = captures {
        out.set_group_zero(input);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqli_detection_and_fingerprint() {
        let mut caps = Captures::default();
        assert!(sqli(b"1' OR '1'='1", Some(&mut caps)));
        let fp = caps.groups.first().cloned().flatten().unwrap_or_default();
        assert!(!fp.is_empty() && fp.len() <= 8, "{fp:?}");
        assert!(sqli(b"1 UNION SELECT password FROM users", None));
        assert!(!sqli(b"hello world", None));
        assert!(!sqli(b"", None));
    }

    #[test]
    fn xss_detection() {
        let mut caps = Captures::default();
        let input = b"<script>alert(1)</script>";
        assert!(xss(input, Some(&mut caps)));
        assert_eq!(caps.groups, vec![Some(input.to_vec())]);
        assert!(xss(b"<img src=x onerror=alert(1)>", None));
        assert!(!xss(b"Hello, world!", None));
        assert!(!xss(b"", None));
    }
}
