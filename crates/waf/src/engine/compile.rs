//! From parsed directives to a [`RuleSet`]: defaults, chains, markers and exclusions.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;

use super::actions::compile_actions;
use super::rule::{Actions, Ctl, Disruptive, EngineMode, Entry, Rule, TagRules};
use super::settings::Settings;
use super::vars::{compile_exclusion, compile_target};
use crate::error::WafError;
use crate::operator::{OpContext, Operator};
use crate::parse::ast::{Directive, IdRange, Located, Location, RuleDecl, VarSpec};

/// A compiled rule set plus its engine settings. Immutable and shared by transactions.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    /// Per phase (index 1–5) the rules and markers in file order.
    pub(crate) phases: [Vec<Entry>; 6],
    pub(crate) settings: Settings,
}

impl RuleSet {
    /// Starts a rule set.
    pub fn builder() -> super::RuleSetBuilder {
        super::RuleSetBuilder::default()
    }

    /// `SecRuleEngine` as configured.
    pub fn engine_mode(&self) -> EngineMode {
        self.settings.engine
    }

    /// The engine settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The number of rules (a chain counts once).
    pub fn rule_count(&self) -> usize {
        self.phases
            .iter()
            .flatten()
            .filter(|e| matches!(e, Entry::Rule(_)))
            .count()
    }
}

/// Directives that change rules defined anywhere in the set; libmodsecurity applies them
/// whatever their position, so they are kept aside and applied last.
enum Change {
    RemoveById(Vec<IdRange>),
    RemoveByTag(regex::Regex),
    RemoveByMsg(regex::Regex),
    UpdateTarget {
        ids: Vec<IdRange>,
        tag: Option<String>,
        targets: Vec<VarSpec>,
        replaced: Option<VarSpec>,
    },
}

/// Compiles directives in order into a rule set.
pub(crate) fn compile(directives: &[Located]) -> Result<RuleSet, WafError> {
    let mut c = Compiler::default();
    for d in directives {
        c.directive(d).map_err(|message| WafError::Compile {
            at: d.at.clone(),
            message,
        })?;
    }
    if let Some(open) = c.open_chain.take() {
        return Err(WafError::Compile {
            at: open.1,
            message: "the last rule has the chain action but no rule follows it".into(),
        });
    }
    c.finish()
}

#[derive(Default)]
struct Compiler {
    rules: Vec<Rule>,
    phases: [Vec<Entry>; 6],
    defaults: [Option<Actions>; 6],
    settings: Settings,
    changes: Vec<(Location, Change)>,
    /// The rule whose chain is still open (index into `rules`) and where it started.
    open_chain: Option<(usize, Location)>,
    ids: HashMap<u32, Location>,
}

impl Compiler {
    fn directive(&mut self, d: &Located) -> Result<(), String> {
        if !matches!(d.directive, Directive::Rule(_)) && self.open_chain.is_some() {
            return Err("a chained rule must follow a rule with the chain action".into());
        }
        match &d.directive {
            Directive::Rule(decl) => self.rule(&d.at, decl)?,
            Directive::Action(actions) => {
                let decl = RuleDecl {
                    variables: Vec::new(),
                    operator: crate::parse::ast::OperatorSpec {
                        negated: false,
                        name: "unconditionalMatch".into(),
                        argument: String::new(),
                    },
                    actions: actions.clone(),
                };
                self.rule(&d.at, &decl)?;
            }
            Directive::Marker(name) => {
                for phase in 1..=5 {
                    self.phases[phase].push(Entry::Marker(name.clone()));
                }
            }
            Directive::DefaultAction(raw) => {
                let a = compile_actions(raw)?;
                let phase = a.phase.ok_or("SecDefaultAction needs a phase")?;
                if a.disruptive.is_none() {
                    return Err("SecDefaultAction needs a disruptive action (pass, deny, …)".into());
                }
                self.defaults[phase as usize] = Some(a);
            }
            Directive::UpdateTargetById {
                ids,
                targets,
                replaced,
            } => self.changes.push((
                d.at.clone(),
                Change::UpdateTarget {
                    ids: ids.clone(),
                    tag: None,
                    targets: targets.clone(),
                    replaced: replaced.clone(),
                },
            )),
            Directive::UpdateTargetByTag { tag, targets } => self.changes.push((
                d.at.clone(),
                Change::UpdateTarget {
                    ids: Vec::new(),
                    tag: Some(tag.clone()),
                    targets: targets.clone(),
                    replaced: None,
                },
            )),
            Directive::UpdateActionById { id, actions } => self.update_actions(*id, actions)?,
            Directive::RemoveById(ids) => self
                .changes
                .push((d.at.clone(), Change::RemoveById(ids.clone()))),
            Directive::RemoveByTag(t) => self
                .changes
                .push((d.at.clone(), Change::RemoveByTag(regex(t)?))),
            Directive::RemoveByMsg(m) => self
                .changes
                .push((d.at.clone(), Change::RemoveByMsg(regex(m)?))),
            Directive::Setting { name, args } => self.settings.apply(name, args)?,
        }
        Ok(())
    }

