//! Compiled rules: what the evaluator walks on the data path.

use std::sync::Arc;

use super::macros::Macro;
use super::vars::{Exclusion, Target};
use crate::operator::Operator;
use crate::parse::ast::IdRange;
use crate::transform::Transform;

/// SecRuleEngine: whether rules run and whether disruptive actions are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    /// Rules run and disruptive actions stop the transaction.
    On,
    /// Rules do not run.
    Off,
    /// Rules run and log; nothing is blocked.
    DetectionOnly,
}

impl EngineMode {
    /// Parses the SecLang spelling (`On`, `Off`, `DetectionOnly`), case-insensitively.
    pub fn parse(text: &str) -> Option<EngineMode> {
        match text.to_ascii_lowercase().as_str() {
            "on" => Some(EngineMode::On),
            "off" => Some(EngineMode::Off),
            "detectiononly" => Some(EngineMode::DetectionOnly),
            _ => None,
        }
    }
}

/// The request body processor chosen for a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyProcessor {
    /// application/x-www-form-urlencoded.
    UrlEncoded,
    /// multipart/form-data.
    Multipart,
    /// JSON (chosen by a `ctl:requestBodyProcessor=JSON` rule).
    Json,
    /// XML (chosen by a `ctl:requestBodyProcessor=XML` rule).
    Xml,
}

impl BodyProcessor {
    /// The value of the REQBODY_PROCESSOR variable.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Xml => "XML",
        }
    }

    /// Parses a `ctl:requestBodyProcessor` value.
    pub(crate) fn parse(text: &str) -> Option<BodyProcessor> {
        match text.to_ascii_uppercase().as_str() {
            "URLENCODED" => Some(BodyProcessor::UrlEncoded),
            "MULTIPART" => Some(BodyProcessor::Multipart),
            "JSON" => Some(BodyProcessor::Json),
            "XML" => Some(BodyProcessor::Xml),
            _ => None,
        }
    }
}

/// A disruptive action as written on a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disruptive {
    /// Continue with the next rule.
    Pass,
    /// Resolved to the phase's default disruptive action when the rule runs.
    Block,
    /// Stop with an HTTP error (the rule's `status`, 403 by default).
    Deny,
    /// Stop and close the connection (reported as a deny with the rule's status).
    Drop,
    /// Stop inspecting: the rest of the phase, or the request phases, or everything.
    Allow(AllowScope),
    /// Stop with a redirect to the (macro-expanded) location.
    Redirect(String),
}

/// How far `allow` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowScope {
    /// `allow`: skip every remaining rule of every phase.
    All,
    /// `allow:phase`: skip the rest of the current phase.
    Phase,
    /// `allow:request`: skip the rest of the request phases (1 and 2).
    Request,
}

/// A `setvar` action on the TX collection.
#[derive(Debug, Clone)]
pub(crate) struct SetVar {
    /// The variable name (macro-expanded, then lower-cased).
    pub(crate) name: Macro,
    /// The name lower-cased, when it has no macros.
    pub(crate) literal_name: Option<String>,
    /// What to do with it.
    pub(crate) op: SetOp,
}

/// The operation of a `setvar`.
#[derive(Debug, Clone)]
pub(crate) enum SetOp {
    /// `name=value`.
    Set(Macro),
    /// `name=+value`.
    Add(Macro),
    /// `name=-value`.
    Sub(Macro),
    /// `!name`.
    Delete,
}

/// A `ctl` action: a change to this transaction's configuration.
#[derive(Debug, Clone)]
pub(crate) enum Ctl {
    /// `ctl:ruleEngine=…`.
    RuleEngine(EngineMode),
    /// `ctl:ruleRemoveById=…`.
    RemoveById(Vec<IdRange>),
    /// `ctl:ruleRemoveByTag=…`.
    RemoveByTag(TagRules),
    /// `ctl:ruleRemoveTargetById=ID;TARGET`.
    RemoveTargetById(Vec<IdRange>, Arc<Exclusion>),
    /// `ctl:ruleRemoveTargetByTag=TAG;TARGET`.
    RemoveTargetByTag(TagRules, Arc<Exclusion>),
    /// `ctl:requestBodyProcessor=…`.
    RequestBodyProcessor(BodyProcessor),
    /// `ctl:requestBodyAccess=on|off`.
    RequestBodyAccess(bool),
    /// `ctl:forceRequestBodyVariable=on|off`.
    ForceRequestBodyVariable(bool),
    /// A ctl that only concerns auditing (`auditEngine`, `auditLogParts`): no effect here.
    Ignored,
}

