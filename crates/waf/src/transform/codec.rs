//! Encodings: base64 (decode, forgiving decode, encode), hex (decode, encode) and SQL hex.

use base64::Engine as _;

use super::{HEX_LOWER, is_hex, x2c};

/// The value of a base64 alphabet byte (standard alphabet only).
fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Checks input the way mbedTLS's `mbedtls_base64_decode` does before decoding anything: only
/// alphabet bytes and at most two `=` (nothing but line breaks and spaces after them); spaces
/// only before a line break or at the very end; `\r` only as part of `\r\n`.
fn strict_base64_is_valid(s: &[u8]) -> bool {
    let mut i = 0;
    let mut equals = 0;
    while i < s.len() {
        let spaces_start = i;
        while i < s.len() && s[i] == b' ' {
            i += 1;
        }
        if i == s.len() {
            break;
        }
        if s[i] == b'\n' || (s[i] == b'\r' && s.get(i + 1) == Some(&b'\n')) {
            i += 1;
            continue;
        }
        if i != spaces_start {
            return false;
        }
        if s[i] == b'=' {
            equals += 1;
            if equals > 2 {
                return false;
            }
        } else if base64_value(s[i]).is_none() || equals != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// `base64Decode`, as libmodsecurity 3 does it through mbedTLS: the input stops at its first
/// NUL (it is read as a C string); anything mbedTLS rejects (see [`strict_base64_is_valid`])
/// decodes to nothing at all, not to a prefix; a trailing group of fewer than four characters
/// is dropped.
pub(super) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let s = &input[..memchr::memchr(0, input).unwrap_or(input.len())];
    if !strict_base64_is_valid(s) {
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    // mbedTLS counts the `=` over the whole input, not per group.
    let mut keep = 3u32;
    let mut acc = 0u32;
    let mut count = 0;
    for &c in s {
        if matches!(c, b'\r' | b'\n' | b' ') {
            continue;
        }
        let value = if c == b'=' {
            keep = keep.saturating_sub(1);
            0
        } else {
            base64_value(c).unwrap_or(0)
        };
        acc = (acc << 6) | u32::from(value);
        count += 1;
        if count == 4 {
            count = 0;
            let bytes = acc.to_be_bytes();
            let n = usize::try_from(keep).unwrap_or(3);
            out.extend_from_slice(&bytes[1..1 + n]);
        }
    }
    Some(out)
}

/// `base64DecodeExt`, libmodsecurity 3's forgiving decoder: bytes outside the alphabet are
/// skipped. Two of its quirks are kept: a `=` that follows a lone character of a group (and is
/// not followed by another `=`) makes the whole result empty, and so does input whose last
/// character is `=` or `9` (the decoder mistakes the value of `9`, 61, for `'='`) when it ends
/// on a lone character of a group.
pub(super) fn base64_decode_ext(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut group = 0usize;
    let mut pending = 0u8;
    let mut last_looks_like_pad = false;
    for (idx, &c) in input.iter().enumerate() {
        if c == b'=' {
            if input.get(idx + 1) != Some(&b'=') && group % 4 == 1 {
                return Some(Vec::new());
            }
            last_looks_like_pad = true;
            continue;
        }
        let Some(v) = base64_value(c) else {
            last_looks_like_pad = false;
            continue;
        };
        last_looks_like_pad = v == b'=';
        match group % 4 {
            0 => pending = v << 2,
            1 => {
                out.push(pending | (v >> 4));
                pending = (v & 0x0f) << 4;
            }
            2 => {
                out.push(pending | (v >> 2));
                pending = (v & 0x03) << 6;
            }
            _ => out.push(pending | v),
        }
        group += 1;
    }
    if last_looks_like_pad && group % 4 == 1 {
        return Some(Vec::new());
    }
    Some(out)
}

/// `base64Encode`: standard alphabet with padding.
pub(super) fn base64_encode(input: &[u8]) -> Option<Vec<u8>> {
    Some(
        base64::engine::general_purpose::STANDARD
            .encode(input)
            .into_bytes(),
    )
}

/// `hexDecode`, as libmodsecurity 3 does it: every pair of bytes becomes one byte, with no
/// validation (non-hex bytes go through the same arithmetic), and an odd last byte is dropped.
pub(super) fn hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    Some(
        input
            .chunks_exact(2)
            .map(|pair| x2c(pair[0], pair[1]))
            .collect(),
    )
}

/// `hexEncode`: two lowercase hex digits per byte.
pub(super) fn hex_encode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 2);
    for &c in input {
        out.push(HEX_LOWER[usize::from(c >> 4)]);
        out.push(HEX_LOWER[usize::from(c & 15)]);
    }
    Some(out)
}