    fn rule(&mut self, at: &Location, decl: &RuleDecl) -> Result<(), String> {
        let actions = compile_actions(&decl.actions)?;
        let is_link = self.open_chain.is_some();
        let phase = match (&self.open_chain, actions.phase) {
            (Some((parent, _)), _) => self.rules[*parent].phase,
            (None, p) => p.unwrap_or(2),
        };
        if !is_link {
            if actions.id == 0 {
                return Err("rule has no id action".into());
            }
            if let Some(first) = self.ids.insert(actions.id, at.clone()) {
                return Err(format!("rule id {} is already used at {first}", actions.id));
            }
        }
        let index = match &self.open_chain {
            Some((parent, _)) => *parent,
            None => self.rules.len(),
        };
        let mut rule = build_rule(
            decl,
            actions,
            phase,
            self.defaults[phase as usize].as_ref(),
            &at.file,
        )?;
        rule.index = index;
        let chains = rule.actions.chain;
        match self.open_chain.take() {
            Some((parent, start)) => {
                let mut tail = &mut self.rules[parent];
                while tail.chained.is_some() {
                    tail = tail.chained.as_mut().expect("checked");
                }
                tail.chained = Some(Box::new(rule));
                if chains {
                    self.open_chain = Some((parent, start));
                }
            }
            None => {
                self.rules.push(rule);
                let idx = self.rules.len() - 1;
                self.phases[phase as usize].push(Entry::Rule(idx));
                if chains {
                    self.open_chain = Some((idx, at.clone()));
                }
            }
        }
        Ok(())
    }

    fn update_actions(
        &mut self,
        id: u32,
        raw: &[crate::parse::ast::RawAction],
    ) -> Result<(), String> {
        let new = compile_actions(raw)?;
        let rule = self
            .rules
            .iter_mut()
            .find(|r| r.id() == id)
            .ok_or_else(|| format!("SecRuleUpdateActionById: no rule {id}"))?;
        if let Some(d) = new.disruptive {
            rule.disruptive = d;
        }
        if new.msg.is_some() {
            rule.actions.msg = new.msg;
        }
        if new.logdata.is_some() {
            rule.actions.logdata = new.logdata;
        }
        if let Some(l) = new.log {
            rule.log = l;
        }
        if new.severity.is_some() {
            rule.actions.severity = new.severity;
        }
        rule.actions.tags = rule
            .actions
            .tags
            .iter()
            .chain(new.tags.iter())
            .cloned()
            .collect();
        rule.actions.setvars.extend(new.setvars);
        Ok(())
    }

    fn finish(mut self) -> Result<RuleSet, WafError> {
        let mut removed = vec![false; self.rules.len()];
        for (at, change) in std::mem::take(&mut self.changes) {
            self.apply_change(&change, &mut removed)
                .map_err(|message| WafError::Compile { at, message })?;
        }
        for list in &mut self.phases {
            list.retain(|e| !matches!(e, Entry::Rule(i) if removed[*i]));
        }
        resolve_tags(&mut self.rules);
        intern_chains(&mut self.rules);
        resolve_skips(&mut self.rules, &self.phases);
        Ok(RuleSet {
            rules: self.rules,
            phases: self.phases,
            settings: self.settings,
        })
    }

