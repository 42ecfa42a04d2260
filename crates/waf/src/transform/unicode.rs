//! `utf8toUnicode`.

use std::io::Write as _;

/// `utf8toUnicode`, as libmodsecurity 3.0.9 does it. A well-formed 2-, 3- or 4-byte sequence
/// becomes `%u` and its code point in lowercase hex (at least four digits). Quirks kept on
/// purpose because the CRS regression results depend on them:
/// - a lead byte (0xC0–0xF7) without enough continuation bytes is dropped, and decoding goes on
///   with the next byte;
/// - an overlong form or a surrogate is still encoded, followed by its raw lead byte;
/// - a lead byte 0xF5–0xF7 is also copied raw, before whatever follows;
/// - NUL bytes are dropped (the reference writes them without advancing its output);
/// - stray continuation bytes, 0xF8–0xFF and ASCII are copied.
pub(super) fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    let start = input.iter().position(|&c| c == 0 || c >= 0x80)?;
    let mut out = super::prefix(input, start);
    let mut i = start;
    while i < input.len() {
        i += encode_one(input, i, &mut out);
    }
    Some(out)
}

/// Handles the byte at `i` (and its continuation bytes); returns how many bytes it used.
fn encode_one(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let c = input[i];
    let (len, lead_bits, shortest) = match c {
        0 => return 1,
        0x01..=0x7f | 0x80..=0xbf | 0xf8..=0xff => {
            out.push(c);
            return 1;
        }
        0xc0..=0xdf => (2, c & 0x1f, 0x80),
        0xe0..=0xef => (3, c & 0x0f, 0x800),
        0xf0..=0xf7 => {
            if c >= 0xf5 {
                out.push(c);
            }
            (4, c & 0x07, 0x1_0000)
        }
    };
    let Some(tail) = input.get(i + 1..i + len) else {
        return 1;
    };
    if !tail.iter().all(|&b| b & 0xc0 == 0x80) {
        return 1;
    }
    let code = tail.iter().fold(u32::from(lead_bits), |acc, &b| {
        (acc << 6) | u32::from(b & 0x3f)
    });
    // Writing to a Vec cannot fail.
    let _ = write!(out, "%u{code:04x}");
    if (0xd800..=0xdfff).contains(&code) {
        out.push(c);
    }
    if code < shortest {
        out.push(c);
    }
    len
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn u(input: &[u8]) -> Vec<u8> {
        Transform::Utf8ToUnicode.apply(input).into_owned()
    }

    #[test]
    fn ascii_is_unchanged() {
        assert_eq!(u(b""), b"");
        assert_eq!(u(b"TestCase %u0041"), b"TestCase %u0041");
    }

    #[test]
    fn well_formed_sequences() {
        assert_eq!(u("é".as_bytes()), b"%u00e9");
        assert_eq!(u("Ā\u{80}".as_bytes()), b"%u0100%u0080");
        assert_eq!(u("Ø¨ Ø©".as_bytes()), b"%u00d8%u00a8 %u00d8%u00a9");
        assert_eq!(u("■".as_bytes()), b"%u25a0");
        assert_eq!(u("＜script＞".as_bytes()), b"%uff1cscript%uff1e");
        assert_eq!(u("😀".as_bytes()), b"%u1f600");
        assert_eq!(u("\u{10ffff}".as_bytes()), b"%u10ffff");
    }

    #[test]
    fn malformed_sequences() {
        // Lead bytes without their continuation bytes are dropped.
        assert_eq!(u(b"a\xc3(b"), b"a(b");
        assert_eq!(u(b"a\xe2\x82"), b"a\x82");
        assert_eq!(u(b"\xf0\x9f\x98"), b"\x9f\x98");
        // Stray continuation bytes and 0xF8-0xFF are copied.
        assert_eq!(u(b"\x80\xbf\xf8\xff"), b"\x80\xbf\xf8\xff");
        // Overlong forms and surrogates are encoded, then followed by the raw lead byte.
        assert_eq!(u(b"\xc0\xaf"), b"%u002f\xc0");
        assert_eq!(u(b"\xe0\x80\xaf"), b"%u002f\xe0");
        assert_eq!(u(b"\xed\xa0\x80"), b"%ud800\xed");
        assert_eq!(u(b"\xf0\x80\x80\xaf"), b"%u002f\xf0");
        // Lead bytes past U+10FFFF are copied raw first.
        assert_eq!(u(b"\xf5\x80\x80\x80"), b"\xf5%u140000");
        assert_eq!(u(b"\xf7x"), b"\xf7x");
    }

    #[test]
    fn nuls_are_dropped() {
        assert_eq!(u(b"a\0b\0"), b"ab");
        assert_eq!(u(b"\0\xc3\xa9"), b"%u00e9");
    }
}