/// The rules carrying a tag (compared exactly, as libmodsecurity's ctl does), resolved
/// once when the rule set is compiled so that transactions never compare tags.
#[derive(Debug, Clone)]
pub(crate) struct TagRules {
    /// The tag as written.
    pub(crate) tag: String,
    /// Per rule index: whether the rule carries the tag.
    pub(crate) rules: Arc<Vec<bool>>,
}

impl TagRules {
    /// A selection not resolved yet.
    pub(crate) fn new(tag: &str) -> TagRules {
        TagRules {
            tag: tag.trim().to_string(),
            rules: Arc::new(Vec::new()),
        }
    }

    /// Whether the rule at `index` carries the tag.
    pub(crate) fn contains(&self, index: usize) -> bool {
        self.rules.get(index).copied().unwrap_or(false)
    }
}

/// The actions of one rule (or one link of a chain), compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Actions {
    /// `id`, 0 for chain links.
    pub(crate) id: u32,
    /// `phase`, if given.
    pub(crate) phase: Option<u8>,
    /// `msg`.
    pub(crate) msg: Option<Macro>,
    /// `logdata`.
    pub(crate) logdata: Option<Macro>,
    /// `severity` as a number (0 emergency … 7 debug).
    pub(crate) severity: Option<u8>,
    /// `tag`s (shared with the matches that report them).
    pub(crate) tags: Arc<[String]>,
    /// `log` (Some(true)) or `nolog` (Some(false)).
    pub(crate) log: Option<bool>,
    /// `capture`.
    pub(crate) capture: bool,
    /// `multiMatch`.
    pub(crate) multi_match: bool,
    /// `chain`.
    pub(crate) chain: bool,
    /// The disruptive action, if any.
    pub(crate) disruptive: Option<Disruptive>,
    /// `status`.
    pub(crate) status: Option<u16>,
    /// `skip`.
    pub(crate) skip: u32,
    /// `skipAfter`.
    pub(crate) skip_after: Option<String>,
    /// `setvar`s in order.
    pub(crate) setvars: Vec<SetVar>,
    /// `ctl`s in order.
    pub(crate) ctls: Vec<Ctl>,
    /// `t:` transformations; `None` entries stand for `t:none` and are resolved at compile time.
    pub(crate) transforms: Vec<Option<Transform>>,
}

/// One compiled rule, with its chain.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The index of the rule (of the chain's first rule for links) in the rule set.
    pub(crate) index: usize,
    /// Where `skipAfter` resumes in the rule's phase list (resolved at compile time).
    pub(crate) skip_to: Option<usize>,
    /// The rule's phase (1–5).
    pub(crate) phase: u8,
    /// The variables to inspect; empty for `SecAction`.
    pub(crate) targets: Vec<Target>,
    /// The variables removed from every target (`!ARGS:foo`), as written.
    pub(crate) exclusions: Vec<Exclusion>,
    /// The effective transformations.
    pub(crate) transforms: Vec<Transform>,
    /// The id of this transformation chain (equal chains share it), for the cache.
    pub(crate) chain: u32,
    /// The operator; None for `SecAction`.
    pub(crate) operator: Option<Operator>,
    /// The operator's argument when it holds macros, expanded per evaluation.
    pub(crate) argument: Option<Macro>,
    /// `!@op`.
    pub(crate) negated: bool,
    /// The actions.
    pub(crate) actions: Actions,
    /// Whether a full match is logged (rule, then default action, then `log`).
    pub(crate) log: bool,
    /// The disruptive action after resolving the phase default.
    pub(crate) disruptive: Disruptive,
    /// The next link of the chain.
    pub(crate) chained: Option<Box<Rule>>,
}

impl Rule {
    /// The rule's id (0 for chain links).
    pub(crate) fn id(&self) -> u32 {
        self.actions.id
    }
}

/// One entry of a phase's rule list.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A rule (the index into the rule set's rules).
    Rule(usize),
    /// A `SecMarker`.
    Marker(String),
}
