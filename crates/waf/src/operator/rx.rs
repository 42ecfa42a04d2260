//! `@rx`: regular expressions over bytes, compiled the way libmodsecurity 3 compiles PCRE.
//!
//! libmodsecurity 3 (`src/utils/regex.cc`) compiles every pattern with
//! `PCRE_DOTALL | PCRE_MULTILINE` and without `PCRE_UTF8`, so the subject is a byte string:
//! `.` matches any byte, `\xNN` is a byte, `\w`/`\d`/`\s`/`\b` and `(?i)` are ASCII-only.
//! The `regex` crate with Unicode mode off has these semantics; `pcre.rs` rewrites the bits
//! of PCRE syntax that it reads differently.

use std::fmt::Write as _;

use regex::bytes::{Regex, RegexBuilder};

use super::{Captures, MAX_CAPTURES, pcre};

/// Compiled-program size limit: the CRS fits the crate's 10 MiB default, this leaves
/// headroom for site rules (Unicode-mode fallbacks with `(?i)` grow quickly).
const SIZE_LIMIT: usize = 32 << 20;

/// A compiled `@rx` operator.
#[derive(Debug)]
pub(super) enum Rx {
    /// An empty pattern: libmodsecurity matches every value without capturing.
    Empty,
    /// A pattern compiled at load time.
    Static(Regex),
    /// A pattern with macros: compiled from the expanded argument at each evaluation.
    Dynamic,
}

impl Rx {
    /// Compiles `pattern` unless it holds macros (then it is compiled per evaluation).
    pub(super) fn compile(pattern: &str, macros: bool) -> Result<Rx, String> {
        if macros {
            return Ok(Rx::Dynamic);
        }
        if pattern.is_empty() {
            return Ok(Rx::Empty);
        }
        build(pattern)
            .map(Rx::Static)
            .map_err(|e| format!("@rx: invalid regular expression: {e}"))
    }

    /// Evaluates the regex on `input`, filling `captures` on a match.
    pub(super) fn matches(
        &self,
        input: &[u8],
        expanded: Option<&[u8]>,
        captures: Option<&mut Captures>,
    ) -> bool {
        match self {
            Rx::Empty => true,
            Rx::Static(re) => run(re, input, captures),
            Rx::Dynamic => {
                let pattern = pattern_from_bytes(expanded.unwrap_or_default());
                // As libmodsecurity does, a macro-built pattern that fails to compile never
                // matches (it logs the error at debug level).
                match build(&pattern) {
                    Ok(re) => run(&re, input, captures),
                    Err(_) => false,
                }
            }
        }
    }
}

/// Compiles a PCRE-style pattern with libmodsecurity's flags; byte semantics first, Unicode
/// mode only for the rare pattern that byte mode rejects (e.g. a non-ASCII class member).
fn build(pattern: &str) -> Result<Regex, regex::Error> {
    // libmodsecurity replaces an empty pattern by `.*`.
    let pattern = if pattern.is_empty() { ".*" } else { pattern };
    let translated = pcre::translate(pattern);
    builder(&translated, false)
        .build()
        .or_else(|_| builder(&translated, true).build())
}

/// Whether `pattern` compiles with byte semantics (no Unicode fallback needed).
#[cfg(test)]
pub(super) fn compiles_as_bytes(pattern: &str) -> bool {
    builder(&pcre::translate(pattern), false).build().is_ok()
}

fn builder(pattern: &str, unicode: bool) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.unicode(unicode)
        .dot_matches_new_line(true)
        .multi_line(true)
        .size_limit(SIZE_LIMIT);
    b
}

/// Runs `re`; with `captures`, records groups 0..=9 as PCRE reports them.
fn run(re: &Regex, input: &[u8], captures: Option<&mut Captures>) -> bool {
    let Some(out) = captures else {
        return re.is_match(input);
    };
    // Most values do not match: the cheaper yes/no search first, groups only on a match.
    if !re.is_match(input) {
        return false;
    }
    // Without groups of its own only the whole match is captured: `find` is enough.
    if re.captures_len() == 1 {
        out.groups.clear();
        out.groups
            .extend(re.find(input).map(|m| Some(m.as_bytes().to_vec())));
        return true;
    }
    let Some(caps) = re.captures(input) else {
        return false;
    };
    out.groups = (0..caps.len().min(MAX_CAPTURES))
        .map(|i| caps.get(i).map(|m| m.as_bytes().to_vec()))
        .collect();
    // PCRE reports groups only up to the highest one that took part in the match.
    while out.groups.last().is_some_and(Option::is_none) {
        out.groups.pop();
    }
    true
}

