//! Backslash escapes: `jsDecode`, `cssDecode` and `escapeSeqDecode`.

use super::url::full_width_low_byte;
use super::{hex_digit, is_c_space, is_hex, is_octal, prefix, x2c};

/// Runs `step` over `input` from its first backslash; `step` decodes at `i` into `out` and
/// returns how many input bytes it used (at least one).
fn decode_escapes(input: &[u8], step: fn(&[u8], usize, &mut Vec<u8>) -> usize) -> Option<Vec<u8>> {
    let start = memchr::memchr(b'\\', input)?;
    let mut out = prefix(input, start);
    let mut i = start;
    while i < input.len() {
        if input[i] == b'\\' {
            i += step(input, i, &mut out);
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The value and length of up to `max` octal digits at `digits`.
fn octal(digits: &[u8], max: usize) -> (u32, usize) {
    let n = digits
        .iter()
        .take(max)
        .position(|&c| !is_octal(c))
        .unwrap_or(digits.len().min(max));
    let value = digits[..n]
        .iter()
        .fold(0u32, |acc, &c| acc * 8 + u32::from(c - b'0'));
    (value, n)
}

/// The control character of a C escape letter (`\n` → LF), if it is one.
fn c_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => return None,
    })
}

/// `jsDecode`: `\uHHHH` (low byte, full-width ASCII mapped like `urlDecodeUni`), `\xHH`, octal
/// `\OOO` (at most one byte), the C letters `\a \b \f \n \r \t \v`, and `\C` for any other `C`.
/// A lone trailing backslash stays.
pub(super) fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, js_step)
}

fn js_step(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = &input[i + 1..];
    match rest {
        [b'u', a, b, c, d, ..] if [a, b, c, d].iter().all(|&&h| is_hex(h)) => {
            out.push(full_width_low_byte(*a, *b, *c, *d));
            6
        }
        [b'x', a, b, ..] if is_hex(*a) && is_hex(*b) => {
            out.push(x2c(*a, *b));
            4
        }
        [first, ..] if is_octal(*first) => {
            // Three digits only while the value still fits in a byte (\377).
            let max = if *first > b'3' { 2 } else { 3 };
            let (value, n) = octal(rest, max);
            out.push(value.to_le_bytes()[0]);
            1 + n
        }
        [c, ..] => {
            out.push(c_escape(*c).unwrap_or(*c));
            2
        }
        [] => {
            out.push(b'\\');
            1
        }
    }
}

/// `escapeSeqDecode`: ANSI C escapes (`\n`, `\\`, `\?`, `\'`, `\"`, `\xHH`, `\OOO`, …). An
/// unknown escape loses its backslash, an invalid `\x` too (`\xg` → `xg`); octal takes up to
/// three digits and keeps the low byte. A lone trailing backslash stays.
pub(super) fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, escape_seq_step)
}

fn escape_seq_step(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = &input[i + 1..];
    let Some(&first) = rest.first() else {
        out.push(b'\\');
        return 1;
    };
    if let Some(c) = c_escape(first) {
        out.push(c);
        return 2;
    }
    match rest {
        [b'x' | b'X', a, b, ..] if is_hex(*a) && is_hex(*b) => {
            out.push(x2c(*a, *b));
            4
        }
        [c, ..] if is_octal(*c) => {
            let (value, n) = octal(rest, 3);
            out.push(value.to_le_bytes()[0]);
            1 + n
        }
        // `\\`, `\?`, `\'`, `\"` and everything unrecognised: the byte after the backslash.
        _ => {
            out.push(first);
            2
        }
    }
}

/// `cssDecode` (CSS 2 escapes): `\` plus 1–6 hex digits keeps the low byte of the number
/// (full-width ASCII mapped to ASCII when the number is `FFxx`, `0FFxx` or `00FFxx`) and eats
/// one whitespace byte after it; `\` + newline is a line continuation and disappears; `\C`
/// is `C`; a trailing backslash disappears.
///
/// Quirk kept on purpose: libmodsecurity 3.0.9 builds its result from the decoded buffer as a C
/// string, so the output ends at its first NUL byte, whether that NUL was in the input or came
/// from an escape (`\0`).
pub(super) fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = match decode_escapes(input, css_step) {
        Some(decoded) => decoded,
        None => input[..memchr::memchr(0, input)?].to_vec(),
    };
    if let Some(nul) = memchr::memchr(0, &out) {
        out.truncate(nul);
    }
    Some(out)
}

