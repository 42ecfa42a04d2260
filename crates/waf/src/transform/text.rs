//! Byte-level text transformations: case, NULs, whitespace, trimming, `cmdLine` and parity.

use super::{is_c_space, prefix};

/// `lowercase`: ASCII only, as `std::tolower` in the C locale.
pub(super) fn lowercase(input: &[u8]) -> Option<Vec<u8>> {
    input
        .iter()
        .any(u8::is_ascii_uppercase)
        .then(|| input.to_ascii_lowercase())
}

/// `uppercase`: ASCII only.
pub(super) fn uppercase(input: &[u8]) -> Option<Vec<u8>> {
    input
        .iter()
        .any(u8::is_ascii_lowercase)
        .then(|| input.to_ascii_uppercase())
}

/// Removes every byte for which `drop` holds, copying only if there is one.
fn remove_bytes(input: &[u8], drop: impl Fn(u8) -> bool) -> Option<Vec<u8>> {
    let start = input.iter().position(|&c| drop(c))?;
    let mut out = prefix(input, start);
    out.extend(input[start..].iter().copied().filter(|&c| !drop(c)));
    Some(out)
}

/// `removeNulls`.
pub(super) fn remove_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr::memchr(0, input)?;
    remove_bytes(input, |c| c == 0)
}

/// `replaceNulls`: each NUL becomes a space.
pub(super) fn replace_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr::memchr(0, input)?;
    Some(
        input
            .iter()
            .map(|&c| if c == 0 { b' ' } else { c })
            .collect(),
    )
}

/// `removeWhitespace`: C-locale whitespace plus 0xA0 and 0xC2, so that both a Latin-1 NBSP and
/// the two bytes of a UTF-8 NBSP go, as in libmodsecurity 3 (which thus also eats the 0xC2
/// lead byte of other UTF-8 characters).
pub(super) fn remove_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    remove_bytes(input, |c| is_c_space(c) || c == 0xa0 || c == 0xc2)
}

/// `compressWhitespace`: each run of C-locale whitespace becomes one space. Unlike
/// ModSecurity 2, libmodsecurity 3 does not count NBSP (0xA0) as whitespace here.
pub(super) fn compress_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    // The first byte that changes: a whitespace byte other than a space, or a second one in a row.
    let start = input
        .iter()
        .enumerate()
        .position(|(i, &c)| is_c_space(c) && (c != b' ' || (i > 0 && is_c_space(input[i - 1]))))?;
    let mut out = prefix(input, start);
    let mut in_space = start > 0 && is_c_space(input[start - 1]);
    for &c in &input[start..] {
        if !is_c_space(c) {
            out.push(c);
            in_space = false;
        } else if !in_space {
            out.push(b' ');
            in_space = true;
        }
    }
    Some(out)
}

/// `trim`, `trimLeft` and `trimRight`: C-locale whitespace off either end.
pub(super) fn trim(input: &[u8], left: bool, right: bool) -> &[u8] {
    let mut s = input;
    if left {
        let n = s.iter().take_while(|&&c| is_c_space(c)).count();
        s = &s[n..];
    }
    if right {
        let n = s.iter().rev().take_while(|&&c| is_c_space(c)).count();
        s = &s[..s.len() - n];
    }
    s
}

/// `cmdLine`, as libmodsecurity 3 does it: deletes `\ " ' ^`; turns each run of space, tab, CR,
/// LF, `,` and `;` into one space; deletes a space before `/` or `(`; lowercases ASCII.
pub(super) fn cmd_line(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut space = false;
    for &c in input {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                space = false;
            }
        }
    }
    Some(out)
}

/// Which `parity*7bit` transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parity {
    Even,
    Odd,
    Zero,
}

