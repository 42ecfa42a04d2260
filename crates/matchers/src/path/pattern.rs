//! Istio `paths` / `notPaths` patterns: string patterns and URI templates.

use crate::string::{StringMatch, StringSet};

const MATCH_ONE: &str = "{*}";
const MATCH_MANY: &str = "{**}";

/// Why a path pattern was rejected; each message names the pattern and byte position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// `{*}` or `{**}` shares a segment with other text, as in `/a/x{*}`.
    #[error(
        "path pattern {pattern:?}: expected `{{*}}` or `{{**}}` alone between '/' characters, \
         found one at byte {position} that is not (it must be a whole path segment)"
    )]
    OperatorNotWholeSegment {
        /// The rejected pattern.
        pattern: String,
        /// Byte offset of the operator.
        position: usize,
    },
    /// An operator follows `{**}`, as in `/{**}/{*}`.
    #[error(
        "path pattern {pattern:?}: expected `{{**}}` to be the last operator, \
         found another operator after it at byte {position}"
    )]
    MultiSegmentNotLast {
        /// The rejected pattern.
        pattern: String,
        /// Byte offset of the operator after `{**}`.
        position: usize,
    },
    /// `{` or `}` outside a whole `{*}` / `{**}` segment, as in `/a/{id}`.
    #[error(
        "path pattern {pattern:?}: expected '{{' or '}}' only as part of a `{{*}}` or `{{**}}` \
         segment, found one at byte {position}"
    )]
    UnexpectedBrace {
        /// The rejected pattern.
        pattern: String,
        /// Byte offset of the brace.
        position: usize,
    },
    /// A bare `*` inside a URI template, where Envoy would read it as an operator.
    #[error(
        "path pattern {pattern:?}: expected '*' only inside `{{*}}` or `{{**}}` in a URI \
         template, found one at byte {position}"
    )]
    StarInTemplate {
        /// The rejected pattern.
        pattern: String,
        /// Byte offset of the `*`.
        position: usize,
    },
    /// A URI template that does not start with `/`.
    #[error("path pattern {pattern:?}: expected a URI template to start with '/'")]
    TemplateNotAbsolute {
        /// The rejected pattern.
        pattern: String,
    },
}

/// One compiled Istio path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// Istio string pattern (`*`, `abc*`, `*abc`, exact), case-sensitive.
    String(StringMatch),
    /// Envoy URI template with `{*}` / `{**}` operators.
    Template(PathTemplate),
}

impl PathPattern {
    /// Compiles a pattern; one containing `{*}` or `{**}` is a URI template.
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        if pattern.contains(MATCH_ONE) || pattern.contains(MATCH_MANY) {
            return PathTemplate::parse(pattern).map(PathPattern::Template);
        }
        // Istio rejects braces in every path, not only in templates, so that
        // a mistyped operator (`{*` or `{id}`) cannot silently become a literal.
        if let Some(position) = pattern.find(['{', '}']) {
            return Err(PatternError::UnexpectedBrace {
                pattern: pattern.to_owned(),
                position,
            });
        }
        Ok(PathPattern::String(StringMatch::parse(pattern, false)))
    }

    /// Whether a path already passed through [`normalize_path`](super::normalize_path) matches.
    pub fn matches(&self, normalized_path: &str) -> bool {
        match self {
            PathPattern::String(m) => m.matches(Some(normalized_path)),
            PathPattern::Template(t) => t.matches(normalized_path),
        }
    }
}

/// One `/`-separated piece of a template before its `{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    /// `{*}`: exactly one non-empty segment.
    One,
}

impl Segment {
    fn matches(&self, part: &str) -> bool {
        match self {
            Segment::Literal(l) => **l == *part,
            Segment::One => !part.is_empty(),
        }
    }
}

/// A compiled Envoy URI template such as `/api/{*}/items/{**}`.
///
/// `{*}` matches one non-empty segment. `{**}` matches the rest of the path
/// up to any literal segments after it: zero or more characters, `/`
/// included. Istio's docs say "one or more path segments"; Envoy, which
/// enforces Istio policy, compiles `**` to `[...]*`, so `/foo/{**}` matches
/// `/foo/` (one empty segment) but not `/foo`. We follow Envoy so an Istio
/// DENY rule on `/admin/{**}` still covers `/admin/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// Segments before `{**}`, or all segments when there is none.
    head: Box<[Segment]>,
    /// With `{**}`: the literal text that must end the path (`""` or `/x/y`).
    tail: Option<Box<str>>,
}

