//! Property tests over all transformations.

use std::borrow::Cow;

use proptest::prelude::*;

use super::Transform;

/// Arbitrary bytes, biased towards the bytes the decoders treat specially.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let special = prop::sample::select(
        b"%uU+&#;xX\\/.*-<!>=0123456789aAfFzZ \t\r\n\x0b\x0c\0\xa0\xc2\xc3\xe2\xf0\xf5\x80\xbf\"'^,()"
            .to_vec(),
    );
    prop::collection::vec(prop_oneof![any::<u8>(), special], 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_borrows_exactly_when_unchanged(input in bytes()) {
        for t in Transform::ALL {
            let out = t.apply(&input);
            match &out {
                Cow::Borrowed(b) => {
                    prop_assert_eq!(*b, &input[..], "{} borrowed something else", t);
                    prop_assert!(std::ptr::eq(*b, &input[..]), "{} borrowed a sub-slice", t);
                }
                Cow::Owned(o) => prop_assert_ne!(o, &input, "{} copied an unchanged value", t),
            }
        }
    }

    #[test]
    fn idempotent_ones(input in bytes()) {
        for t in [
            Transform::Lowercase,
            Transform::Uppercase,
            Transform::RemoveNulls,
            Transform::ReplaceNulls,
            Transform::CompressWhitespace,
            Transform::RemoveWhitespace,
            Transform::Trim,
            Transform::TrimLeft,
            Transform::TrimRight,
            Transform::ParityZero7bit,
            Transform::CmdLine,
        ] {
            let once = t.apply(&input).into_owned();
            let twice = t.apply(&once);
            prop_assert_eq!(&*twice, &once[..], "{} is not idempotent", t);
        }
    }

    #[test]
    fn url_encode_round_trips(input in bytes()) {
        let encoded = Transform::UrlEncode.apply(&input).into_owned();
        prop_assert!(encoded.iter().all(|c| c.is_ascii_alphanumeric() || b"*%+".contains(c)));
        prop_assert_eq!(&*Transform::UrlDecode.apply(&encoded), &input[..]);
        prop_assert_eq!(&*Transform::UrlDecodeUni.apply(&encoded), &input[..]);
    }

    #[test]
    fn hex_and_base64_round_trip(input in bytes()) {
        let hex = Transform::HexEncode.apply(&input).into_owned();
        prop_assert_eq!(&*Transform::HexDecode.apply(&hex), &input[..]);
        let b64 = Transform::Base64Encode.apply(&input).into_owned();
        prop_assert_eq!(&*Transform::Base64Decode.apply(&b64), &input[..]);
        prop_assert_eq!(&*Transform::Base64DecodeExt.apply(&b64), &input[..]);
    }

    #[test]
    fn decoders_never_grow_their_input(input in bytes()) {
        for t in [
            Transform::UrlDecode,
            Transform::UrlDecodeUni,
            Transform::HtmlEntityDecode,
            Transform::JsDecode,
            Transform::CssDecode,
            Transform::EscapeSeqDecode,
            Transform::NormalizePath,
            Transform::NormalizePathWin,
            Transform::ReplaceComments,
            Transform::RemoveCommentsChar,
            Transform::SqlHexDecode,
            Transform::HexDecode,
            Transform::Base64Decode,
            Transform::Base64DecodeExt,
        ] {
            prop_assert!(t.apply(&input).len() <= input.len(), "{} grew its input", t);
        }
    }

    #[test]
    fn length_is_the_byte_count(input in bytes()) {
        let len = Transform::Length.apply(&input);
        let want = input.len().to_string();
        prop_assert_eq!(&*len, want.as_bytes());
    }

    #[test]
    fn url_decode_agrees_with_a_simple_model(input in bytes()) {
        prop_assert_eq!(&*Transform::UrlDecode.apply(&input), &model_url_decode(&input)[..]);
    }

    #[test]
    fn utf8_to_unicode_on_valid_utf8(s in "\\PC{0,16}") {
        let out = Transform::Utf8ToUnicode.apply(s.as_bytes()).into_owned();
        let model: String = s
            .chars()
            .filter(|&c| c != '\0')
            .map(|c| if c.is_ascii() { c.to_string() } else { format!("%u{:04x}", u32::from(c)) })
            .collect();
        prop_assert_eq!(out, model.into_bytes());
    }

    #[test]
    fn normalized_paths_are_stable(input in bytes()) {
        for t in [Transform::NormalizePath, Transform::NormalizePathWin] {
            let once = t.apply(&input).into_owned();
            prop_assert!(!once.windows(2).any(|w| w == b"//"), "{} left // in {:?}", t, once);
        }
    }
}

/// A straightforward percent decoder to compare against.
fn model_url_decode(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let pair = input
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(input.get(i + 2).copied().and_then(hex));
        match (input[i], pair) {
            (b'%', Some((hi, lo))) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
