//! `htmlEntityDecode`.

use super::prefix;

/// `htmlEntityDecode`, as libmodsecurity 3.0.9 does it: `&#DDD;` and `&#xHH;` (the `;` is
/// optional) keep the low byte of the number (a number too large for a C `long` saturates, so
/// its low byte is 0xFF), and only the named entities `quot`, `amp`, `lt`, `gt` and `nbsp`
/// (case-insensitive, `;` optional) are known. Anything else is copied as it is.
pub(super) fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
    let start = memchr::memchr(b'&', input)?;
    let mut out = prefix(input, start);
    let mut i = start;
    while i < input.len() {
        if input[i] == b'&'
            && let Some((byte, used)) = entity(&input[i + 1..])
        {
            out.push(byte);
            i += 1 + used;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    Some(out)
}

/// Decodes the entity whose text (after `&`) starts `rest`; returns the byte and how many bytes
/// of `rest` it used, including the optional `;`.
fn entity(rest: &[u8]) -> Option<(u8, usize)> {
    let (byte, len) = match rest {
        [b'#', b'x' | b'X', digits @ ..] => {
            let n = run(digits, u8::is_ascii_hexdigit);
            (number(&digits[..n], 16)?, 2 + n)
        }
        [b'#', digits @ ..] => {
            let n = run(digits, u8::is_ascii_digit);
            (number(&digits[..n], 10)?, 1 + n)
        }
        _ => {
            let n = run(rest, u8::is_ascii_alphanumeric);
            (named(&rest[..n])?, n)
        }
    };
    let semicolon = usize::from(rest.get(len) == Some(&b';'));
    Some((byte, len + semicolon))
}

/// The length of the leading run of `s` whose bytes satisfy `pred`.
fn run(s: &[u8], pred: fn(&u8) -> bool) -> usize {
    s.iter().position(|c| !pred(c)).unwrap_or(s.len())
}

/// `(unsigned char) strtol(digits, NULL, radix)`: `None` without digits; a value past
/// `LONG_MAX` saturates there, like `strtol`.
fn number(digits: &[u8], radix: u32) -> Option<u8> {
    if digits.is_empty() {
        return None;
    }
    let value = digits.iter().fold(0i64, |acc, &c| {
        let digit = char::from(c).to_digit(radix).map_or(0, i64::from);
        acc.saturating_mul(i64::from(radix)).saturating_add(digit)
    });
    Some(value.to_le_bytes()[0])
}

/// The named entities libmodsecurity 3 knows.
fn named(name: &[u8]) -> Option<u8> {
    const NAMED: [(&[u8], u8); 5] = [
        (b"quot", b'"'),
        (b"amp", b'&'),
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"nbsp", 0xa0),
    ];
    NAMED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, b)| b)
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn html(input: &[u8]) -> Vec<u8> {
        Transform::HtmlEntityDecode.apply(input).into_owned()
    }

    #[test]
    fn plain_input_is_unchanged() {
        assert_eq!(html(b""), b"");
        assert_eq!(html(b"TestCase"), b"TestCase");
        assert_eq!(html(b"Test\0Case"), b"Test\0Case");
        assert_eq!(html(b"&"), b"&");
        assert_eq!(html(b"a & b"), b"a & b");
    }

    #[test]
    fn numeric_entities() {
        assert_eq!(
            html(b"&#x0;&#X0;&#x20;&#X20;&#0;&#32;\0&#100;"),
            b"\0\0\x20\x20\0\x20\0\x64"
        );
        assert_eq!(
            html(b"&#x0&#X0&#x20&#X20&#0&#32\0&#100"),
            b"\0\0\x20\x20\0\x20\0\x64"
        );
        // Only the low byte of a large number is kept.
        assert_eq!(html(b"&#x13c;&#316;&#x0003c"), b"<<<");
        // Past LONG_MAX strtol saturates to 0x7fff...ff.
        assert_eq!(html(b"&#99999999999999999999;"), b"\xff");
        assert_eq!(html(b"&#x10000000000000000;x"), b"\xffx");
    }

    #[test]
    fn invalid_numeric_entities_are_copied() {
        assert_eq!(
            html(b"&#xg;&#Xg;&#xg0;&#X2g;&#a;\0&#a2;&#3a&#a00;&#1a0;&#10a;&foo;"),
            b"&#xg;&#Xg;&#xg0;\x02g;&#a;\0&#a2;\x03a&#a00;\x01a0;\na;&foo;"
        );
        assert_eq!(html(b"&#"), b"&#");
        assert_eq!(html(b"&#x"), b"&#x");
        assert_eq!(html(b"&#;"), b"&#;");
    }

    #[test]
    fn named_entities() {
        assert_eq!(html(b"&quot;&amp;&lt;&gt;&nbsp;"), b"\"&<>\xa0");
        assert_eq!(html(b"&quot&amp&lt&gt&nbsp"), b"\"&<>\xa0");
        assert_eq!(html(b"&QUOT;&Lt;&GT"), b"\"<>");
        // Unknown names, and names that merely start with a known one, stay.
        assert_eq!(html(b"&apos;&copy;&ltx;&amp1"), b"&apos;&copy;&ltx;&amp1");
        // Decoding is not recursive.
        assert_eq!(html(b"&amp;lt;"), b"&lt;");
        assert_eq!(html(b"&lt;script&gt;"), b"<script>");
    }
}
