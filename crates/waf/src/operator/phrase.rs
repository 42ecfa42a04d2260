//! `@pm` and `@pmFromFile`: case-insensitive multi-phrase search (Aho-Corasick).
//!
//! As libmodsecurity 3's ACMP matcher does, phrases match anywhere in the value, ASCII
//! letters compare case-insensitively, and the first phrase to *end* in the value wins.

use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};

use super::Captures;

/// A compiled phrase list.
#[derive(Debug)]
pub(super) struct Phrases {
    automaton: AhoCorasick,
    /// The phrases as written, indexed like the automaton's patterns (for `capture`).
    phrases: Vec<Vec<u8>>,
}

impl Phrases {
    /// Builds the automaton; an empty list never matches.
    pub(super) fn new(phrases: Vec<Vec<u8>>) -> Result<Phrases, String> {
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&phrases)
            .map_err(|e| format!("cannot build the phrase matcher: {e}"))?;
        Ok(Phrases { automaton, phrases })
    }

    /// Whether any phrase occurs in `input`; with `captures`, group 0 is that phrase.
    pub(super) fn matches(&self, input: &[u8], captures: Option<&mut Captures>) -> bool {
        let Some(out) = captures else {
            return self.automaton.is_match(input);
        };
        match self.first_phrase(input) {
            Some(phrase) => {
                out.set_group_zero(phrase);
                true
            }
            None => false,
        }
    }

    /// The phrase ACMP reports: among the phrases ending earliest, the longest.
    fn first_phrase(&self, input: &[u8]) -> Option<&[u8]> {
        let first = self.automaton.find(input)?;
        let best = self
            .automaton
            .find_overlapping_iter(input)
            .take_while(|m| m.end() == first.end())
            .max_by_key(|m| m.len())
            .unwrap_or(first);
        self.phrases
            .get(best.pattern().as_usize())
            .map(Vec::as_slice)
    }
}

/// `@pm` with macros: the expanded argument is parsed and compiled for this one value.
pub(super) fn matches_dynamic(
    argument: &[u8],
    input: &[u8],
    captures: Option<&mut Captures>,
) -> bool {
    Phrases::new(parse_inline(argument)).is_ok_and(|p| p.matches(input, captures))
}

