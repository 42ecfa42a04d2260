//! Istio string patterns, as used by AuthorizationPolicy principals,
//! namespaces, hosts, methods, header values and JWT claims.
//!
//! Istio gives `*` a meaning only at the ends of a pattern: `*` alone means
//! "present and non-empty", `abc*` is a prefix, `*abc` a suffix, and every
//! other pattern (including `a*b`) is compared literally. A leading `*` wins
//! over a trailing one, so `**` is the suffix `*` and `*a*` the suffix `a*`,
//! exactly as Istio's `StringMatcherWithPrefix` classifies them.

use std::collections::HashSet;

/// Up to this many exact values are compared one by one instead of hashed.
const FEW_EXACT: usize = 8;

/// Longest value lower-cased on the stack for a case-insensitive exact lookup;
/// longer values (rare: header values past this size) fall back to the heap.
const STACK_LOWERCASE_MAX: usize = 256;

/// One compiled Istio string pattern.
///
/// `ignore_case` patterns store their text ASCII-lower-cased, so a set of
/// them can be probed with a lower-cased value; comparison is ASCII-only,
/// like Envoy's `ignore_case`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StringMatch {
    /// The whole value equals `value`.
    Exact {
        /// Text to compare against (lower-cased when `ignore_case`).
        value: Box<str>,
        /// Compare ASCII letters without regard to case.
        ignore_case: bool,
    },
    /// The value starts with `value`.
    Prefix {
        /// Required prefix (lower-cased when `ignore_case`).
        value: Box<str>,
        /// Compare ASCII letters without regard to case.
        ignore_case: bool,
    },
    /// The value ends with `value`.
    Suffix {
        /// Required suffix (lower-cased when `ignore_case`).
        value: Box<str>,
        /// Compare ASCII letters without regard to case.
        ignore_case: bool,
    },
    /// The attribute is present and non-empty (pattern `*`).
    Presence,
}

impl StringMatch {
    /// Compiles an Istio pattern; every string is a valid pattern, so this cannot fail.
    pub fn parse(pattern: &str, ignore_case: bool) -> StringMatch {
        if pattern == "*" {
            return StringMatch::Presence;
        }
        let text = |s: &str| -> Box<str> {
            if ignore_case {
                s.to_ascii_lowercase().into_boxed_str()
            } else {
                s.into()
            }
        };
        // Leading `*` is checked first, as Istio does, so `**` is a suffix.
        if let Some(rest) = pattern.strip_prefix('*') {
            StringMatch::Suffix {
                value: text(rest),
                ignore_case,
            }
        } else if let Some(rest) = pattern.strip_suffix('*') {
            StringMatch::Prefix {
                value: text(rest),
                ignore_case,
            }
        } else {
            StringMatch::Exact {
                value: text(pattern),
                ignore_case,
            }
        }
    }

    /// Whether the attribute value matches; an absent attribute (`None`) never does.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match self {
            StringMatch::Exact {
                value: p,
                ignore_case,
            } => eq_bytes(value.as_bytes(), p, *ignore_case),
            StringMatch::Prefix {
                value: p,
                ignore_case,
            } => has_prefix(value, p, *ignore_case),
            StringMatch::Suffix {
                value: p,
                ignore_case,
            } => has_suffix(value, p, *ignore_case),
            StringMatch::Presence => !value.is_empty(),
        }
    }
}

fn eq_bytes(value: &[u8], pattern: &str, ignore_case: bool) -> bool {
    if ignore_case {
        value.eq_ignore_ascii_case(pattern.as_bytes())
    } else {
        value == pattern.as_bytes()
    }
}

fn has_prefix(value: &str, prefix: &str, ignore_case: bool) -> bool {
    value
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| eq_bytes(head, prefix, ignore_case))
}

fn has_suffix(value: &str, suffix: &str, ignore_case: bool) -> bool {
    value
        .len()
        .checked_sub(suffix.len())
        .is_some_and(|start| eq_bytes(&value.as_bytes()[start..], suffix, ignore_case))
}

