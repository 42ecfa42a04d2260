//! SecLang transformations (`t:lowercase`, `t:urlDecodeUni`, …).
//!
//! Every transformation reproduces libmodsecurity 3.0.9 byte for byte, quirks included, because
//! the CRS regression tests and the differential reference were tuned against that engine. Where
//! a quirk is reproduced on purpose, the code says so ("as libmodsecurity 3 does, …").

use std::borrow::Cow;

// Each submodule's functions return `None` when a cheap scan shows the input cannot change, and
// the new value otherwise; `apply` still compares that value with the input, so a decoder that
// found nothing to decode does not cost the engine a copy.
mod codec;
mod comments;
mod escape;
mod html;
mod path;
mod text;
mod unicode;
mod url;

#[cfg(test)]
mod proptests;

/// One SecLang transformation (`t:name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// `base64Decode`: strict RFC 4648 decoding; any invalid input decodes to nothing.
    Base64Decode,
    /// `base64DecodeExt`: forgiving decoding that skips characters outside the alphabet.
    Base64DecodeExt,
    /// `base64Encode`: standard padded base64.
    Base64Encode,
    /// `cmdLine`: normalises a shell command line (quotes and carets removed, lowercased, …).
    CmdLine,
    /// `compressWhitespace`: every run of whitespace becomes one space.
    CompressWhitespace,
    /// `cssDecode`: CSS 2 backslash escapes.
    CssDecode,
    /// `escapeSeqDecode`: ANSI C escape sequences.
    EscapeSeqDecode,
    /// `hexDecode`: pairs of hex digits to bytes.
    HexDecode,
    /// `hexEncode`: bytes to lowercase hex digits.
    HexEncode,
    /// `htmlEntityDecode`: HTML character references.
    HtmlEntityDecode,
    /// `jsDecode`: JavaScript escape sequences.
    JsDecode,
    /// `length`: the decimal byte length of the input.
    Length,
    /// `lowercase`: ASCII lowercase.
    Lowercase,
    /// `md5`: the raw 16-byte MD5 digest.
    Md5,
    /// `normalizePath` (also `normalisePath`): removes `./`, resolves `../`, collapses `//`.
    NormalizePath,
    /// `normalizePathWin` (also `normalisePathWin`): `normalizePath` after turning `\` into `/`.
    NormalizePathWin,
    /// `parityEven7bit`: sets bit 7 so that every byte has even parity.
    ParityEven7bit,
    /// `parityOdd7bit`: sets bit 7 so that every byte has odd parity.
    ParityOdd7bit,
    /// `parityZero7bit`: clears bit 7 of every byte.
    ParityZero7bit,
    /// `removeComments`: removes C, HTML and SQL comments.
    RemoveComments,
    /// `removeCommentsChar`: removes comment delimiters (`/*`, `*/`, `<!--`, `-->`, `--`, `#`).
    RemoveCommentsChar,
    /// `removeNulls`: removes NUL bytes.
    RemoveNulls,
    /// `removeWhitespace`: removes whitespace, including the bytes of a UTF-8 NBSP.
    RemoveWhitespace,
    /// `replaceComments`: every C comment becomes one space.
    ReplaceComments,
    /// `replaceNulls`: NUL bytes become spaces.
    ReplaceNulls,
    /// `sha1`: the raw 20-byte SHA-1 digest.
    Sha1,
    /// `sqlHexDecode`: decodes SQL hex literals (`0x414243` → `ABC`).
    SqlHexDecode,
    /// `trim`: removes leading and trailing whitespace.
    Trim,
    /// `trimLeft`: removes leading whitespace.
    TrimLeft,
    /// `trimRight`: removes trailing whitespace.
    TrimRight,
    /// `uppercase`: ASCII uppercase.
    Uppercase,
    /// `urlDecode`: `%HH` and `+` decoding.
    UrlDecode,
    /// `urlDecodeUni`: `urlDecode` plus IIS `%uHHHH`.
    UrlDecodeUni,
    /// `urlEncode`: form-style percent encoding.
    UrlEncode,
    /// `utf8toUnicode`: multibyte UTF-8 sequences become `%uHHHH`.
    Utf8ToUnicode,
}