/// Splits an `@pm` argument into phrases as libmodsecurity 3 does: one pair of enclosing
/// double quotes is removed, `|41 42|`-style hex runs become bytes, `\:`, `\;`, `\\` and
/// `\"` are unescaped, then the result is split on whitespace. When the hex or escape syntax
/// is malformed the argument is split as written instead.
pub(super) fn parse_inline(argument: &[u8]) -> Vec<Vec<u8>> {
    let decoded = decode_content(argument);
    decoded
        .as_deref()
        .unwrap_or(argument)
        .split(|b| is_c_space(*b))
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Decodes quotes, hex runs and escapes; `None` means "use the argument unchanged".
fn decode_content(argument: &[u8]) -> Option<Vec<u8>> {
    let start = argument.iter().position(|b| *b != b' ' && *b != b'\t')?;
    let mut body = &argument[start..];
    if body.len() >= 2 && body.first() == Some(&b'"') && body.last() == Some(&b'"') {
        body = &body[1..body.len() - 1];
    }
    if body.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let (mut bin, mut esc) = (false, false);
    let mut hex: Option<u8> = None;
    for &b in body {
        if b == b'|' {
            bin = !bin;
        } else if !esc && b == b'\\' {
            esc = true;
        } else if bin {
            // libmodsecurity checks hex runs before escapes, so an escape inside `|…|` stays
            // pending; we keep that order.
            let digit = (b as char).to_digit(16)? as u8;
            match hex.take() {
                Some(high) => out.push(high << 4 | digit),
                None => hex = Some(digit),
            }
        } else if esc {
            if !matches!(b, b':' | b';' | b'\\' | b'"') {
                return None;
            }
            out.push(b);
            esc = false;
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// C `isspace` in the "C" locale (what `std::istream >>` splits on).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads the phrase files named in `argument` (whitespace-separated, relative to
/// `base_dir`): one phrase per line; empty, blank and `#` comment lines are skipped.
pub(super) fn load_files(argument: &str, base_dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let mut phrases = Vec::new();
    let mut any = false;
    for name in argument.split_ascii_whitespace() {
        any = true;
        // Rules compiled into the binary read their data files from the binary too.
        if base_dir == Path::new(crate::crs::EMBEDDED_DIR) {
            let content = crate::crs::data_file(name)
                .ok_or_else(|| format!("no embedded CRS data file {name}"))?;
            phrases.extend(phrases_from_file(content));
            continue;
        }
        let path = base_dir.join(name);
        let content =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        phrases.extend(phrases_from_file(&content));
    }
    if !any {
        return Err("expected a file name".to_owned());
    }
    Ok(phrases)
}

/// The phrases of one data file's content.
pub(super) fn phrases_from_file(content: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    content.split(|b| *b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let first = line.iter().find(|b| !is_c_space(**b))?;
        (*first != b'#').then(|| line.to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrases(arg: &str) -> Phrases {
        match Phrases::new(parse_inline(arg.as_bytes())) {
            Ok(p) => p,
            Err(e) => panic!("{arg}: {e}"),
        }
    }

    fn list(arg: &str) -> Vec<String> {
        parse_inline(arg.as_bytes())
            .into_iter()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect()
    }

    #[test]
    fn matches_anywhere_case_insensitively() {
        let p = phrases("gzip compress deflate br zstd");
        assert!(p.matches(b"x-GZIP-y", None));
        assert!(p.matches(b"Brotli", None));
        assert!(!p.matches(b"identity", None));
        assert!(!p.matches(b"", None));
    }

    #[test]
    fn parses_quotes_hex_and_escapes() {
        assert_eq!(list("\"a b\""), ["a", "b"]);
        assert_eq!(list("  |41|BC d"), ["ABC", "d"]);
        assert_eq!(list("a\\:b c\\\\d"), ["a:b", "c\\d"]);
        assert_eq!(list("( )"), ["(", ")"]);
        // Malformed hex: split as written.
        assert_eq!(list("|4G| x"), ["|4G|", "x"]);
        // Unsupported escape: split as written.
        assert_eq!(list("a\\nb"), ["a\\nb"]);
        assert!(list("   ").is_empty());
        assert!(list("").is_empty());
    }

    #[test]
    fn hex_bytes_can_split_phrases() {
        assert_eq!(list("a|20|b"), ["a", "b"]);
    }

    #[test]
    fn capture_is_the_phrase_as_written() {
        let p = phrases("Abc bc zzz");
        let mut caps = Captures::default();
        assert!(p.matches(b"xxABCxx", Some(&mut caps)));
        assert_eq!(caps.groups, vec![Some(b"Abc".to_vec())]);
        assert!(p.matches(b"zzzz", Some(&mut caps)));
        assert_eq!(caps.groups, vec![Some(b"zzz".to_vec())]);
    }

    #[test]
    fn earliest_end_wins() {
        let p = phrases("abcdef cd");
        let mut caps = Captures::default();
        assert!(p.matches(b"abcdef", Some(&mut caps)));
        assert_eq!(caps.groups, vec![Some(b"cd".to_vec())]);
    }

    #[test]
    fn empty_list_never_matches() {
        assert!(!phrases("").matches(b"anything", None));
    }

    #[test]
    fn dynamic_lists() {
        assert!(matches_dynamic(b"foo bar", b"xBARx", None));
        assert!(!matches_dynamic(b"foo bar", b"baz", None));
        assert!(!matches_dynamic(b"", b"baz", None));
    }

    #[test]
    fn data_file_lines() {
        let content = b"# comment\n\n  # indented comment\nfoo bar\r\n   \nbaz#not-comment\n";
        let got: Vec<Vec<u8>> = phrases_from_file(content).collect();
        assert_eq!(got, vec![b"foo bar".to_vec(), b"baz#not-comment".to_vec()]);
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load_files("nope.data", Path::new("/nonexistent-dir")).err();
        assert!(err.is_some_and(|e| e.starts_with("cannot read /nonexistent-dir/nope.data")));
        assert!(load_files(" ", Path::new("/")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn plain_lists_split_on_whitespace(arg in "[a-z \t]{0,30}") {
            let want: Vec<Vec<u8>> = arg.split_whitespace().map(|p| p.as_bytes().to_vec()).collect();
            proptest::prop_assert_eq!(parse_inline(arg.as_bytes()), want);
        }

        #[test]
        fn parsing_never_panics(arg in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let _ = parse_inline(&arg);
            let _ = phrases_from_file(&arg).count();
        }
    }
}