/// Many Istio string patterns compiled together; matches when any pattern does.
///
/// Exact values go in a hash set so large lists (principals, hosts) cost one
/// lookup, except for short lists, where comparing a few strings beats hashing
/// the value; prefixes and suffixes are kept in vectors with patterns implied by
/// a shorter one removed, since policies rarely carry more than a handful.
#[derive(Debug, Clone, Default)]
pub struct StringSet {
    exact: HashSet<Box<str>>,
    /// The exact values instead of `exact` when there are at most `FEW_EXACT`.
    few: Vec<Box<str>>,
    prefixes: Vec<Box<str>>,
    suffixes: Vec<Box<str>>,
    presence: bool,
    ignore_case: bool,
    patterns: usize,
}

impl StringSet {
    /// Compiles `patterns` (Istio syntax) into one set.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>, ignore_case: bool) -> StringSet {
        let mut set = StringSet {
            ignore_case,
            ..StringSet::default()
        };
        for pattern in patterns {
            set.push(StringMatch::parse(pattern, ignore_case));
        }
        set.finish();
        set
    }

    /// Adds an already parsed pattern; the crate only pushes matches parsed
    /// with this set's `ignore_case`, which keeps stored text comparable.
    pub(crate) fn push(&mut self, pattern: StringMatch) {
        self.patterns += 1;
        match pattern {
            StringMatch::Exact { value, .. } => {
                self.exact.insert(value);
            }
            StringMatch::Prefix { value, .. } => self.prefixes.push(value),
            StringMatch::Suffix { value, .. } => self.suffixes.push(value),
            StringMatch::Presence => self.presence = true,
        }
    }

    /// Drops prefixes and suffixes implied by shorter ones, so matching scans less.
    pub(crate) fn finish(&mut self) {
        if self.exact.len() <= FEW_EXACT {
            self.few = self.exact.drain().collect();
        }
        prune(&mut self.prefixes, |long, short| long.starts_with(short));
        prune(&mut self.suffixes, |long, short| long.ends_with(short));
    }

    /// Whether no pattern was given (such a set matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Whether any pattern matches; an absent attribute (`None`) never does.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        if self.presence && !value.is_empty() {
            return true;
        }
        let ic = self.ignore_case;
        self.contains_exact(value)
            || self.prefixes.iter().any(|p| has_prefix(value, p, ic))
            || self.suffixes.iter().any(|s| has_suffix(value, s, ic))
    }

    fn has_exact(&self, value: &str) -> bool {
        if self.few.is_empty() {
            self.exact.contains(value)
        } else {
            self.few.iter().any(|e| **e == *value)
        }
    }

    fn contains_exact(&self, value: &str) -> bool {
        if self.exact.is_empty() && self.few.is_empty() {
            return false;
        }
        if !self.ignore_case || !value.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.has_exact(value);
        }
        if value.len() > STACK_LOWERCASE_MAX {
            return self.has_exact(&value.to_ascii_lowercase());
        }
        let mut buf = [0u8; STACK_LOWERCASE_MAX];
        let lower = &mut buf[..value.len()];
        lower.copy_from_slice(value.as_bytes());
        lower.make_ascii_lowercase();
        // Lower-casing ASCII bytes keeps UTF-8 valid, so this never fails.
        std::str::from_utf8(lower).is_ok_and(|s| self.has_exact(s))
    }
}

/// Keeps only patterns not implied by another: shortest first, then drop any
/// pattern `covers(pattern, kept)` says is already matched by a kept one.
fn prune(patterns: &mut Vec<Box<str>>, covers: impl Fn(&str, &str) -> bool) {
    patterns.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    patterns.dedup();
    let mut kept: Vec<Box<str>> = Vec::with_capacity(patterns.len());
    for p in patterns.drain(..) {
        if !kept.iter().any(|k| covers(&p, k)) {
            kept.push(p);
        }
    }
    *patterns = kept;
}

#[cfg(test)]
mod tests;