/// `parityEven7bit`, `parityOdd7bit` and `parityZero7bit`. As in libmodsecurity, the parity is
/// computed over all eight bits of the input byte, bit 7 included.
pub(super) fn parity(input: &[u8], kind: Parity) -> Option<Vec<u8>> {
    let map = |c: u8| {
        let odd = c.count_ones() % 2 == 1;
        let set_high = match kind {
            Parity::Even => odd,
            Parity::Odd => !odd,
            Parity::Zero => false,
        };
        if set_high { c | 0x80 } else { c & 0x7f }
    };
    input
        .iter()
        .any(|&c| map(c) != c)
        .then(|| input.iter().map(|&c| map(c)).collect())
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;
    use std::borrow::Cow;

    fn t(tf: Transform, input: &[u8]) -> Vec<u8> {
        tf.apply(input).into_owned()
    }

    #[test]
    fn case() {
        assert_eq!(t(Transform::Lowercase, b"TestCase"), b"testcase");
        assert_eq!(
            t(Transform::Lowercase, b"Test\0Case\xc4\xb0"),
            b"test\0case\xc4\xb0"
        );
        assert!(matches!(
            Transform::Lowercase.apply(b"test\0case"),
            Cow::Borrowed(_)
        ));
        assert_eq!(t(Transform::Uppercase, b"TestCase\xe9"), b"TESTCASE\xe9");
    }

    #[test]
    fn nulls() {
        assert_eq!(t(Transform::RemoveNulls, b"\0Test\0\0Case\0"), b"TestCase");
        assert_eq!(t(Transform::RemoveNulls, b"Test\x01Case"), b"Test\x01Case");
        assert_eq!(
            t(Transform::ReplaceNulls, b"\0Test\0\0Case\0"),
            b" Test  Case "
        );
    }

    #[test]
    fn whitespace() {
        assert_eq!(
            t(Transform::CompressWhitespace, b"  Test  \t   Case  "),
            b" Test Case "
        );
        assert_eq!(
            t(
                Transform::CompressWhitespace,
                b"a tab \t, vtab \x0b, nl \n, cr \r, ff \x0c, NUL\0 CRLF\r\n"
            ),
            b"a tab , vtab , nl , cr , ff , NUL\0 CRLF "
        );
        assert_eq!(
            t(Transform::CompressWhitespace, b"a\xa0\xa0b"),
            b"a\xa0\xa0b"
        );
        assert_eq!(t(Transform::CompressWhitespace, b"a\tb"), b"a b");
        assert_eq!(
            t(
                Transform::RemoveWhitespace,
                b"  Test  \t   Case \x0b\x0c\r\n"
            ),
            b"TestCase"
        );
        assert_eq!(t(Transform::RemoveWhitespace, b"a\xc2\xa0b\0"), b"ab\0");
        // The 0xC2 lead byte of any UTF-8 character goes too.
        assert_eq!(
            t(Transform::RemoveWhitespace, "¡é".as_bytes()),
            b"\xa1\xc3\xa9"
        );
    }

    #[test]
    fn trims() {
        let s = b" \t   Test \0 Case \t  \t   \r\n  ";
        assert_eq!(t(Transform::Trim, s), b"Test \0 Case");
        assert_eq!(t(Transform::TrimLeft, s), b"Test \0 Case \t  \t   \r\n  ");
        assert_eq!(t(Transform::TrimRight, s), b" \t   Test \0 Case");
        assert_eq!(t(Transform::Trim, b"   "), b"");
        assert_eq!(t(Transform::Trim, b"\xa0x\xa0"), b"\xa0x\xa0");
    }

    #[test]
    fn cmd_line() {
        let c = |s: &[u8]| t(Transform::CmdLine, s);
        assert_eq!(c(b""), b"");
        assert_eq!(c(b"test"), b"test");
        assert_eq!(c(b"C^OMMAND /C DIR"), b"command/c dir");
        assert_eq!(c(b"C^oMMaNd /C DiR"), b"command/c dir");
        assert_eq!(c(b"cmd,/c DiR"), b"cmd/c dir");
        assert_eq!(c(b"\"command\" /c DiR"), b"command/c dir");
        assert_eq!(c(b"  ls ;; -la\t\r\n"), b" ls -la ");
        assert_eq!(c(b"echo \"\" (x)"), b"echo(x)");
        assert_eq!(c(b"w'h'o\\a^m^i"), b"whoami");
        assert_eq!(c(b"a\x0bb\x0cc"), b"a\x0bb\x0cc");
    }

    #[test]
    fn parity() {
        assert_eq!(
            t(Transform::ParityEven7bit, b"abc012ABC\0"),
            b"\xe1\xe2c0\xb1\xb2AB\xc3\0"
        );
        assert_eq!(
            t(Transform::ParityOdd7bit, b"abc012ABC\0"),
            b"ab\xe3\xb012\xc1\xc2C\x80"
        );
        assert_eq!(
            t(Transform::ParityZero7bit, b"\x80\0\x8f\xff"),
            b"\0\0\x0f\x7f"
        );
        assert!(matches!(
            Transform::ParityEven7bit.apply(b"cefijlo"),
            Cow::Borrowed(_)
        ));
    }
}
