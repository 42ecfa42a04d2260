//! Authorization layer: Istio AuthorizationPolicy with sidecar semantics.

mod check;
mod compile;

use bulkhead_resources::{Action, AuthorizationPolicy, DRY_RUN_ANNOTATION, Service};

use check::Check;
pub(crate) use check::{Attrs, HttpAttrs};
use compile::RuleCompiler;

use crate::PolicyError;
use crate::labels::{Interner, LabelSet, Selector};
use crate::trust::TrustDomains;

/// Index of a compiled AuthorizationPolicy.
pub(crate) type ApId = u32;

/// Which workloads a policy applies to (within its namespace, or mesh-wide from the root).
#[derive(Debug)]
enum Scope {
    All,
    Selector(Selector),
    Services(Vec<Selector>),
}

/// One compiled AuthorizationPolicy.
#[derive(Debug)]
pub(crate) struct CompiledAuthz {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) dry_run: bool,
    scope: Scope,
    rules: Vec<CompiledRule>,
}

/// One rule: any `from` entry, any `to` entry, every `when` condition.
#[derive(Debug)]
struct CompiledRule {
    from: Vec<Vec<Check>>,
    to: Vec<Vec<Check>>,
    when: Vec<Check>,
    /// The rule reads HTTP-only attributes somewhere.
    http_only: bool,
}

/// Why a rule did not match, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleMiss {
    /// An ALLOW rule using HTTP-only fields, evaluated on a plain connection.
    HttpOnTcp,
    /// No `from` entry matched; the field is the first one that failed in the first entry.
    From(String),
    /// No `to` entry matched.
    To(String),
    /// A `when` condition failed.
    When(String),
}

impl std::fmt::Display for RuleMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleMiss::HttpOnTcp => {
                f.write_str("uses HTTP-only fields, which never match a plain connection")
            }
            RuleMiss::From(field) => write!(f, "no `from` entry matched (source.{field})"),
            RuleMiss::To(field) => write!(f, "no `to` entry matched (operation.{field})"),
            RuleMiss::When(field) => write!(f, "condition {field} failed"),
        }
    }
}

impl CompiledAuthz {
    /// Compiles `ap`; `services` are the Services of its namespace, for `targetRefs`.
    pub(crate) fn compile(
        ap: &AuthorizationPolicy,
        services: &[&Service],
        interner: &mut Interner,
        trust: &TrustDomains,
    ) -> Result<Self, PolicyError> {
        let name = format!(
            "AuthorizationPolicy/{}/{}",
            ap.metadata.namespace_or_default(),
            ap.metadata.name
        );
        if ap.spec.action == Action::Custom {
            return Err(PolicyError::Invalid {
                policy: name,
                message: "action CUSTOM is not supported yet".into(),
            });
        }
        let compiler = RuleCompiler {
            policy: &name,
            trust,
        };
        let rules = ap
            .spec
            .rules
            .iter()
            .map(|r| {
                let from = r
                    .from
                    .iter()
                    .map(|f| compiler.source(&f.source))
                    .collect::<Result<Vec<_>, _>>()?;
                let to =
                    r.to.iter()
                        .map(|t| compiler.operation(&t.operation))
                        .collect::<Result<Vec<_>, _>>()?;
                let mut when = Vec::new();
                for c in &r.when {
                    when.extend(compiler.condition(c)?);
                }
                let http_only = from
                    .iter()
                    .chain(to.iter())
                    .flatten()
                    .chain(when.iter())
                    .any(|c| c.matcher.http_only());
                Ok(CompiledRule {
                    from,
                    to,
                    when,
                    http_only,
                })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let scope = compile_scope(ap, services, interner);
        Ok(CompiledAuthz {
            dry_run: ap
                .metadata
                .annotations
                .get(DRY_RUN_ANNOTATION)
                .is_some_and(|v| v == "true"),
            action: ap.spec.action,
            name,
            scope,
            rules,
        })
    }

    /// Whether the policy applies to a workload with `labels` (namespace already checked).
    pub(crate) fn selects(&self, labels: &LabelSet) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Selector(s) => s.matches(labels),
            Scope::Services(sels) => sels.iter().any(|s| s.matches(labels)),
        }
    }

    /// Index of the first rule that matches, if any.
    pub(crate) fn first_match(&self, a: &Attrs<'_>) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.check(a, self.action).is_ok())
    }

    /// Every rule's outcome, for explanations.
    pub(crate) fn rule_outcomes(&self, a: &Attrs<'_>) -> Vec<Result<(), RuleMiss>> {
        self.rules.iter().map(|r| r.check(a, self.action)).collect()
    }
}

fn compile_scope(
    ap: &AuthorizationPolicy,
    services: &[&Service],
    interner: &mut Interner,
) -> Scope {
    if let Some(sel) = &ap.spec.selector {
        return Scope::Selector(Selector::compile_workload(sel, interner));
    }
    let refs: Vec<_> = ap
        .spec
        .target_ref
        .iter()
        .chain(&ap.spec.target_refs)
        .collect();
    if refs.is_empty() {
        return Scope::All;
    }
    // A Service without a selector has no endpoints of its own, so it selects nothing.
    let sels = refs
        .iter()
        .filter_map(|r| services.iter().find(|s| s.metadata.name == r.name))
        .filter(|s| !s.spec.selector.is_empty())
        .map(|s| Selector::compile_labels(&s.spec.selector, interner))
        .collect();
    Scope::Services(sels)
}

impl CompiledRule {
    fn check(&self, a: &Attrs<'_>, action: Action) -> Result<(), RuleMiss> {
        let plain = a.http.is_none();
        if plain && self.http_only && action == Action::Allow {
            return Err(RuleMiss::HttpOnTcp);
        }
        // On a plain connection DENY and AUDIT rules drop their HTTP-only parts (fail closed).
        let holds = |c: &Check| (plain && c.matcher.http_only()) || c.holds(a);
        let first_failure = |cs: &[Check]| {
            cs.iter()
                .find(|c| !holds(c))
                .map(|c| c.field.clone())
                .unwrap_or_default()
        };
        if !self.from.is_empty() && !self.from.iter().any(|cs| cs.iter().all(holds)) {
            return Err(RuleMiss::From(first_failure(&self.from[0])));
        }
        if !self.to.is_empty() && !self.to.iter().any(|cs| cs.iter().all(holds)) {
            return Err(RuleMiss::To(first_failure(&self.to[0])));
        }
        if let Some(c) = self.when.iter().find(|c| !holds(c)) {
            return Err(RuleMiss::When(c.field.clone()));
        }
        Ok(())
    }
}