    fn apply_change(&mut self, change: &Change, removed: &mut [bool]) -> Result<(), String> {
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let id = rule.id();
            match change {
                Change::RemoveById(ids) => removed[i] |= ids.iter().any(|r| r.contains(id)),
                Change::RemoveByTag(re) => {
                    removed[i] |= rule.actions.tags.iter().any(|t| re.is_match(t))
                }
                Change::RemoveByMsg(re) => {
                    removed[i] |= rule
                        .actions
                        .msg
                        .as_ref()
                        .and_then(|m| m.literal())
                        .is_some_and(|m| re.is_match(&String::from_utf8_lossy(m)));
                }
                Change::UpdateTarget {
                    ids,
                    tag,
                    targets,
                    replaced,
                } => {
                    let selected = ids.iter().any(|r| r.contains(id))
                        || tag
                            .as_ref()
                            .is_some_and(|t| rule.actions.tags.iter().any(|rt| rt == t));
                    if selected {
                        update_targets(rule, targets, replaced.as_ref())?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn update_targets(
    rule: &mut Rule,
    targets: &[VarSpec],
    replaced: Option<&VarSpec>,
) -> Result<(), String> {
    if let Some(old) = replaced {
        let old = compile_target(old)?;
        rule.targets.retain(|t| t.var != old.var);
    }
    for spec in targets {
        if spec.exclude {
            rule.exclusions.push(compile_exclusion(spec)?);
        } else {
            rule.targets.push(compile_target(spec)?);
        }
    }
    Ok(())
}

fn regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| format!("invalid regular expression {text:?}: {e}"))
}

fn build_rule(
    decl: &RuleDecl,
    actions: Actions,
    phase: u8,
    defaults: Option<&Actions>,
    file: &str,
) -> Result<Rule, String> {
    let mut targets = Vec::new();
    let mut exclusions = Vec::new();
    for spec in &decl.variables {
        if spec.exclude {
            exclusions.push(compile_exclusion(spec)?);
        } else {
            targets.push(compile_target(spec)?);
        }
    }
    let base_dir = Path::new(file).parent().unwrap_or(Path::new("."));
    let op = &decl.operator;
    let operator = Operator::compile(&op.name, &op.argument, &OpContext { base_dir })
        .map_err(|e| e.to_string())?;
    let mut transforms = Vec::new();
    let default_ts = defaults
        .map(|d| d.transforms.as_slice())
        .unwrap_or_default();
    for t in default_ts.iter().chain(&actions.transforms) {
        match t {
            Some(t) => transforms.push(*t),
            None => transforms.clear(),
        }
    }
    let log = actions.log.or(defaults.and_then(|d| d.log)).unwrap_or(true);
    let default_disruptive = defaults
        .and_then(|d| d.disruptive.clone())
        .unwrap_or(Disruptive::Pass);
    let disruptive = match actions.disruptive.clone() {
        None | Some(Disruptive::Block) => default_disruptive,
        Some(d) => d,
    };
    let is_action = decl.variables.is_empty();
    let argument = operator
        .has_macros()
        .then(|| super::macros::Macro::parse(operator.argument()));
    Ok(Rule {
        index: 0,
        skip_to: None,
        chain: 0,
        argument,
        phase,
        targets,
        exclusions,
        transforms,
        operator: (!is_action).then_some(operator),
        negated: op.negated,
        actions,
        log,
        disruptive,
        chained: None,
    })
}

/// Resolves every `ctl` tag selection to the rules carrying the tag.
fn resolve_tags(rules: &mut [Rule]) {
    let tags: Vec<Arc<[String]>> = rules.iter().map(|r| Arc::clone(&r.actions.tags)).collect();
    let select = |t: &mut TagRules| {
        t.rules = Arc::new(tags.iter().map(|rt| rt.contains(&t.tag)).collect());
    };
    for rule in rules.iter_mut() {
        let mut link = Some(rule);
        while let Some(r) = link {
            for ctl in &mut r.actions.ctls {
                match ctl {
                    Ctl::RemoveByTag(t) | Ctl::RemoveTargetByTag(t, _) => select(t),
                    _ => {}
                }
            }
            link = r.chained.as_deref_mut();
        }
    }
}

/// Numbers each distinct transformation chain, so equal chains share cached results.
fn intern_chains(rules: &mut [Rule]) {
    let mut ids: HashMap<Vec<crate::transform::Transform>, u32> = HashMap::new();
    for rule in rules.iter_mut() {
        let mut link = Some(rule);
        while let Some(r) = link {
            let next = ids.len() as u32;
            r.chain = *ids.entry(r.transforms.clone()).or_insert(next);
            link = r.chained.as_deref_mut();
        }
    }
}

/// Resolves each `skipAfter` to the index in its phase's list where evaluation resumes:
/// after the first marker of that name if it comes later, else the end of the phase (as
/// libmodsecurity, which never jumps backwards).
fn resolve_skips(rules: &mut [Rule], phases: &[Vec<Entry>; 6]) {
    for list in phases {
        let mut markers: HashMap<&str, usize> = HashMap::new();
        for (i, e) in list.iter().enumerate().rev() {
            if let Entry::Marker(m) = e {
                markers.insert(m, i);
            }
        }
        for (pos, e) in list.iter().enumerate() {
            let Entry::Rule(idx) = e else { continue };
            let rule = &mut rules[*idx];
            if let Some(name) = &rule.actions.skip_after {
                rule.skip_to = Some(match markers.get(name.as_str()) {
                    Some(&m) if m > pos => m + 1,
                    _ => list.len(),
                });
            }
        }
    }
}
