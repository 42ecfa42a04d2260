//! `@validateByteRange`, `@validateUrlEncoding` and `@validateUtf8Encoding`: each matches
//! when the value is *invalid*.

/// The set of allowed bytes of a `@validateByteRange` operator.
#[derive(Debug)]
pub(super) struct ByteRanges {
    allowed: [bool; 256],
}

impl ByteRanges {
    /// Parses `32-36,38-126` style lists: comma-separated bytes and inclusive ranges.
    pub(super) fn parse(argument: &str) -> Result<ByteRanges, String> {
        let mut allowed = [false; 256];
        for part in argument.split(',') {
            let (start, end) = match part.split_once('-') {
                Some((a, b)) => (byte(a)?, byte(b)?),
                None => {
                    let b = byte(part)?;
                    (b, b)
                }
            };
            if start > end {
                return Err(format!(
                    "invalid range {:?}: start is above end",
                    part.trim()
                ));
            }
            for b in start..=end {
                allowed[usize::from(b)] = true;
            }
        }
        Ok(ByteRanges { allowed })
    }

    /// Whether some byte of `input` is outside the allowed ranges.
    pub(super) fn any_outside(&self, input: &[u8]) -> bool {
        input.iter().any(|b| !self.allowed[usize::from(*b)])
    }
}

/// One byte value (0–255) of a range list.
fn byte(text: &str) -> Result<u8, String> {
    text.trim()
        .parse::<u8>()
        .map_err(|_| format!("expected a byte value 0-255 in a range list, got {text:?}"))
}

/// libmodsecurity 3's URL-encoding check: every `%` must be followed by two hex digits.
/// An empty value is valid.
pub(super) fn invalid_url_encoding(input: &[u8]) -> bool {
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'%' {
            i += 1;
            continue;
        }
        match input.get(i + 1..i + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i += 3,
            _ => return true,
        }
    }
    false
}

/// libmodsecurity 3's UTF-8 check: truncated sequences, bad continuation bytes, overlong
/// forms, surrogates and lead bytes 0xF5.. are invalid. Unlike `std::str::from_utf8` it
/// accepts four-byte forms above U+10FFFF that start with 0xF4, as libmodsecurity does.
pub(super) fn invalid_utf8(input: &[u8]) -> bool {
    let mut i = 0;
    while i < input.len() {
        match utf8_char_len(&input[i..]) {
            Some(n) => i += n,
            None => return true,
        }
    }
    false
}

/// The length of the valid character at the start of `s` (non-empty), or `None`.
fn utf8_char_len(s: &[u8]) -> Option<usize> {
    let lead = *s.first()?;
    let (len, lead_bits, min) = match lead {
        0x00..=0x7f => return Some(1),
        0xc0..=0xdf => (2, u32::from(lead & 0x1f), 0x80),
        0xe0..=0xef => (3, u32::from(lead & 0x0f), 0x800),
        0xf0..=0xf4 => (4, u32::from(lead & 0x07), 0x1_0000),
        _ => return None,
    };
    let tail = s.get(1..len)?;
    if tail.iter().any(|b| b & 0xc0 != 0x80) {
        return None;
    }
    let code = tail
        .iter()
        .fold(lead_bits, |acc, b| acc << 6 | u32::from(b & 0x3f));
    let surrogate = (0xd800..=0xdfff).contains(&code);
    (!surrogate && code >= min).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(arg: &str) -> ByteRanges {
        match ByteRanges::parse(arg) {
            Ok(r) => r,
            Err(e) => panic!("{arg}: {e}"),
        }
    }

    #[test]
    fn byte_ranges() {
        let r = ranges("32-36,38-126");
        assert!(!r.any_outside(b"hello world"));
        assert!(r.any_outside(b"a%b"));
        assert!(r.any_outside(b"\x00"));
        assert!(r.any_outside(b"\x7f"));
        assert!(!r.any_outside(b""));
        let r = ranges("1-255");
        assert!(r.any_outside(b"a\x00"));
        assert!(!r.any_outside(b"\xff\x01"));
        let r = ranges("38,44-46,48-58,61,65-90,95,97-122");
        assert!(!r.any_outside(b"a=b&c"));
        assert!(r.any_outside(b"a b"));
        let r = ranges(" 9, 10 ,32-126");
        assert!(!r.any_outside(b"\t\n x"));
    }

    #[test]
    fn byte_range_errors() {
        for bad in ["", "256", "1-256", "-1", "5-3", "a-b", "1,,2", "1-2-3"] {
            assert!(ByteRanges::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_encoding() {
        assert!(!invalid_url_encoding(b""));
        assert!(!invalid_url_encoding(b"a%20b%aF"));
        assert!(!invalid_url_encoding(b"%41"));
        assert!(invalid_url_encoding(b"%4"));
        assert!(invalid_url_encoding(b"%"));
        assert!(invalid_url_encoding(b"abc%"));
        assert!(invalid_url_encoding(b"%zz"));
        assert!(invalid_url_encoding(b"%4g1"));
    }

    #[test]
    fn utf8_encoding() {
        assert!(!invalid_utf8(b""));
        assert!(!invalid_utf8("plain ascii, é, €, 𝄞".as_bytes()));
        // Truncated.
        assert!(invalid_utf8(b"\xc3"));
        assert!(invalid_utf8(b"\xe2\x82"));
        // Bad continuation.
        assert!(invalid_utf8(b"\xc3\x28"));
        // Lone continuation byte and invalid lead bytes.
        assert!(invalid_utf8(b"\x80"));
        assert!(invalid_utf8(b"\xf8\x88\x80\x80\x80"));
        assert!(invalid_utf8(b"\xf5\x80\x80\x80"));
        // Overlong.
        assert!(invalid_utf8(b"\xc0\xaf"));
        assert!(invalid_utf8(b"\xe0\x80\xaf"));
        assert!(invalid_utf8(b"\xf0\x80\x80\xaf"));
        // Surrogate.
        assert!(invalid_utf8(b"\xed\xa0\x80"));
        // Above U+10FFFF with lead 0xF4: accepted, as libmodsecurity does.
        assert!(!invalid_utf8(b"\xf4\x90\x80\x80"));
    }
}
