//! A logical line to its words: whitespace-separated, double quotes group a word.
//!
//! Inside double quotes `\"` stands for a quote and a backslash before any other character
//! is kept as written, so regular expressions keep `\d`, `\x5c` and `\\` unchanged. As in
//! libmodsecurity 3, a quote preceded by an even number of backslashes closes the word
//! (`"a\\"` is the word `a\\`). Unlike libmodsecurity 3, which leaves `\"` in the text (so
//! `@contains a\"b` looks for a backslash), the backslash of `\"` is removed, as Apache
//! and ModSecurity v2 do: that is what rule authors mean by it.

use super::lines::is_blank;

/// Splits a logical line into words, removing the quotes of quoted words.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut rest = line.trim_start_matches(is_blank);
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted, '"').ok_or_else(|| unterminated('"', rest))?,
            None => {
                let end = rest.find(is_blank).unwrap_or(rest.len());
                (rest[..end].to_owned(), &rest[end..])
            }
        };
        words.push(word);
        rest = after.trim_start_matches(is_blank);
    }
    Ok(words)
}

/// Reads up to the closing `quote`, unescaping `\quote`; returns the text and what follows
/// the closing quote, or `None` when the quote is never closed.
pub(crate) fn read_quoted(text: &str, quote: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        if c == quote {
            return Some((out, &text[index + c.len_utf8()..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, next)) if next == quote => out.push(quote),
            Some((_, next)) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    None
}

/// The message for a quote that is never closed, quoting the start of the text.
pub(crate) fn unterminated(quote: char, from: &str) -> String {
    const SHOWN: usize = 40;
    let shown: String = from.chars().take(SHOWN).collect();
    let more = if from.chars().nth(SHOWN).is_some() {
        "…"
    } else {
        ""
    };
    format!("unterminated quoted string: the {quote} of `{shown}{more}` is never closed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn splits_on_whitespace_and_quotes() {
        assert_eq!(
            words("SecRule  ARGS\t\"@rx a b\" \"id:1\""),
            ["SecRule", "ARGS", "@rx a b", "id:1"]
        );
        assert_eq!(words("  x  "), ["x"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("\"\""), [""]);
    }

    #[test]
    fn escapes_inside_quotes() {
        assert_eq!(words(r#""a\"b" "\d\x5c""#), ["a\"b", r"\d\x5c"]);
        assert_eq!(words(r#""a\\" b"#), [r"a\\", "b"]);
        assert_eq!(words(r#""a\\\"" b"#), [r#"a\\""#, "b"]);
    }

    #[test]
    fn closing_quote_ends_the_word() {
        assert_eq!(words(r#""a""b" c"#), ["a", "b", "c"]);
        assert_eq!(words(r#"a"b c"#), ["a\"b", "c"]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let err = split_words(r#"SecRule ARGS "@rx a\""#).unwrap_err();
        assert!(err.contains("unterminated quoted string"), "{err}");
        assert!(err.contains(r#""@rx a\""#), "{err}");
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let _ = split_words(&line);
        }

        #[test]
        fn quoted_words_round_trip(
            list in proptest::collection::vec("([ -\\[\\]-~é]|\\\\[a-z])*", 0..6)
        ) {
            let line: Vec<String> = list
                .iter()
                .map(|w| format!("\"{}\"", w.replace('"', "\\\"")))
                .collect();
            prop_assert_eq!(split_words(&line.join(" ")), Ok(list));
        }
    }
}
