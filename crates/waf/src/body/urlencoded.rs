//! Query strings and `application/x-www-form-urlencoded` bodies.
//!
//! libmodsecurity 3 (`Transaction::extractArguments`) splits the input with
//! `std::getline` on the separator, which keeps empty pieces in the middle but drops a
//! single trailing empty piece; each piece is split at its first `=` and both halves go
//! through the non-strict URL decoder (`+` → space, invalid `%` sequences kept verbatim).

use super::Arg;

/// Arguments of a query string or form body, with the `URLENCODED_ERROR` flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlEncoded {
    /// Arguments in input order (names and values decoded).
    pub args: Vec<Arg>,
    /// A `%` not followed by two hex digits was seen (`URLENCODED_ERROR`).
    pub invalid_encoding: bool,
}

/// Splits a query string or form body on `sep` and each piece at its first `=`, URL-decoding
/// names and values as libmodsecurity 3 does.
///
/// Empty pieces in the middle (`a=1&&b=2`) yield an argument with an empty name and value,
/// exactly as ModSecurity's `getline` split does; one trailing separator adds nothing.
pub fn parse_urlencoded(input: &[u8], sep: u8) -> Vec<Arg> {
    parse_urlencoded_checked(input, sep).args
}

/// Like [`parse_urlencoded`], also reporting invalid `%` encodings (`URLENCODED_ERROR`).
pub fn parse_urlencoded_checked(input: &[u8], sep: u8) -> UrlEncoded {
    let mut out = UrlEncoded::default();
    for piece in getline_split(input, sep) {
        let (name, value) = match memchr::memchr(b'=', piece) {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        let (name, bad_name) = url_decode_nonstrict(name);
        let (value, bad_value) = url_decode_nonstrict(value);
        out.invalid_encoding |= bad_name || bad_value;
        out.args.push(Arg { name, value });
    }
    out
}

/// Splits like repeated `std::getline(stream, tok, sep)`: pieces between separators, where
/// the piece after a final separator (always empty) is not produced.
pub(crate) fn getline_split(input: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(input);
    std::iter::from_fn(move || {
        let cur = rest?;
        if cur.is_empty() {
            rest = None;
            return None;
        }
        match memchr::memchr(sep, cur) {
            Some(i) => {
                rest = Some(&cur[i + 1..]);
                Some(&cur[..i])
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

/// Non-strict URL decoding (`urldecode_nonstrict_inplace`): `%XX` with two hex digits becomes
/// the byte, `+` becomes a space, anything else is copied. Returns the decoded bytes and
/// whether an invalid `%` sequence was seen.
pub fn url_decode_nonstrict(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len());
    let mut invalid = false;
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_value);
            let lo = input.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            invalid = true;
            out.push(c);
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    (out, invalid)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_urlencoded(input.as_bytes(), b'&')
            .into_iter()
            .map(|a| {
                (
                    String::from_utf8_lossy(&a.name).into_owned(),
                    String::from_utf8_lossy(&a.value).into_owned(),
                )
            })
            .collect()
    }

    fn p(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn basic_pairs_and_decoding() {
        assert_eq!(pairs("a=1&b=x+y%21"), vec![p("a", "1"), p("b", "x y!")]);
        assert_eq!(pairs("na%6De=v%3d1"), vec![p("name", "v=1")]);
        assert_eq!(pairs("a=b=c"), vec![p("a", "b=c")]);
    }

    #[test]
    fn pieces_without_equals_and_empty_pieces() {
        assert_eq!(pairs("flag"), vec![p("flag", "")]);
        assert_eq!(pairs("a=1&&b=2"), vec![p("a", "1"), p("", ""), p("b", "2")]);
        assert_eq!(pairs("&a=1"), vec![p("", ""), p("a", "1")]);
        assert_eq!(pairs("a=1&"), vec![p("a", "1")]);
        assert_eq!(pairs("a=1&&"), vec![p("a", "1"), p("", "")]);
        assert_eq!(pairs("=v"), vec![p("", "v")]);
        assert_eq!(pairs("k="), vec![p("k", "")]);
        assert!(pairs("").is_empty());
        assert_eq!(pairs("&"), vec![p("", "")]);
    }

    #[test]
    fn invalid_percent_sequences_are_kept_and_flagged() {
        let r = parse_urlencoded_checked(b"a=%zz&b=%4&c=%", b'&');
        let vals: Vec<&[u8]> = r.args.iter().map(|a| a.value.as_slice()).collect();
        assert_eq!(vals, vec![&b"%zz"[..], b"%4", b"%"]);
        assert!(r.invalid_encoding);
        assert!(!parse_urlencoded_checked(b"a=%41", b'&').invalid_encoding);
        assert!(parse_urlencoded_checked(b"%g=1", b'&').invalid_encoding);
    }

    #[test]
    fn custom_separator() {
        assert_eq!(
            parse_urlencoded(b"a=1;b=2&c", b';'),
            vec![Arg::new("a", "1"), Arg::new("b", "2&c")]
        );
    }

    #[test]
    fn decodes_to_raw_bytes() {
        let args = parse_urlencoded(b"x=%00%ff%C3%A9", b'&');
        assert_eq!(args[0].value, vec![0, 0xff, 0xc3, 0xa9]);
    }

    fn encode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                out.push(b);
            } else if b == b' ' {
                out.push(b'+');
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
        out
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..256), sep in any::<u8>()) {
            let _ = parse_urlencoded_checked(&input, sep);
        }

        #[test]
        fn round_trips_with_an_encoder(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..12)),
                1..8,
            )
        ) {
            let mut body = Vec::new();
            for (i, (n, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    body.push(b'&');
                }
                body.extend(encode(n));
                body.push(b'=');
                body.extend(encode(v));
            }
            let parsed = parse_urlencoded_checked(&body, b'&');
            prop_assert!(!parsed.invalid_encoding);
            let expected: Vec<Arg> = pairs.into_iter().map(|(n, v)| Arg { name: n, value: v }).collect();
            prop_assert_eq!(parsed.args, expected);
        }

        #[test]
        fn decoder_is_identity_without_specials(input in "[A-Za-z0-9=._~-]{0,40}") {
            let (out, bad) = url_decode_nonstrict(input.as_bytes());
            prop_assert_eq!(out, input.as_bytes().to_vec());
            prop_assert!(!bad);
        }
    }
}
