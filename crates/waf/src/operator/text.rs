//! String comparisons: `@streq`, `@contains`, `@strmatch`, `@containsWord`, `@beginsWith`,
//! `@endsWith` and `@within`, all case-sensitive byte comparisons as in libmodsecurity 3.

use memchr::memmem::{self, Finder};

/// Which comparison a [`TextOp`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextKind {
    /// The value equals the argument.
    StrEq,
    /// The argument occurs in the value.
    Contains,
    /// Same as `Contains` (libmodsecurity 3 implements `@strmatch` as a substring search).
    StrMatch,
    /// The argument occurs in the value, bounded by non-letters or the value's ends.
    ContainsWord,
    /// The value starts with the argument.
    BeginsWith,
    /// The value ends with the argument.
    EndsWith,
    /// The value occurs in the argument (an empty value always does).
    Within,
}

/// A compiled string comparison.
#[derive(Debug)]
pub(super) struct TextOp {
    kind: TextKind,
    argument: Vec<u8>,
    /// Precompiled substring searcher for the argument as written.
    finder: Finder<'static>,
}

impl TextOp {
    /// Prepares the comparison against `argument` as written.
    pub(super) fn new(kind: TextKind, argument: &str) -> TextOp {
        TextOp {
            kind,
            argument: argument.as_bytes().to_vec(),
            finder: Finder::new(argument.as_bytes()).into_owned(),
        }
    }

    /// Compares `input` with the argument (`expanded` replaces it when it had macros).
    pub(super) fn matches(&self, input: &[u8], expanded: Option<&[u8]>) -> bool {
        let arg = expanded.unwrap_or(&self.argument);
        match self.kind {
            TextKind::StrEq => input == arg,
            TextKind::Contains | TextKind::StrMatch => match expanded {
                None => self.finder.find(input).is_some(),
                Some(arg) => memmem::find(input, arg).is_some(),
            },
            TextKind::ContainsWord => contains_word(input, arg),
            TextKind::BeginsWith => input.starts_with(arg),
            TextKind::EndsWith => input.ends_with(arg),
            TextKind::Within => input.is_empty() || memmem::find(arg, input).is_some(),
        }
    }
}

/// libmodsecurity 3's `@containsWord`: only ASCII letters count as word characters, an
/// empty argument always matches and an empty value never does (unless the argument is
/// empty too).
pub(super) fn contains_word(input: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_letter = |i: usize| input.get(i).is_some_and(u8::is_ascii_alphabetic);
    memmem::find_iter(input, word).any(|pos| {
        let end = pos + word.len();
        (pos == 0 || !is_letter(pos - 1)) && !is_letter(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: TextKind, arg: &str) -> TextOp {
        TextOp::new(kind, arg)
    }

    #[test]
    fn streq() {
        let o = op(TextKind::StrEq, "POST");
        assert!(o.matches(b"POST", None));
        assert!(!o.matches(b"post", None));
        assert!(!o.matches(b"POST ", None));
        assert!(o.matches(b"x", Some(b"x")));
        assert!(op(TextKind::StrEq, "").matches(b"", None));
    }

    #[test]
    fn contains_and_strmatch() {
        for kind in [TextKind::Contains, TextKind::StrMatch] {
            let o = op(kind, "-->");
            assert!(o.matches(b"a-->b", None));
            assert!(!o.matches(b"a->b", None));
            assert!(op(kind, "").matches(b"", None));
            assert!(o.matches(b"xyz", Some(b"y")));
        }
    }

    #[test]
    fn begins_and_ends_with() {
        assert!(op(TextKind::BeginsWith, "#:~:text=").matches(b"#:~:text=abc", None));
        assert!(!op(TextKind::BeginsWith, "abc").matches(b"ab", None));
        assert!(op(TextKind::EndsWith, ".pdf").matches(b"file.pdf", None));
        assert!(!op(TextKind::EndsWith, ".pdf").matches(b"file.pdfx", None));
        assert!(op(TextKind::EndsWith, "").matches(b"", None));
        let host = op(TextKind::EndsWith, ".%{request_headers.host}");
        assert!(host.matches(b"www.example.com", Some(b".example.com")));
    }

    #[test]
    fn within_is_a_substring_of_the_argument() {
        let o = op(TextKind::Within, "GET HEAD POST OPTIONS");
        assert!(o.matches(b"GET", None));
        assert!(o.matches(b"POST", None));
        // A plain substring search, as in libmodsecurity: "T H" is inside the list.
        assert!(o.matches(b"T H", None));
        assert!(!o.matches(b"PUT", None));
        assert!(o.matches(b"", None));
        assert!(!op(TextKind::Within, "").matches(b"a", None));
    }

    #[test]
    fn contains_word_boundaries() {
        assert!(contains_word(b"select", b"select"));
        assert!(contains_word(b"1 select 2", b"select"));
        assert!(contains_word(b"select(", b"select"));
        assert!(contains_word(b"(select", b"select"));
        assert!(contains_word(b"1select2", b"select"));
        assert!(!contains_word(b"selection", b"select"));
        assert!(!contains_word(b"preselect", b"select"));
        assert!(contains_word(b"preselect select", b"select"));
        assert!(contains_word(b"\xe9select", b"select"));
        assert!(contains_word(b"", b""));
        assert!(contains_word(b"abc", b""));
        assert!(!contains_word(b"", b"a"));
    }
}