fn css_step(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = &input[i + 1..];
    let n = rest.iter().take(6).take_while(|&&c| is_hex(c)).count();
    if n == 0 {
        return match rest.first() {
            None => 1,
            Some(b'\n') => 2,
            Some(&c) => {
                out.push(c);
                2
            }
        };
    }
    let digits = &rest[..n];
    let byte = if n == 1 {
        hex_digit(digits[0])
    } else {
        x2c(digits[n - 2], digits[n - 1])
    };
    // Where the `FF` of a full-width code point would be, for the lengths that can hold one.
    let full_width_at = match n {
        4 => Some(0),
        5 if digits[0] == b'0' => Some(1),
        6 if digits[0] == b'0' && digits[1] == b'0' => Some(2),
        _ => None,
    };
    let is_ff = |at: usize| {
        digits[at..at + 2]
            .iter()
            .all(|c| c.eq_ignore_ascii_case(&b'f'))
    };
    match full_width_at {
        Some(at) if byte > 0 && byte < 0x5f && is_ff(at) => out.push(byte + 0x20),
        _ => out.push(byte),
    }
    let space = rest.get(n).is_some_and(|&c| is_c_space(c));
    1 + n + usize::from(space)
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn js(input: &[u8]) -> Vec<u8> {
        Transform::JsDecode.apply(input).into_owned()
    }

    fn esc(input: &[u8]) -> Vec<u8> {
        Transform::EscapeSeqDecode.apply(input).into_owned()
    }

    fn css(input: &[u8]) -> Vec<u8> {
        Transform::CssDecode.apply(input).into_owned()
    }

    #[test]
    fn js_decode_escapes() {
        assert_eq!(js(b""), b"");
        assert_eq!(js(b"Test\0Case"), b"Test\0Case");
        assert_eq!(
            js(br#"\\a\\b\\f\\n\\r\\t\\v\?\'\"\0\12\123\x00\xff"#),
            b"\\a\\b\\f\\n\\r\\t\\v?'\"\x00\x0a\x53\x00\xff"
        );
        assert_eq!(js(br"\a\b\f\n\r\t\v"), b"\x07\x08\x0c\n\r\t\x0b");
        assert_eq!(js(br"\u0041\u00e9\u2028"), b"A\xe9\x28");
        assert_eq!(js(br"\uff1c\uFF3E\uff5f"), b"<^_");
        // Only lowercase u and x introduce those escapes.
        assert_eq!(js(br"\U0041\X41"), b"U0041X41");
    }

    #[test]
    fn js_decode_incomplete_escapes() {
        assert_eq!(js(br"\x"), b"x");
        assert_eq!(js(br"\x\x0"), b"xx0");
        assert_eq!(js(b"\\x\\x0\0"), b"xx0\0");
        assert_eq!(js(br"\u"), b"u");
        assert_eq!(js(br"\u\u0\u01\u012"), b"uu0u01u012");
        assert_eq!(js(br"\"), b"\\");
        assert_eq!(js(br"abc\"), b"abc\\");
        assert_eq!(js(br"\\0"), b"\\0");
        assert_eq!(js(b"8966\\x0a3u00a"), b"8966\n3u00a");
    }

    #[test]
    fn js_decode_octal() {
        assert_eq!(js(br"\101\60\7"), b"A0\x07");
        assert_eq!(js(br"\377\400\777"), b"\xff\x200\x3f7");
        assert_eq!(js(br"\1234"), b"S4");
        assert_eq!(js(br"\08"), b"\x008");
    }

    #[test]
    fn escape_seq_decode_cases() {
        assert_eq!(esc(b""), b"");
        assert_eq!(esc(b"Test\0Case"), b"Test\0Case");
        assert_eq!(
            esc(br#"\a\b\f\n\r\t\v\?\'\"\0\12\123\x00\xff"#),
            b"\x07\x08\x0c\n\r\t\x0b?'\"\0\nS\0\xff"
        );
        assert_eq!(esc(br"\8\9\666\xag\xga\0123"), b"89\xb6xagxga\n3");
        assert_eq!(esc(br"\x"), b"x");
        assert_eq!(esc(br"\x\x0"), b"xx0");
        assert_eq!(esc(br"\0"), b"\0");
        assert_eq!(esc(br"\01"), b"\x01");
        assert_eq!(esc(br"\012"), b"\n");
        assert_eq!(esc(br"\"), b"\\");
        assert_eq!(esc(b"\\\\\0"), b"\\\0");
        assert_eq!(esc(br"\X41\u0041"), b"Au0041");
    }

    #[test]
    fn css_decode_cases() {
        assert_eq!(css(b""), b"");
        assert_eq!(
            css(b"test\\a\\b\\f\\n\\r\\t\\v\\?\\'\\\"\\12\\123\\1234\\12345\\123456\\ff01\\ff5e\\\n  string"),
            b"test\n\x0b\x0fnrtv?'\"\x12#4EV!~  string"
        );
        assert_eq!(css(b"test\\"), b"test");
        assert_eq!(
            css(b"\\1A\\1 A\\1234567\\123456 7\\1x\\1 x"),
            b"\x1a\x01AV7V7\x01x\x01x"
        );
        // Full width only for FFxx, 0FFxx and 00FFxx.
        assert_eq!(css(b"\\0ff3c\\00ff3c\\1ff3c\\ff3c"), b"\\\\<\\");
        assert_eq!(css(b"\\0FF5E \\ff5f"), b"~_");
        assert_eq!(css(b"\\3c script"), b"<script");
        assert_eq!(css(b"\\3c\tscript"), b"<script");
    }

    #[test]
    fn css_decode_stops_at_the_first_nul() {
        assert_eq!(css(b"Test\0Case"), b"Test");
        assert_eq!(css(b"a\\0z"), b"a");
        assert_eq!(css(b"a\\\0b"), b"a");
        assert_eq!(css(b"\0"), b"");
        assert_eq!(css(b"a\\3c\0\\3c"), b"a<");
    }
}
