//! Rewrites PCRE syntax that the `regex` crate reads differently (or rejects) into an
//! equivalent `regex` pattern, for byte-mode (non-UTF) PCRE as libmodsecurity uses it.
//!
//! Handled: `\<`/`\>` and escaped non-ASCII characters (literals in PCRE), `\e`, `\0oo`
//! octal, `\b` in a class (backspace), `(?#…)` comments, `\x{HH}` up to 0xFF (a byte, not
//! U+00HH), `\h`/`\H`/`\v`/`\V`/`\R`, `\Q…\E`, a `{` that does not start a quantifier
//! (literal in PCRE), and inside classes a `[` that does not open a POSIX class, `&&`, `~~`
//! and `--` (set operators in `regex`).
//! Everything else is passed through; what `regex` cannot express (look-around,
//! back-references, `\Z`, possessive quantifiers) stays an error.

use std::fmt::Write as _;
use std::iter::Peekable;
use std::str::Chars;

/// PCRE's `\h` (horizontal space) in non-UTF mode.
const HSPACE: &str = "\\t\\x20\\xA0";
/// PCRE's `\v` (vertical space) in non-UTF mode.
const VSPACE: &str = "\\n\\x0B\\x0C\\r\\x85";

/// Translates a PCRE pattern; see the module documentation.
pub(super) fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => escape(&mut chars, &mut out, in_class),
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.next_if_eq(&'^').is_some() {
                    out.push('^');
                }
                // A `]` first in a class is a member in PCRE.
                if chars.next_if_eq(&']').is_some() {
                    out.push_str("\\]");
                }
            }
            '[' => posix_class_or_bracket(&mut chars, &mut out),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && chars.peek() == Some(&'-') => {
                out.push('-');
                chars.next();
                out.push_str("\\-");
            }
            '{' if !in_class && !starts_quantifier(chars.clone()) => out.push_str("\\{"),
            '(' if !in_class && chars.clone().take(2).eq(['?', '#']) => {
                // `(?#…)` is a comment in PCRE.
                chars.find(|c| *c == ')');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether the text after a `{` is `n}`, `n,}` or `n,m}`.
fn starts_quantifier(mut rest: Peekable<Chars<'_>>) -> bool {
    let digits = |rest: &mut Peekable<Chars<'_>>| {
        let mut n = 0;
        while rest.next_if(char::is_ascii_digit).is_some() {
            n += 1;
        }
        n
    };
    if digits(&mut rest) == 0 {
        return false;
    }
    if rest.next_if_eq(&',').is_some() {
        digits(&mut rest);
    }
    rest.next() == Some('}')
}

/// Inside a class: `[:name:]` is kept, any other `[` is a literal.
fn posix_class_or_bracket(chars: &mut Peekable<Chars<'_>>, out: &mut String) {
    let mut look = chars.clone();
    if look.next() == Some(':') {
        let name: String = look.by_ref().take_while(|c| *c != ':').collect();
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphabetic() || c == '^')
            && look.next() == Some(']')
        {
            out.push_str("[:");
            out.push_str(&name);
            out.push_str(":]");
            *chars = look;
            return;
        }
    }
    out.push_str("\\[");
}

/// Translates the escape after a `\`.
fn escape(chars: &mut Peekable<Chars<'_>>, out: &mut String, in_class: bool) {
    let Some(c) = chars.next() else {
        out.push('\\');
        return;
    };
    match c {
        '<' | '>' => out.push(c),
        'e' => out.push_str("\\x1B"),
        'b' if in_class => out.push_str("\\x08"),
        '0' => {
            let mut value = 0u32;
            for _ in 0..2 {
                match chars.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        value = value * 8 + d;
                        chars.next();
                    }
                    None => break,
                }
            }
            let _ = write!(out, "\\x{value:02X}");
        }
        'x' if chars.peek() == Some(&'{') => hex_brace(chars, out),
        'h' | 'v' => {
            let set = if c == 'h' { HSPACE } else { VSPACE };
            if in_class {
                out.push_str(set);
            } else {
                let _ = write!(out, "[{set}]");
            }
        }
        'H' | 'V' if !in_class => {
            let set = if c == 'H' { HSPACE } else { VSPACE };
            let _ = write!(out, "[^{set}]");
        }
        'R' if !in_class => out.push_str("(?:\\r\\n|[\\n\\x0B\\x0C\\r\\x85])"),
        'Q' => quoted(chars, out),
        c if !c.is_ascii() => out.push(c),
        c => {
            out.push('\\');
            out.push(c);
        }
    }
}