/// Canonical names, in the order of [`Transform::ALL`].
const NAMES: [(Transform, &str); 35] = [
    (Transform::Base64Decode, "base64Decode"),
    (Transform::Base64DecodeExt, "base64DecodeExt"),
    (Transform::Base64Encode, "base64Encode"),
    (Transform::CmdLine, "cmdLine"),
    (Transform::CompressWhitespace, "compressWhitespace"),
    (Transform::CssDecode, "cssDecode"),
    (Transform::EscapeSeqDecode, "escapeSeqDecode"),
    (Transform::HexDecode, "hexDecode"),
    (Transform::HexEncode, "hexEncode"),
    (Transform::HtmlEntityDecode, "htmlEntityDecode"),
    (Transform::JsDecode, "jsDecode"),
    (Transform::Length, "length"),
    (Transform::Lowercase, "lowercase"),
    (Transform::Md5, "md5"),
    (Transform::NormalizePath, "normalizePath"),
    (Transform::NormalizePathWin, "normalizePathWin"),
    (Transform::ParityEven7bit, "parityEven7bit"),
    (Transform::ParityOdd7bit, "parityOdd7bit"),
    (Transform::ParityZero7bit, "parityZero7bit"),
    (Transform::RemoveComments, "removeComments"),
    (Transform::RemoveCommentsChar, "removeCommentsChar"),
    (Transform::RemoveNulls, "removeNulls"),
    (Transform::RemoveWhitespace, "removeWhitespace"),
    (Transform::ReplaceComments, "replaceComments"),
    (Transform::ReplaceNulls, "replaceNulls"),
    (Transform::Sha1, "sha1"),
    (Transform::SqlHexDecode, "sqlHexDecode"),
    (Transform::Trim, "trim"),
    (Transform::TrimLeft, "trimLeft"),
    (Transform::TrimRight, "trimRight"),
    (Transform::Uppercase, "uppercase"),
    (Transform::UrlDecode, "urlDecode"),
    (Transform::UrlDecodeUni, "urlDecodeUni"),
    (Transform::UrlEncode, "urlEncode"),
    (Transform::Utf8ToUnicode, "utf8toUnicode"),
];

/// British spellings that libmodsecurity 3 accepts as well.
const ALIASES: [(Transform, &str); 2] = [
    (Transform::NormalizePath, "normalisePath"),
    (Transform::NormalizePathWin, "normalisePathWin"),
];

impl Transform {
    /// Every transformation, once each.
    pub const ALL: [Transform; 35] = {
        let mut all = [Transform::Base64Decode; 35];
        let mut i = 0;
        while i < NAMES.len() {
            all[i] = NAMES[i].0;
            i += 1;
        }
        all
    };

    /// Looks a transformation up by its SecLang name, case-insensitively (`t:base64decode` and
    /// `t:base64Decode` are the same). `none` is NOT a transformation here (the engine handles it): return None.
    pub fn from_name(name: &str) -> Option<Transform> {
        NAMES
            .iter()
            .chain(ALIASES.iter())
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(t, _)| t)
    }

    /// The canonical SecLang name (`urlDecodeUni`).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("", |&(_, n)| n)
    }

    /// Applies the transformation; returns `Cow::Borrowed(input)` when nothing changes (the engine relies on that to skip copies).
    pub fn apply(self, input: &[u8]) -> Cow<'_, [u8]> {
        let out = match self {
            Transform::Base64Decode => codec::base64_decode(input),
            Transform::Base64DecodeExt => codec::base64_decode_ext(input),
            Transform::Base64Encode => codec::base64_encode(input),
            Transform::CmdLine => text::cmd_line(input),
            Transform::CompressWhitespace => text::compress_whitespace(input),
            Transform::CssDecode => escape::css_decode(input),
            Transform::EscapeSeqDecode => escape::escape_seq_decode(input),
            Transform::HexDecode => codec::hex_decode(input),
            Transform::HexEncode => codec::hex_encode(input),
            Transform::HtmlEntityDecode => html::html_entity_decode(input),
            Transform::JsDecode => escape::js_decode(input),
            Transform::Length => Some(input.len().to_string().into_bytes()),
            Transform::Lowercase => text::lowercase(input),
            Transform::Md5 => Some(md5::compute(input).0.to_vec()),
            Transform::NormalizePath => path::normalize_path(input, false),
            Transform::NormalizePathWin => path::normalize_path(input, true),
            Transform::ParityEven7bit => text::parity(input, text::Parity::Even),
            Transform::ParityOdd7bit => text::parity(input, text::Parity::Odd),
            Transform::ParityZero7bit => text::parity(input, text::Parity::Zero),
            Transform::RemoveComments => comments::remove_comments(input),
            Transform::RemoveCommentsChar => comments::remove_comments_char(input),
            Transform::RemoveNulls => text::remove_nulls(input),
            Transform::RemoveWhitespace => text::remove_whitespace(input),
            Transform::ReplaceComments => comments::replace_comments(input),
            Transform::ReplaceNulls => text::replace_nulls(input),
            Transform::Sha1 => Some(sha1_smol::Sha1::from(input).digest().bytes().to_vec()),
            Transform::SqlHexDecode => codec::sql_hex_decode(input),
            Transform::Trim => sub_slice(input, text::trim(input, true, true)),
            Transform::TrimLeft => sub_slice(input, text::trim(input, true, false)),
            Transform::TrimRight => sub_slice(input, text::trim(input, false, true)),
            Transform::Uppercase => text::uppercase(input),
            Transform::UrlDecode => url::url_decode(input),
            Transform::UrlDecodeUni => url::url_decode_uni(input),
            Transform::UrlEncode => url::url_encode(input),
            Transform::Utf8ToUnicode => unicode::utf8_to_unicode(input),
        };
        match out {
            Some(out) if out != input => Cow::Owned(out),
            _ => Cow::Borrowed(input),
        }
    }
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An owned copy of `part`, a sub-slice of `input`, if it is shorter than `input`.
fn sub_slice(input: &[u8], part: &[u8]) -> Option<Vec<u8>> {
    (part.len() != input.len()).then(|| part.to_vec())
}