/// `sqlHexDecode`: `0x` (or `0X`) followed by at least one pair of hex digits becomes the
/// decoded bytes; pairs are taken while they last, and a lone last digit stays. This is the
/// corrected decoder of libmodsecurity 3.0.13; 3.0.9's drops the input's last byte.
pub(super) fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    let hex_pair = |i: usize| i + 1 < input.len() && is_hex(input[i]) && is_hex(input[i + 1]);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let starts_literal = input[i] == b'0'
            && input
                .get(i + 1)
                .is_some_and(|c| c.eq_ignore_ascii_case(&b'x'))
            && hex_pair(i + 2);
        if !starts_literal {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 2;
        while hex_pair(i) {
            out.push(x2c(input[i], input[i + 1]));
            i += 2;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn t(tf: Transform, input: &[u8]) -> Vec<u8> {
        tf.apply(input).into_owned()
    }

    #[test]
    fn base64_decode_valid() {
        let d = |s: &[u8]| t(Transform::Base64Decode, s);
        assert_eq!(d(b""), b"");
        assert_eq!(d(b"VGVzdENhc2U="), b"TestCase");
        assert_eq!(d(b"VGVzdENhc2Ux"), b"TestCase1");
        assert_eq!(d(b"VGVzdENhc2UxMg=="), b"TestCase12");
        assert_eq!(d(b"VGVzdABDYXNl"), b"Test\0Case");
        assert_eq!(d(b"VGVzdENhc2U=\0VGVzdENhc2U="), b"TestCase");
        assert_eq!(d(b"VGVz\r\ndENh\nc2U=  "), b"TestCase");
        assert_eq!(d(b"VGVzdA  \r\n"), b"Tes");
        assert_eq!(d(b"XyQkTkRfRlVOQyQkXwo="), b"_$$ND_FUNC$$_\n");
    }

    #[test]
    fn base64_decode_partial_groups_are_dropped() {
        let d = |s: &[u8]| t(Transform::Base64Decode, s);
        assert_eq!(d(b"YWJjZA"), b"abc");
        assert_eq!(d(b"YWJjZ"), b"abc");
        assert_eq!(d(b"YQ="), b"");
        assert_eq!(d(b"=="), b"");
    }

    #[test]
    fn base64_decode_invalid_is_empty() {
        let d = |s: &[u8]| t(Transform::Base64Decode, s);
        assert_eq!(d(b"VGVzdENhc2U=!"), b"");
        assert_eq!(d(b"VGVz dENh"), b"");
        assert_eq!(d(b"VGVz\rdENh"), b"");
        assert_eq!(d(b"YQ==YQ=="), b"");
        assert_eq!(d(b"Y==="), b"");
        assert_eq!(d(b"VGVzdA-_"), b"");
        assert_eq!(d(b"VGVz\xc3\xa9"), b"");
    }

    #[test]
    fn base64_decode_ext_cases() {
        let d = |s: &[u8]| t(Transform::Base64DecodeExt, s);
        assert_eq!(d(b""), b"");
        assert_eq!(d(b"VGVzdENhc2U="), b"TestCase");
        assert_eq!(d(b"VGVzdENhc2Ux"), b"TestCase1");
        assert_eq!(d(b"VGVzdENhc2UxMg=="), b"TestCase12");
        assert_eq!(
            d(b"P.HNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
            b"<script>alert(1)</script>"
        );
        assert_eq!(d(b"VGVzdABDYXNl"), b"Test\0Case");
        assert_eq!(d(b"VG Vz\n dA!!"), b"Test");
        assert_eq!(d(b"YWJjZ"), b"abc");
        // The quirks: a `=` after a lone group character, and a trailing `9` in that spot.
        assert_eq!(d(b"YWJjZ=x"), b"");
        assert_eq!(d(b"YWJjZ=="), b"");
        assert_eq!(d(b"YWJjZA=="), b"abcd");
        assert_eq!(d(b"YWJj9"), b"");
        assert_eq!(d(b"YWJjA"), b"abc");
    }

    #[test]
    fn base64_encode_cases() {
        let e = |s: &[u8]| t(Transform::Base64Encode, s);
        assert_eq!(e(b""), b"");
        assert_eq!(e(b"TestCase"), b"VGVzdENhc2U=");
        assert_eq!(e(b"TestCase1"), b"VGVzdENhc2Ux");
        assert_eq!(e(b"TestCase12"), b"VGVzdENhc2UxMg==");
        assert_eq!(e(b"Test\0Case"), b"VGVzdABDYXNl");
    }

    #[test]
    fn hex() {
        let d = |s: &[u8]| t(Transform::HexDecode, s);
        assert_eq!(d(b""), b"");
        assert_eq!(d(b"5465737443617365"), b"TestCase");
        assert_eq!(d(b"546573740043617365"), b"Test\0Case");
        assert_eq!(
            d(b"01234567890a0z01234567890a"),
            b"\x01#Eg\x89\x0a#\x01#Eg\x89\x0a"
        );
        assert_eq!(d(b"01234567890az"), b"\x01#Eg\x89\x0a");
        assert_eq!(d(b"01234567890a0"), b"\x01#Eg\x89\x0a");
        let e = |s: &[u8]| t(Transform::HexEncode, s);
        assert_eq!(e(b""), b"");
        assert_eq!(e(b"TestCase"), b"5465737443617365");
        assert_eq!(e(b"Test\0Case\xff"), b"546573740043617365ff");
    }

    #[test]
    fn sql_hex() {
        let d = |s: &[u8]| t(Transform::SqlHexDecode, s);
        assert_eq!(d(b""), b"");
        assert_eq!(d(b"0x414243"), b"ABC");
        assert_eq!(d(b"abc"), b"abc");
        assert_eq!(d(b"select 0X41424,1"), b"select AB4,1");
        assert_eq!(d(b"0x"), b"0x");
        assert_eq!(d(b"0x4"), b"0x4");
        assert_eq!(d(b"0xzz 00x41"), b"0xzz 0A");
    }
}
