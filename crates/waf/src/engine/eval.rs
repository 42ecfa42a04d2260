//! Running a phase: the rule loop, rule evaluation, chains and per-match actions.

use std::borrow::Cow;
use std::sync::Arc;

use super::rule::{AllowScope, Ctl, Disruptive, EngineMode, Entry, Rule, SetOp, SetVar};
use super::state::{Value, atoi};
use super::tx::{Intervention, RuleMatch, TargetRemoval, Transaction};
use super::vars::{Scalar, Var};
use crate::operator::Captures;

/// One value on which a rule's operator matched.
struct Hit {
    name: Vec<u8>,
    value: Vec<u8>,
    captures: Option<Captures>,
}

impl Transaction {
    /// Runs every rule of `phase` in order, following skips, markers and disruptive actions.
    pub(crate) fn run_phase(&mut self, phase: u8) {
        if self.mode == EngineMode::Off || self.intervention.is_some() || self.skip_phase(phase) {
            return;
        }
        let set = Arc::clone(&self.rules);
        let entries = &set.phases[phase as usize];
        let mut i = 0;
        while i < entries.len() {
            let Entry::Rule(idx) = entries[i] else {
                i += 1;
                continue;
            };
            i += 1;
            let rule = &set.rules[idx];
            if self.removed(rule) || !self.eval_chain(rule) {
                continue;
            }
            self.record_match(rule);
            if rule.actions.skip > 0 {
                i = skip_rules(entries, i, rule.actions.skip);
            }
            if let Some(to) = rule.skip_to {
                i = to;
            }
            if self.disrupt(rule, phase) {
                break;
            }
        }
    }

    fn skip_phase(&self, phase: u8) -> bool {
        match self.allow {
            Some(AllowScope::All) => true,
            Some(AllowScope::Request) => phase <= 2,
            _ => false,
        }
    }

    fn removed(&self, rule: &Rule) -> bool {
        let id = rule.id();
        self.removed_ids.iter().any(|r| r.contains(id))
            || self.removed_tags.iter().any(|t| t.contains(rule.index))
    }

    /// Carries out the rule's disruptive action when the engine enforces; true stops the phase.
    fn disrupt(&mut self, rule: &Rule, phase: u8) -> bool {
        if self.mode != EngineMode::On {
            return false;
        }
        let status = |default: u16| rule.actions.status.unwrap_or(default);
        let message = || {
            self.matches
                .last()
                .map(|m| m.msg.clone())
                .unwrap_or_default()
        };
        let intervention = match &rule.disruptive {
            Disruptive::Pass | Disruptive::Block => return false,
            Disruptive::Allow(scope) => {
                self.allow = Some(*scope);
                return true;
            }
            Disruptive::Deny | Disruptive::Drop => Intervention {
                status: status(403),
                rule_id: rule.id(),
                phase,
                message: message(),
                redirect: None,
            },
            Disruptive::Redirect(url) => Intervention {
                status: status(302),
                rule_id: rule.id(),
                phase,
                message: message(),
                redirect: Some(url.clone()),
            },
        };
        self.intervention = Some(intervention);
        true
    }

    /// Evaluates a rule and its chain; per-match actions run as values match, the actions
    /// that need the whole chain (ctl) run once it has matched, deepest link first.
    fn eval_chain(&mut self, starter: &Rule) -> bool {
        self.data.matched_vars.clear();
        self.data.rule_id = starter.id();
        let mut link = Some(starter);
        while let Some(rule) = link {
            let hits = self.match_rule(rule, starter);
            if hits.is_empty() {
                return false;
            }
            for hit in hits {
                self.apply_hit(rule, hit);
            }
            link = rule.chained.as_deref();
        }
        self.chain_ctls(starter);
        true
    }

    /// Runs the `ctl` actions of a fully matched chain, deepest link first.
    fn chain_ctls(&mut self, rule: &Rule) {
        if let Some(next) = rule.chained.as_deref() {
            self.chain_ctls(next);
        }
        for ctl in &rule.actions.ctls {
            self.ctl(ctl);
        }
    }

