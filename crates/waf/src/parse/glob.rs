//! Expansion of `Include` patterns such as `rules/*.conf` or `conf.d/[0-9]*/*.conf`.
//!
//! Each path component may use `*` (any run of characters), `?` (one character) and
//! `[…]` (a set or range, negated with `!` or `^`). As in the shell, a wildcard does not
//! match a leading `.` of a file name. Matches are returned in sorted order.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Whether `pattern` contains wildcard characters.
pub(crate) fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files matching `pattern`, sorted; an error when nothing matches or a directory on
/// the way cannot be read.
pub(crate) fn expand(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let mut candidates = vec![PathBuf::new()];
    let components: Vec<Component<'_>> = pattern.components().collect();
    for (index, component) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        let text = component.as_os_str().to_string_lossy();
        if !matches!(component, Component::Normal(_)) || !has_wildcards(&text) {
            candidates.iter_mut().for_each(|c| c.push(component));
            continue;
        }
        let mut next = Vec::new();
        for dir in &candidates {
            next.extend(matching_entries(dir, &text, last)?);
        }
        next.sort();
        candidates = next;
    }
    candidates.retain(|c| c.is_file());
    if candidates.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no file matches the pattern",
        ));
    }
    Ok(candidates)
}

/// The entries of `dir` whose names match `pattern`: files for the last component,
/// directories otherwise.
fn matching_entries(dir: &Path, pattern: &str, last: bool) -> io::Result<Vec<PathBuf>> {
    let read_from = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(read_from) {
        Ok(entries) => entries,
        // A directory matched by an earlier wildcard may lack a later literal component.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if !matches(pattern, &name.to_string_lossy()) {
            continue;
        }
        let path = dir.join(&name);
        if (last && path.is_file()) || (!last && path.is_dir()) {
            found.push(path);
        }
    }
    Ok(found)
}

/// Whether a file name matches a one-component pattern.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

/// Glob matching with backtracking to the last `*` (linear in practice).
fn match_from(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match_class(&pattern[p..], name[n]),
            Some(c) if *c == name[n] => Some(1),
            _ => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((star_p, star_n))) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Matches a `[…]` class at the start of `pattern` against `c`: the pattern length of the
/// class when `c` is in it, `None` otherwise. An unclosed `[` is a literal character.
fn match_class(pattern: &[char], c: char) -> Option<usize> {
    let negated = matches!(pattern.get(1), Some('!' | '^'));
    let start = if negated { 2 } else { 1 };
    // A `]` right after the opening bracket is a member, not the end.
    let close = pattern
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, ch)| **ch == ']')
        .map(|(i, _)| i);
    let Some(close) = close else {
        return (c == '[').then_some(1);
    };
    let members = &pattern[start..close];
    let mut inside = false;
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == '-' {
            inside |= (members[i]..=members[i + 2]).contains(&c);
            i += 3;
        } else {
            inside |= members[i] == c;
            i += 1;
        }
    }
    (inside != negated).then_some(close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards() {
        assert!(matches("*.conf", "REQUEST-901.conf"));
        assert!(!matches("*.conf", "a.conf.example"));
        assert!(!matches("*.conf", ".hidden.conf"));
        assert!(matches(".*.conf", ".hidden.conf"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("[0-9]*", "9x"));
        assert!(!matches("[!0-9]*", "9x"));
        assert!(matches("[]]", "]"));
        assert!(matches("a[", "a["));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxxc"));
        assert!(matches("**", ""));
    }

    /// The model: the same pattern as a regular expression.
    fn to_regex(pattern: &str) -> String {
        let mut re = String::from("^");
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        re
    }

    proptest! {
        #[test]
        fn agrees_with_regex_model(pattern in "[ab*?]{0,8}", name in "[ab]{0,10}") {
            let model = regex::Regex::new(&to_regex(&pattern)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(matches(&pattern, &name), model.is_match(&name));
        }

        #[test]
        fn never_panics(pattern in "[a-c*?\\[\\]!^-]{0,10}", name in "[a-c\\[\\]-]{0,10}") {
            let _ = matches(&pattern, &name);
        }
    }
}