/// `\x{…}`: a value up to 0xFF is the byte `\xHH`; larger values are left to `regex`.
fn hex_brace(chars: &mut Peekable<Chars<'_>>, out: &mut String) {
    let mut look = chars.clone();
    look.next();
    let digits: String = look.by_ref().take_while(|c| *c != '}').collect();
    match u32::from_str_radix(&digits, 16) {
        Ok(v) if v <= 0xFF => {
            let _ = write!(out, "\\x{v:02X}");
            *chars = look;
        }
        _ => out.push_str("\\x"),
    }
}

/// `\Q…\E`: everything up to `\E` (or the end) is literal.
fn quoted(chars: &mut Peekable<Chars<'_>>, out: &mut String) {
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'E') {
            chars.next();
            return;
        }
        if regex_syntax_escapable(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Characters that must be escaped to be literal in a `regex` pattern.
fn regex_syntax_escapable(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn passes_ordinary_syntax_through() {
        for p in [
            "a+b*",
            "(?i)x{2,3}",
            "[a-z\\d]",
            "\\\\<",
            "a{2}",
            "a{2,}",
            "[[:alpha:]]",
            "\\x41",
        ] {
            assert_eq!(translate(p), p);
        }
    }

    #[test]
    fn rewrites_pcre_only_syntax() {
        assert_eq!(translate("\\<a\\>"), "<a>");
        assert_eq!(translate("\\e"), "\\x1B");
        assert_eq!(translate("\\0"), "\\x00");
        assert_eq!(translate("\\012x"), "\\x0Ax");
        assert_eq!(translate("\\x{ff}"), "\\xFF");
        assert_eq!(translate("\\x{100}"), "\\x{100}");
        assert_eq!(translate("a{b"), "a\\{b");
        assert_eq!(translate("a{,3}"), "a\\{,3}");
        assert_eq!(translate("[{]"), "[{]");
        assert_eq!(translate("[]a]"), "[\\]a]");
        assert_eq!(translate("[^]a]"), "[^\\]a]");
        assert_eq!(translate("[a[]"), "[a\\[]");
        assert_eq!(translate("[&&~~]"), "[\\&\\&\\~\\~]");
        assert_eq!(translate("[!--]"), "[!-\\-]");
        assert_eq!(translate("\\Qa.b\\E."), "a\\.b.");
        assert_eq!(
            translate("\\h[\\v]"),
            "[\\t\\x20\\xA0][\\n\\x0B\\x0C\\r\\x85]"
        );
        assert_eq!(translate("\\é"), "é");
        assert_eq!(translate("a(?#note)b"), "ab");
        assert_eq!(translate("[\\b]\\b"), "[\\x08]\\b");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(pattern in ".{0,40}") {
            let _ = translate(&pattern);
        }

        #[test]
        fn quoted_text_matches_itself(text in "[a-z{}<>\\[\\]&~.*+?()|^$#-]{0,12}") {
            let pattern = translate(&format!("\\Q{text}\\E"));
            let re = regex::bytes::RegexBuilder::new(&pattern).unicode(false).build();
            proptest::prop_assert!(re.is_ok_and(|re| re.is_match(text.as_bytes())), "{}", pattern);
        }

        #[test]
        fn plain_syntax_is_unchanged(pattern in "[a-z0-9.*+?|()^$ ]{0,20}") {
            proptest::prop_assert_eq!(translate(&pattern), pattern);
        }
    }
}