/// What one pattern segment is, before placement rules are checked.
enum Piece<'a> {
    Literal(&'a str),
    One,
    Many,
}

impl PathTemplate {
    fn parse(pattern: &str) -> Result<PathTemplate, PatternError> {
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(PatternError::TemplateNotAbsolute {
                pattern: pattern.to_owned(),
            });
        };
        let mut head = Vec::new();
        let mut tail: Option<String> = None;
        let mut offset = 1;
        for text in body.split('/') {
            match (classify(pattern, text, offset)?, tail.as_mut()) {
                (Piece::Many, None) => tail = Some(String::new()),
                (Piece::One | Piece::Many, Some(_)) => {
                    return Err(PatternError::MultiSegmentNotLast {
                        pattern: pattern.to_owned(),
                        position: offset,
                    });
                }
                (Piece::Literal(l), Some(t)) => {
                    t.push('/');
                    t.push_str(l);
                }
                (Piece::Literal(l), None) => head.push(Segment::Literal(l.into())),
                (Piece::One, None) => head.push(Segment::One),
            }
            offset += text.len() + 1;
        }
        Ok(PathTemplate {
            head: head.into_boxed_slice(),
            tail: tail.map(String::into_boxed_str),
        })
    }

    /// Whether a normalized path matches; paths not starting with `/` never do.
    pub fn matches(&self, normalized_path: &str) -> bool {
        let Some(mut rest) = normalized_path.strip_prefix('/') else {
            return false;
        };
        let Some(tail) = &self.tail else {
            let mut parts = rest.split('/');
            return self
                .head
                .iter()
                .all(|seg| parts.next().is_some_and(|p| seg.matches(p)))
                && parts.next().is_none();
        };
        for seg in &self.head {
            // `{**}` follows, so each head segment must end with a '/'.
            let Some((part, after)) = rest.split_once('/') else {
                return false;
            };
            if !seg.matches(part) {
                return false;
            }
            rest = after;
        }
        rest.ends_with(&**tail)
    }
}

/// Classifies one segment of a template, rejecting operators glued to text.
fn classify<'a>(pattern: &str, text: &'a str, offset: usize) -> Result<Piece<'a>, PatternError> {
    match text {
        MATCH_ONE => return Ok(Piece::One),
        MATCH_MANY => return Ok(Piece::Many),
        _ => {}
    }
    let err_pattern = || pattern.to_owned();
    if let Some(brace) = text.find(['{', '}']) {
        let operator = [MATCH_MANY, MATCH_ONE]
            .iter()
            .filter_map(|op| text.find(op))
            .min();
        return Err(match operator {
            Some(at) => PatternError::OperatorNotWholeSegment {
                pattern: err_pattern(),
                position: offset + at,
            },
            None => PatternError::UnexpectedBrace {
                pattern: err_pattern(),
                position: offset + brace,
            },
        });
    }
    if let Some(star) = text.find('*') {
        return Err(PatternError::StarInTemplate {
            pattern: err_pattern(),
            position: offset + star,
        });
    }
    Ok(Piece::Literal(text))
}

/// Many path patterns compiled together; matches when any pattern does.
///
/// String patterns share a [`StringSet`] (one hash lookup for all exact
/// paths); templates are tried one after another.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    strings: StringSet,
    templates: Vec<PathTemplate>,
}

impl PathSet {
    /// Compiles `patterns`, failing on the first invalid one.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<PathSet, PatternError> {
        let mut set = PathSet::default();
        for pattern in patterns {
            match PathPattern::parse(pattern)? {
                PathPattern::String(m) => set.strings.push(m),
                PathPattern::Template(t) => {
                    if !set.templates.contains(&t) {
                        set.templates.push(t);
                    }
                }
            }
        }
        set.strings.finish();
        Ok(set)
    }

    /// Whether no pattern was given (such a set matches nothing).
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty() && self.templates.is_empty()
    }

    /// Whether any pattern matches a path already passed through [`normalize_path`](super::normalize_path).
    pub fn matches(&self, normalized_path: &str) -> bool {
        self.strings.matches(Some(normalized_path))
            || self.templates.iter().any(|t| t.matches(normalized_path))
    }
}