/// `VALID_HEX` of libmodsecurity: an ASCII hex digit.
fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// `ISODIGIT` of libmodsecurity: an octal digit.
fn is_octal(c: u8) -> bool {
    (b'0'..=b'7').contains(&c)
}

/// `isspace` in the C locale, which is the locale libmodsecurity runs its transformations in:
/// NBSP (0xA0) is not whitespace there.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The value of one hex digit with libmodsecurity's arithmetic (`xsingle2c`); callers check the
/// digit first, except `hexDecode`, which (like libmodsecurity) decodes any byte pair.
fn hex_digit(c: u8) -> u8 {
    if c >= b'A' {
        (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
    } else {
        c.wrapping_sub(b'0')
    }
}

/// Two hex digits to one byte (`x2c`).
fn x2c(hi: u8, lo: u8) -> u8 {
    hex_digit(hi).wrapping_mul(16).wrapping_add(hex_digit(lo))
}

/// Lowercase hex digits.
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `%HH` (lowercase) for `b`.
fn push_percent_hex(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'%',
        HEX_LOWER[usize::from(b >> 4)],
        HEX_LOWER[usize::from(b & 15)],
    ]);
}

/// A fresh output buffer holding `input[..at]`, sized for an output about as long as the input.
fn prefix(input: &[u8], at: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..at]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_insensitive() {
        for t in Transform::ALL {
            assert_eq!(Transform::from_name(t.name()), Some(t), "{t}");
            assert_eq!(
                Transform::from_name(&t.name().to_ascii_uppercase()),
                Some(t)
            );
            assert_eq!(
                Transform::from_name(&t.name().to_ascii_lowercase()),
                Some(t)
            );
        }
        let mut names: Vec<_> = Transform::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Transform::ALL.len());
    }

    #[test]
    fn lookup_quirks() {
        assert_eq!(Transform::from_name("none"), None);
        assert_eq!(Transform::from_name("None"), None);
        assert_eq!(Transform::from_name(""), None);
        assert_eq!(Transform::from_name("alert"), None);
        assert_eq!(
            Transform::from_name("base64decode"),
            Some(Transform::Base64Decode)
        );
        assert_eq!(
            Transform::from_name("normalisePath"),
            Some(Transform::NormalizePath)
        );
        assert_eq!(
            Transform::from_name("normalisepathwin"),
            Some(Transform::NormalizePathWin)
        );
        assert_eq!(
            Transform::from_name("UTF8TOUNICODE"),
            Some(Transform::Utf8ToUnicode)
        );
        assert_eq!(Transform::NormalizePath.name(), "normalizePath");
    }

    #[test]
    fn crs_uses_only_known_transformations() {
        let used = [
            "lowercase",
            "urlDecodeUni",
            "jsDecode",
            "htmlEntityDecode",
            "utf8toUnicode",
            "removeNulls",
            "cssDecode",
            "cmdLine",
            "removeWhitespace",
            "replaceComments",
            "normalizePath",
            "escapeSeqDecode",
            "compressWhitespace",
            "normalizePathWin",
            "length",
            "base64Decode",
            "sha1",
            "hexEncode",
            "removeCommentsChar",
            "base64decode",
        ];
        for name in used {
            assert!(Transform::from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn x2c_matches_reference_arithmetic() {
        assert_eq!(x2c(b'4', b'1'), 0x41);
        assert_eq!(x2c(b'f', b'F'), 0xff);
        assert_eq!(x2c(b'a', b'0'), 0xa0);
        // hexDecode feeds non-hex bytes through the same arithmetic.
        assert_eq!(x2c(b'0', b'z'), 0x23);
    }

    #[test]
    fn length_md5_sha1() {
        assert_eq!(&*Transform::Length.apply(b""), b"0");
        assert_eq!(&*Transform::Length.apply(b"0123456789\tabcdef"), b"17");
        assert_eq!(&*Transform::Length.apply(b"Test\0Case"), b"9");
        assert!(matches!(Transform::Length.apply(b"1"), Cow::Borrowed(_)));
        let md5 = Transform::Md5.apply(b"");
        assert_eq!(
            &*Transform::HexEncode.apply(&md5),
            b"d41d8cd98f00b204e9800998ecf8427e"
        );
        let md5 = Transform::Md5.apply(b"TestCase");
        assert_eq!(
            &*Transform::HexEncode.apply(&md5),
            b"c9aba2c3e60126169e80e9a26ba273c1"
        );
        let sha = Transform::Sha1.apply(b"");
        assert_eq!(sha.len(), 20);
        assert_eq!(
            &*Transform::HexEncode.apply(&sha),
            b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        let sha = Transform::Sha1.apply(b"TestCase");
        assert_eq!(
            &*Transform::HexEncode.apply(&sha),
            b"a70ce38389e318bd2be18a0111c6dc76bd2cd9ed"
        );
        let sha = Transform::Sha1.apply(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08");
        assert_eq!(
            &*Transform::HexEncode.apply(&sha),
            b"63bf60c7105a07a2b125bbf89e61abdabc6978c2"
        );
    }
}
