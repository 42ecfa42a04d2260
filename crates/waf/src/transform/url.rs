//! `urlDecode`, `urlDecodeUni` and `urlEncode`.

use super::{is_hex, prefix, push_percent_hex, x2c};

/// `urlDecode`: `%HH` becomes the byte, `+` a space; an invalid or truncated `%` stays as it is
/// (libmodsecurity's non-strict decoder).
pub(super) fn url_decode(input: &[u8]) -> Option<Vec<u8>> {
    let start = memchr::memchr2(b'%', b'+', input)?;
    let mut out = prefix(input, start);
    let mut i = start;
    while i < input.len() {
        i += decode_one(input, i, &mut out);
    }
    Some(out)
}

/// `urlDecodeUni`: `urlDecode` plus the IIS `%uHHHH` form. As libmodsecurity 3 does without a
/// `SecUnicodeMapFile`, `%uHHHH` keeps only its low byte, except that full-width ASCII
/// (U+FF01–U+FF5E) maps to ASCII by adding 0x20 to that byte.
pub(super) fn url_decode_uni(input: &[u8]) -> Option<Vec<u8>> {
    let start = memchr::memchr2(b'%', b'+', input)?;
    let mut out = prefix(input, start);
    let mut i = start;
    while i < input.len() {
        let is_u = input[i] == b'%' && matches!(input.get(i + 1), Some(b'u' | b'U'));
        i += if is_u {
            decode_percent_u(input, i, &mut out)
        } else {
            decode_one(input, i, &mut out)
        };
    }
    Some(out)
}

/// Decodes the byte at `i` (a `%HH`, a `+` or a plain byte); returns how many bytes it used.
fn decode_one(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    match input[i] {
        b'%' if i + 2 < input.len() && is_hex(input[i + 1]) && is_hex(input[i + 2]) => {
            out.push(x2c(input[i + 1], input[i + 2]));
            3
        }
        b'+' => {
            out.push(b' ');
            1
        }
        c => {
            out.push(c);
            1
        }
    }
}

/// Decodes a `%u` sequence at `i`; returns how many bytes it used. An invalid or truncated one
/// is copied as `%u` and decoding goes on after it, as in libmodsecurity.
fn decode_percent_u(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let valid = i + 5 < input.len() && input[i + 2..i + 6].iter().all(|&c| is_hex(c));
    if !valid {
        out.extend_from_slice(&input[i..i + 2]);
        return 2;
    }
    out.push(full_width_low_byte(
        input[i + 2],
        input[i + 3],
        input[i + 4],
        input[i + 5],
    ));
    6
}

/// The byte libmodsecurity keeps for the code unit `h1 h2 h3 h4` (four hex digits) when it has
/// no unicode map: the low byte, plus 0x20 for full-width ASCII (`FF01`–`FF5E`).
pub(super) fn full_width_low_byte(h1: u8, h2: u8, h3: u8, h4: u8) -> u8 {
    let low = x2c(h3, h4);
    let full_width = h1.eq_ignore_ascii_case(&b'f') && h2.eq_ignore_ascii_case(&b'f');
    if full_width && low > 0 && low < 0x5f {
        low + 0x20
    } else {
        low
    }
}

