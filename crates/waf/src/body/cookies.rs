//! `Cookie` request header values (SecCookieFormat 0), as libmodsecurity 3 parses them in
//! `Transaction::addRequestHeader`.

use super::Arg;
use super::urlencoded::getline_split;

/// Parses one `Cookie` header value into cookies (`REQUEST_COOKIES` / `_NAMES`).
///
/// As libmodsecurity 3 does: the value is split on `;` (a trailing `;` adds nothing), trailing
/// whitespace is removed from the last piece only, every name is left-trimmed (never
/// right-trimmed), values are neither trimmed nor URL-decoded, a piece without `=` is a cookie
/// with an empty value, and pieces that are empty or whose trimmed name is empty are skipped.
pub fn parse_cookies(header_value: &[u8]) -> Vec<Arg> {
    let pieces: Vec<&[u8]> = getline_split(header_value, b';').collect();
    let last = pieces.len().saturating_sub(1);
    let mut out = Vec::new();
    for (i, mut piece) in pieces.into_iter().enumerate() {
        if i == last {
            while let [rest @ .., c] = piece {
                if !is_c_space(*c) {
                    break;
                }
                piece = rest;
            }
        }
        if piece.is_empty() {
            continue;
        }
        let (mut name, value) = match memchr::memchr(b'=', piece) {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        while let [c, rest @ ..] = name {
            if !is_c_space(*c) {
                break;
            }
            name = rest;
        }
        if name.is_empty() {
            continue;
        }
        out.push(Arg {
            name: name.to_vec(),
            value: value.to_vec(),
        });
    }
    out
}

/// C `isspace` in the "C" locale.
pub(crate) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cookies(v: &str) -> Vec<(String, String)> {
        parse_cookies(v.as_bytes())
            .into_iter()
            .map(|a| {
                (
                    String::from_utf8_lossy(&a.name).into_owned(),
                    String::from_utf8_lossy(&a.value).into_owned(),
                )
            })
            .collect()
    }

    fn c(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn typical_header() {
        assert_eq!(
            cookies("a=1; b=2;c=3"),
            vec![c("a", "1"), c("b", "2"), c("c", "3")]
        );
    }

    #[test]
    fn values_keep_equals_and_are_not_decoded() {
        assert_eq!(cookies("s=a=b%20c+d"), vec![c("s", "a=b%20c+d")]);
    }

    #[test]
    fn names_are_only_left_trimmed_values_not_trimmed() {
        assert_eq!(cookies(" a =  1 ;b=2"), vec![c("a ", "  1 "), c("b", "2")]);
    }

    #[test]
    fn trailing_whitespace_removed_from_last_cookie_only() {
        assert_eq!(cookies("a=1 ; b=2 \t "), vec![c("a", "1 "), c("b", "2")]);
    }

    #[test]
    fn cookie_without_equals_is_a_name() {
        assert_eq!(cookies("flag; a=1"), vec![c("flag", ""), c("a", "1")]);
    }

    #[test]
    fn empty_pieces_and_empty_names_are_skipped() {
        assert_eq!(cookies(";;foo=bar;"), vec![c("foo", "bar")]);
        assert_eq!(cookies("   =bar; x=1"), vec![c("x", "1")]);
        assert_eq!(cookies("  ;   "), Vec::<(String, String)>::new());
        assert!(cookies("").is_empty());
    }

    #[test]
    fn dollar_version_cookie_name() {
        assert_eq!(
            cookies("$Version=1; a=b"),
            vec![c("$Version", "1"), c("a", "b")]
        );
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            for arg in parse_cookies(&input) {
                prop_assert!(!arg.name.is_empty());
                prop_assert!(!is_c_space(arg.name[0]));
            }
        }

        #[test]
        fn simple_model(pairs in proptest::collection::vec(("[a-z]{1,6}", "[a-z0-9]{0,6}"), 0..6)) {
            let header = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
            let got = cookies(&header);
            prop_assert_eq!(got, pairs);
        }
    }
}
