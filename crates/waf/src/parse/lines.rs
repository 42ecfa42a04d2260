//! Physical lines to logical lines: continuation lines, comments and blank lines.
//!
//! As Apache's configuration reader does (and ModSecurity v2 with it), a line whose last
//! character is a backslash not itself preceded by a backslash continues on the next line:
//! the backslash and the line break are removed and the next line is appended as it is,
//! leading whitespace included. A `#` line is a comment; a comment that ends in a
//! backslash continues onto the next line too, so a commented-out multi-line `SecRule`
//! stays commented out (libmodsecurity 3 does the same for `#SecRule …\` and
//! `#SecAction …\`). A comment line met inside a continued directive is dropped without
//! ending the directive.

/// One directive's text after joining its continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// The 1-based number of the physical line the directive starts on.
    pub(crate) line: usize,
    /// The joined text, leading whitespace of the first line removed.
    pub(crate) text: String,
}

/// Splits `text` into the logical lines that hold directives, in order.
pub(crate) fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut physical = text
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix('\r').unwrap_or(line)));
    let mut out = Vec::new();
    while let Some((number, raw)) = physical.next() {
        let trimmed = raw.trim_start_matches(is_blank);
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            skip_comment(raw, &mut physical);
            continue;
        }
        let text = join_continuations(trimmed, &mut physical);
        out.push(LogicalLine { line: number, text });
    }
    out
}

/// Consumes the lines a comment continues onto.
fn skip_comment<'a>(first: &'a str, rest: &mut impl Iterator<Item = (usize, &'a str)>) {
    let mut current = first;
    while continues(current) {
        match rest.next() {
            Some((_, next)) => current = next,
            None => return,
        }
    }
}

/// Appends continuation lines to `first`, dropping comment lines in between.
fn join_continuations<'a>(
    first: &'a str,
    rest: &mut impl Iterator<Item = (usize, &'a str)>,
) -> String {
    let mut text = String::new();
    let mut current = first;
    while continues(current) {
        text.push_str(&current[..current.len() - 1]);
        match next_non_comment(rest) {
            Some(next) => current = next,
            None => return text,
        }
    }
    text.push_str(current);
    text
}

/// The next physical line that is not a comment line.
fn next_non_comment<'a>(rest: &mut impl Iterator<Item = (usize, &'a str)>) -> Option<&'a str> {
    rest.map(|(_, line)| line)
        .find(|line| !line.trim_start_matches(is_blank).starts_with('#'))
}

/// Whether a physical line continues on the next one: it ends in a backslash that is not
/// escaped by another backslash (Apache's rule).
fn continues(line: &str) -> bool {
    let bytes = line.as_bytes();
    match bytes {
        [.., b'\\', b'\\'] => false,
        [.., b'\\'] => true,
        _ => false,
    }
}

/// Whitespace between words and at the start of lines.
pub(crate) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\u{b}' | '\u{c}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(input: &str) -> Vec<(usize, String)> {
        logical_lines(input)
            .into_iter()
            .map(|l| (l.line, l.text))
            .collect()
    }

    #[test]
    fn joins_continuations_keeping_leading_whitespace() {
        let got = texts("SecRule A \"b\" \\\n    \"id:1,\\\n    pass\"\nSecMarker X\n");
        assert_eq!(
            got,
            vec![
                (1, "SecRule A \"b\"     \"id:1,    pass\"".to_owned()),
                (4, "SecMarker X".to_owned())
            ]
        );
    }

    #[test]
    fn skips_blank_and_comment_lines_and_counts_lines() {
        let got = texts("\n# c\n   \n\t# indented\r\n  SecA x\r\n");
        assert_eq!(got, vec![(5, "SecA x".to_owned())]);
    }

    #[test]
    fn comment_with_backslash_swallows_next_line() {
        let got = texts("#SecRule A \"b\" \\\n    \"id:1\"\nSecB\n");
        assert_eq!(got, vec![(3, "SecB".to_owned())]);
    }

    #[test]
    fn comment_inside_continuation_ends_nothing() {
        let got = texts("SecRule A \"b\" \\\n  # why\n  \"id:1\"\nSecB\n");
        assert_eq!(
            got,
            vec![
                (1, "SecRule A \"b\"   \"id:1\"".to_owned()),
                (4, "SecB".to_owned())
            ]
        );
    }

    #[test]
    fn double_backslash_does_not_continue() {
        let got = texts("SecA x\\\\\nSecB\n");
        assert_eq!(
            got,
            vec![(1, "SecA x\\\\".to_owned()), (2, "SecB".to_owned())]
        );
    }

    #[test]
    fn continuation_at_end_of_input_and_bom() {
        assert_eq!(texts("\u{feff}SecA x \\"), vec![(1, "SecA x ".to_owned())]);
        assert_eq!(texts("SecA x \\\n"), vec![(1, "SecA x ".to_owned())]);
    }

    proptest! {
        #[test]
        fn never_panics_and_lines_are_increasing(input in "[ -~\t\r\n\\\\#é]{0,200}") {
            let lines = logical_lines(&input);
            let total = input.split('\n').count();
            let mut last = 0;
            for l in &lines {
                prop_assert!(l.line > last && l.line <= total);
                prop_assert!(!l.text.contains('\n'));
                last = l.line;
            }
        }

        #[test]
        fn lines_without_backslash_or_comment_are_kept(
            words in proptest::collection::vec("[A-Za-z0-9\"' :,|]{1,20}", 1..8)
        ) {
            let words: Vec<String> =
                words.into_iter().filter(|w| !w.trim().is_empty()).collect();
            let input = words.join("\n");
            let got: Vec<String> = logical_lines(&input).into_iter().map(|l| l.text).collect();
            let want: Vec<String> =
                words.iter().map(|w| w.trim_start_matches(is_blank).to_owned()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