    fn apply_hit(&mut self, rule: &Rule, hit: Hit) {
        const SLOTS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        if let Some(caps) = hit.captures {
            // A group that took no part leaves its TX slot as it was, as in libmodsecurity.
            for (slot, g) in SLOTS.iter().zip(&caps.groups) {
                if let Some(v) = g {
                    self.data.set_tx(slot, v);
                }
            }
        }
        if !hit.name.is_empty() {
            self.data.set_in_place(Scalar::MatchedVar, &hit.value);
            self.data.set_in_place(Scalar::MatchedVarName, &hit.name);
            self.data.matched_vars.push((hit.name, hit.value));
        }
        for sv in &rule.actions.setvars {
            self.setvar(sv);
        }
    }

    /// The values of `rule`'s targets on which its operator matches.
    fn match_rule(&self, rule: &Rule, starter: &Rule) -> Vec<Hit> {
        let Some(op) = &rule.operator else {
            return vec![Hit {
                name: Vec::new(),
                value: Vec::new(),
                captures: None,
            }];
        };
        let expanded = rule
            .argument
            .as_ref()
            .map(|m| m.expand(&self.data).into_owned());
        // The runtime target removals (ctl) that concern this rule, as a bit set: most rules
        // have none, and then no value pays for them.
        let removed = &self.removed_targets;
        let concerns = |scope: &TargetRemoval| match scope {
            TargetRemoval::Ids(ids) => ids.iter().any(|r| r.contains(starter.id())),
            TargetRemoval::Tag(tags) => tags.contains(starter.index),
        };
        let many = removed.len() > 64;
        let applies = if many {
            0
        } else {
            removed
                .iter()
                .enumerate()
                .filter(|(_, (scope, _))| concerns(scope))
                .fold(0u64, |mask, (i, _)| mask | 1 << i)
        };
        let excluded = |var: Var, key: &[u8]| {
            rule.exclusions.iter().any(|e| e.excludes(var, key))
                || (applies != 0
                    && removed
                        .iter()
                        .enumerate()
                        .any(|(i, (_, e))| applies >> i & 1 == 1 && e.excludes(var, key)))
                || (many
                    && removed
                        .iter()
                        .any(|(scope, e)| concerns(scope) && e.excludes(var, key)))
        };
        let mut hits = Vec::new();
        for target in &rule.targets {
            self.data.visit(target, &excluded, &mut |v| {
                self.match_value(rule, op, expanded.as_deref(), v, &mut hits)
            });
        }
        hits
    }

