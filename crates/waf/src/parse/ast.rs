//! The parsed form of a SecLang file: directives as written, before compilation.
//!
//! Nothing here is checked beyond syntax: operator names, variable names, transformation
//! names and action arguments are kept as text so that the compiler can report an unknown
//! one with the directive's file and line.

use std::sync::Arc;

/// Where a directive starts: the file (as given to the parser) and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as it was given to the parser (or a label such as `<config>`).
    pub file: Arc<str>,
    /// The line on which the directive starts (continuation lines follow it).
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One directive with the place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Where the directive starts.
    pub at: Location,
    /// The directive.
    pub directive: Directive,
}

/// A SecLang directive. `Include` never appears: the parser replaces it by the included
/// files' directives, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// `SecRule VARIABLES OPERATOR [ACTIONS]`.
    Rule(RuleDecl),
    /// `SecAction ACTIONS`: a rule without variables whose operator always matches.
    Action(Vec<RawAction>),
    /// `SecMarker NAME`: a target for `skipAfter`.
    Marker(String),
    /// `SecDefaultAction ACTIONS`: defaults for the rules of one phase that follow.
    DefaultAction(Vec<RawAction>),
    /// `SecRuleUpdateTargetById IDS TARGETS [REPLACED]`.
    UpdateTargetById {
        /// The rules to change: single ids and ranges `a-b`.
        ids: Vec<IdRange>,
        /// Variables to add (or, with `!`, to exclude).
        targets: Vec<VarSpec>,
        /// The variable the targets replace, when a third argument was given.
        replaced: Option<VarSpec>,
    },
    /// `SecRuleUpdateTargetByTag TAG TARGETS`.
    UpdateTargetByTag {
        /// The tag (exact match) of the rules to change.
        tag: String,
        /// Variables to add or exclude.
        targets: Vec<VarSpec>,
    },
    /// `SecRuleUpdateActionById ID ACTIONS`.
    UpdateActionById {
        /// The rule to change.
        id: u32,
        /// Actions replacing the rule's actions of the same names.
        actions: Vec<RawAction>,
    },
    /// `SecRuleRemoveById IDS…` (single ids and ranges).
    RemoveById(Vec<IdRange>),
    /// `SecRuleRemoveByTag TAG` (regular expression on tags).
    RemoveByTag(String),
    /// `SecRuleRemoveByMsg MSG` (regular expression on messages).
    RemoveByMsg(String),
    /// Any other `Sec…` directive: name as written and its arguments after unquoting.
    /// Engine settings (`SecRuleEngine`, `SecRequestBodyAccess`, limits, MIME types, …)
    /// arrive here and the compiler interprets the ones it knows.
    Setting {
        /// The directive name as written, e.g. `SecRequestBodyLimit`.
        name: String,
        /// The arguments, unquoted.
        args: Vec<String>,
    },
}

/// The parts of a `SecRule` as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDecl {
    /// The variables, in order (`ARGS|!ARGS:foo|&TX:bar`).
    pub variables: Vec<VarSpec>,
    /// The operator.
    pub operator: OperatorSpec,
    /// The actions, in order; empty when the rule had no action list.
    pub actions: Vec<RawAction>,
}

/// One variable of a rule's target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarSpec {
    /// `!`: remove the selected members from the rule's targets.
    pub exclude: bool,
    /// `&`: the target is the number of members, not their values.
    pub count: bool,
    /// The collection or variable name, upper-cased (`ARGS`, `REQUEST_HEADERS`, `TX`).
    pub name: String,
    /// The selector after `:`, if any.
    pub key: Option<VarKey>,
}

/// The selector of a collection member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarKey {
    /// A literal name (compared case-insensitively by the engine), with quotes removed;
    /// for `XML` it is an XPath expression.
    Name(String),
    /// A regular expression written between slashes (`ARGS:/^id_/`), without the slashes.
    Regex(String),
}

/// The operator of a rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSpec {
    /// `!@op`: the result is inverted.
    pub negated: bool,
    /// The operator name without `@` (`rx`, `pm`, …); `rx` when the rule gave a bare pattern.
    pub name: String,
    /// The argument after the name with one separating space removed (may be empty).
    pub argument: String,
}

/// One action as written: `name` or `name:value`, with one level of single quotes removed
/// from the value (`msg:'x'` → `x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAction {
    /// The action name, lower-cased except where SecLang is case-sensitive (kept as written
    /// otherwise; the compiler compares case-insensitively).
    pub name: String,
    /// The value after the first `:`, if any.
    pub value: Option<String>,
}

/// A rule id or an inclusive range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first id of the range.
    pub first: u32,
    /// The last id of the range (equal to `first` for a single id).
    pub last: u32,
}

impl IdRange {
    /// Whether `id` lies in the range.
    pub fn contains(&self, id: u32) -> bool {
        (self.first..=self.last).contains(&id)
    }
}