/// `urlEncode`: everything but ASCII letters, digits and `*` becomes `%hh` (lowercase), and a
/// space becomes `+`.
pub(super) fn url_encode(input: &[u8]) -> Option<Vec<u8>> {
    let keep = |c: u8| c.is_ascii_alphanumeric() || c == b'*';
    let start = input.iter().position(|&c| !keep(c))?;
    let mut out = Vec::with_capacity(input.len() + 2 * (input.len() - start));
    out.extend_from_slice(&input[..start]);
    for &c in &input[start..] {
        if keep(c) {
            out.push(c);
        } else if c == b' ' {
            out.push(b'+');
        } else {
            push_percent_hex(&mut out, c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn dec(input: &[u8]) -> Vec<u8> {
        Transform::UrlDecode.apply(input).into_owned()
    }

    fn uni(input: &[u8]) -> Vec<u8> {
        Transform::UrlDecodeUni.apply(input).into_owned()
    }

    fn enc(input: &[u8]) -> Vec<u8> {
        Transform::UrlEncode.apply(input).into_owned()
    }

    #[test]
    fn url_decode_basics() {
        assert_eq!(dec(b""), b"");
        assert_eq!(dec(b"TestCase"), b"TestCase");
        assert_eq!(dec(b"Test\0Case"), b"Test\0Case");
        assert_eq!(dec(b"Test+Case"), b"Test Case");
        assert_eq!(dec(b"%41%62%3d%3D%00%ff%FF"), b"Ab==\0\xff\xff");
        assert_eq!(dec(b"a%2Bb"), b"a+b");
    }

    #[test]
    fn url_decode_keeps_invalid_sequences() {
        assert_eq!(dec(b"%+"), b"% ");
        assert_eq!(dec(b"%%20"), b"% ");
        assert_eq!(dec(b"%0g%20"), b"%0g ");
        assert_eq!(dec(b"%0%20"), b"%0 ");
        assert_eq!(dec(b"%g0%20"), b"%g0 ");
        assert_eq!(dec(b"%"), b"%");
        assert_eq!(dec(b"%0"), b"%0");
        assert_eq!(dec(b"%%"), b"%%");
        assert_eq!(dec(b"%gg"), b"%gg");
        assert_eq!(dec(b"%0%1%2%a%f"), b"%0%1%2%a%f");
        // urlDecode knows nothing of %u.
        assert_eq!(dec(b"%u0041"), b"%u0041");
    }

    #[test]
    fn url_decode_uni_percent_u() {
        assert_eq!(uni(b"%u0041%u0062"), b"Ab");
        assert_eq!(uni(b"%U0041"), b"A");
        // Only the low byte survives.
        assert_eq!(uni(b"%u1100%u11ff%u2027"), b"\x00\xff\x27");
        // Full width ASCII maps to ASCII.
        assert_eq!(uni(b"%uff01%uFF1C%uff5e"), b"!<~");
        assert_eq!(uni(b"%uff3c"), b"\\");
        // ...but not outside FF01-FF5E.
        assert_eq!(uni(b"%uff00%uff5f%uff7f%uffff"), b"\x00\x5f\x7f\xff");
        // Mixed with the rest of urlDecode.
        assert_eq!(uni(b"a+%3c%u003c"), b"a <<");
    }

    #[test]
    fn url_decode_uni_keeps_invalid_sequences() {
        assert_eq!(uni(b"%%u0020"), b"% ");
        assert_eq!(uni(b"%0g%u0020"), b"%0g ");
        assert_eq!(uni(b"%u%u0020"), b"%u ");
        assert_eq!(uni(b"%u0%u0020"), b"%u0 ");
        assert_eq!(uni(b"%u00%u0020"), b"%u00 ");
        assert_eq!(uni(b"%u000%u0020"), b"%u000 ");
        assert_eq!(uni(b"%u000g%u0020"), b"%u000g ");
        assert_eq!(uni(b"%u004"), b"%u004");
        assert_eq!(uni(b"%u"), b"%u");
        assert_eq!(uni(b"%U"), b"%U");
        assert_eq!(uni(b"%"), b"%");
        // The `u` of an invalid %u is not decoded again.
        assert_eq!(uni(b"%u%41"), b"%uA");
    }

    #[test]
    fn url_encode_cases() {
        assert_eq!(enc(b""), b"");
        assert_eq!(enc(b"TestCase"), b"TestCase");
        assert_eq!(enc(b"Test Case"), b"Test+Case");
        assert_eq!(enc(b"*-._~"), b"*%2d%2e%5f%7e");
        assert_eq!(enc(b"%0g "), b"%250g+");
        assert_eq!(enc(b" \0\x01\xff"), b"+%00%01%ff");
        assert_eq!(enc("é".as_bytes()), b"%c3%a9");
    }
}