/// Turns an expanded (byte) argument into pattern text; bytes that are not UTF-8 become
/// `\xNN` escapes, which byte-mode regexes read as those bytes.
fn pattern_from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(pattern: &str) -> Rx {
        match Rx::compile(pattern, false) {
            Ok(rx) => rx,
            Err(e) => panic!("{pattern}: {e}"),
        }
    }

    fn is_match(pattern: &str, input: &[u8]) -> bool {
        rx(pattern).matches(input, None, None)
    }

    #[test]
    fn dot_matches_newline_and_any_byte() {
        assert!(is_match("a.b", b"a\nb"));
        assert!(is_match("a.b", b"a\xffb"));
        assert!(!is_match("a.b", b"ab"));
    }

    #[test]
    fn multiline_anchors() {
        assert!(is_match("^foo$", b"bar\nfoo\nbaz"));
        assert!(!is_match("\\Afoo", b"bar\nfoo"));
    }

    #[test]
    fn hex_escapes_are_bytes() {
        assert!(is_match("\\xff", b"\xff"));
        assert!(!is_match("\\xff", "ÿ".as_bytes()));
        assert!(is_match("[\\x80-\\xff]", b"a\x80"));
        assert!(is_match("\\x{ff}", b"\xff"));
    }

    #[test]
    fn classes_and_case_folding_are_ascii() {
        assert!(!is_match("\\w", "é".as_bytes()));
        assert!(is_match("(?i)abc", b"xABCx"));
        assert!(is_match("\\bselect\\b", b"1 select 2"));
        assert!(!is_match("\\bselect\\b", b"xselect"));
        assert!(is_match("[^a]", b"\xc3"));
    }

    #[test]
    fn non_ascii_literal_matches_its_utf8_bytes() {
        assert!(is_match("é", "café".as_bytes()));
        // A non-ASCII class member needs Unicode mode; it still compiles.
        assert!(is_match("[é]", "café".as_bytes()));
    }

    #[test]
    fn pcre_escapes_are_translated() {
        assert!(is_match("\\<script\\>", b"<script>"));
        assert!(is_match("a\\0b", b"a\0b"));
        assert!(is_match("\\012", b"\n"));
        assert!(is_match("\\e", b"\x1b"));
        assert!(is_match("a{b", b"a{b"));
        assert!(is_match("[a[]", b"["));
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        let err = Rx::compile("(a", false).err().unwrap_or_default();
        assert!(err.starts_with("@rx: invalid regular expression:"), "{err}");
        assert!(Rx::compile("(?<=a)b", false).is_err());
    }

    #[test]
    fn empty_pattern_matches_everything_without_captures() {
        let mut caps = Captures::default();
        assert!(rx("").matches(b"abc", None, Some(&mut caps)));
        assert!(caps.groups.is_empty());
    }

    #[test]
    fn captures_follow_pcre() {
        let mut caps = Captures::default();
        assert!(rx("(a)(x)?(b)(c)?").matches(b"zab", None, Some(&mut caps)));
        let want: Vec<Option<Vec<u8>>> = vec![
            Some(b"ab".to_vec()),
            Some(b"a".to_vec()),
            None,
            Some(b"b".to_vec()),
        ];
        assert_eq!(caps.groups, want);
        assert!(!rx("q").matches(b"zab", None, Some(&mut caps)));
    }

    #[test]
    fn captures_stop_at_group_nine() {
        let mut caps = Captures::default();
        let pattern = "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)";
        assert!(rx(pattern).matches(b"abcdefghijk", None, Some(&mut caps)));
        assert_eq!(caps.groups.len(), MAX_CAPTURES);
        assert_eq!(caps.groups[9], Some(b"i".to_vec()));
    }

    #[test]
    fn dynamic_patterns_compile_per_call() {
        let rx = Rx::Dynamic;
        assert!(rx.matches(b"hello", Some(b"^h.l"), None));
        assert!(!rx.matches(b"hello", Some(b"^x"), None));
        assert!(!rx.matches(b"hello", Some(b"(unclosed"), None));
        assert!(rx.matches(b"a\xffb", Some(b"\xff"), None));
        assert!(rx.matches(b"", Some(b""), None));
    }
}