    fn match_value(
        &self,
        rule: &Rule,
        op: &crate::operator::Operator,
        expanded: Option<&[u8]>,
        v: Value<'_>,
        hits: &mut Vec<Hit>,
    ) {
        let test = |value: &[u8], hits: &mut Vec<Hit>| {
            let mut caps = (rule.actions.capture && !rule.negated).then(Captures::default);
            if op.matches(value, expanded, caps.as_mut()) != rule.negated {
                hits.push(Hit {
                    name: v.full_name(),
                    value: value.to_vec(),
                    captures: caps,
                });
                true
            } else {
                false
            }
        };
        if rule.actions.multi_match {
            let mut current: Cow<'_, [u8]> = Cow::Borrowed(&v.value);
            let mut last_tested = current.to_vec();
            test(&current, hits);
            for t in &rule.transforms {
                current = Cow::Owned(t.apply(&current).into_owned());
                if *current != *last_tested {
                    test(&current, hits);
                    last_tested = current.to_vec();
                }
            }
            return;
        }
        if rule.transforms.is_empty() {
            test(&v.value, hits);
            return;
        }
        if !v.stable {
            test(&apply_chain(&rule.transforms, &v.value), hits);
            return;
        }
        // Many rules run the same transformation chain over the same request values: the
        // result is computed once per transaction.
        let key = (v.value.as_ptr() as usize, v.value.len(), rule.chain);
        let mut cache = self.transform_cache.borrow_mut();
        let cached =
            cache
                .entry(key)
                .or_insert_with(|| match apply_chain(&rule.transforms, &v.value) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(o) => Some(o),
                });
        test(cached.as_deref().unwrap_or(&v.value), hits);
    }

    fn setvar(&mut self, sv: &SetVar) {
        let expanded;
        let name: &str = match &sv.literal_name {
            // Most names are plain text, lower-cased once at compile time.
            Some(lit) => lit,
            None => {
                expanded = sv.name.expand_string(&self.data).to_ascii_lowercase();
                &expanded
            }
        };
        match &sv.op {
            SetOp::Delete => {
                self.data.tx.remove(name);
            }
            SetOp::Set(v) => {
                let value = v.expand(&self.data);
                self.data.set_tx(name, &value);
            }
            SetOp::Add(v) | SetOp::Sub(v) => {
                // CRS's score arithmetic (`=+%{tx.critical_anomaly_score}`) reads one TX
                // variable: no expansion buffer for it.
                let delta = match v.single_var() {
                    Some(var) if var.name == "TX" => var
                        .key
                        .as_deref()
                        .and_then(|k| self.data.tx.get(k))
                        .map_or(0, |x| atoi(x)),
                    _ => atoi(&v.expand(&self.data)),
                };
                let delta = if matches!(sv.op, SetOp::Sub(_)) {
                    -delta
                } else {
                    delta
                };
                let current = self.data.tx.get(name).map_or(0, |c| atoi(c));
                let mut digits = [0u8; 24];
                let sum = format_i64(current.saturating_add(delta), &mut digits);
                self.data.set_tx(name, sum);
            }
        }
    }

    fn ctl(&mut self, ctl: &Ctl) {
        match ctl {
            Ctl::RuleEngine(m) => self.mode = *m,
            Ctl::RemoveById(ids) => self.removed_ids.extend(ids.iter().copied()),
            Ctl::RemoveByTag(tags) => self.removed_tags.push(tags.clone()),
            Ctl::RemoveTargetById(ids, e) => self
                .removed_targets
                .push((TargetRemoval::Ids(ids.clone()), Arc::clone(e))),
            Ctl::RemoveTargetByTag(tags, e) => self
                .removed_targets
                .push((TargetRemoval::Tag(tags.clone()), Arc::clone(e))),
            Ctl::RequestBodyProcessor(p) => {
                self.body_processor = Some(*p);
                self.data.set(Scalar::ReqbodyProcessor, p.name());
            }
            Ctl::RequestBodyAccess(on) => self.body_access = *on,
            Ctl::ForceRequestBodyVariable(on) => self.force_body_variable = *on,
            Ctl::Ignored => {}
        }
    }

    /// Records a full match of `rule` with its expanded message and log data.
    fn record_match(&mut self, rule: &Rule) {
        // Messages are expanded only for logged rules: the nolog bookkeeping rules match on
        // every request and nobody reads their text.
        let expand = |m: &Option<super::macros::Macro>| match m {
            Some(m) if rule.log => m.expand_string(&self.data),
            _ => String::new(),
        };
        let (msg, data) = (expand(&rule.actions.msg), expand(&rule.actions.logdata));
        let copy = |s: Scalar| match self.data.get(s) {
            Some(v) if rule.log => v.to_vec(),
            _ => Vec::new(),
        };
        let matched_var_name = String::from_utf8_lossy(&copy(Scalar::MatchedVarName)).into_owned();
        let matched_value = copy(Scalar::MatchedVar);
        self.matches.push(RuleMatch {
            id: rule.id(),
            phase: rule.phase,
            logged: rule.log,
            msg,
            data,
            severity: rule.actions.severity,
            tags: Arc::clone(&rule.actions.tags),
            matched_var_name,
            matched_value,
            disruptive: matches!(
                rule.disruptive,
                Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect(_)
            ),
        });
    }
}

/// Writes `n` in decimal into `buf` (without allocating) and returns the digits.
fn format_i64(n: i64, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Applies a transformation chain, copying only when a step changes the value.
fn apply_chain<'a>(chain: &[crate::transform::Transform], value: &'a [u8]) -> Cow<'a, [u8]> {
    let mut current: Cow<'a, [u8]> = Cow::Borrowed(value);
    for t in chain {
        if let Cow::Owned(o) = t.apply(&current) {
            current = Cow::Owned(o);
        }
    }
    current
}

/// The entry index after skipping `n` rules from `i` (markers do not count).
fn skip_rules(entries: &[Entry], mut i: usize, mut n: u32) -> usize {
    while i < entries.len() && n > 0 {
        if matches!(entries[i], Entry::Rule(_)) {
            n -= 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::format_i64;

    proptest::proptest! {
        #[test]
        fn decimal_formatting_agrees_with_std(n: i64) {
            let mut buf = [0u8; 24];
            let expected = n.to_string();
            proptest::prop_assert_eq!(format_i64(n, &mut buf), expected.as_bytes());
        }
    }
}
