//! WebApplicationFirewall rules, shared with `ProxyConfig`'s `spec.waf`.

use super::{Problems, workload_selector};
use crate::field::{FieldError, FieldPath};
use crate::kinds::waf::{
    MAX_BODY_LIMIT, RuleIdSpec, WafExclusionSpec, WafSpec, WebApplicationFirewall,
};
use crate::waf::{check_path, parse_target};

/// The most `exclusions` one firewall takes (each becomes one rule or directive).
pub const MAX_EXCLUSIONS: usize = 1000;
/// The most entries of each list of one exclusion (`ruleIds`, `paths`, `targets`).
pub const MAX_EXCLUSION_ENTRIES: usize = 100;

/// Checks a WebApplicationFirewall resource (`spec` is its path).
pub(super) fn validate(v: &mut Problems, waf: &WebApplicationFirewall, spec: &FieldPath) {
    if let Some(selector) = &waf.spec.selector {
        workload_selector(v, selector, &spec.key("selector"));
    }
    v.0.extend(waf_spec(&waf.spec.waf(), spec));
}

/// Every problem of firewall settings whose fields sit under `at` (`spec` of a
/// WebApplicationFirewall, `spec.waf` of a ProxyConfig).
pub fn waf_spec(spec: &WafSpec, at: &FieldPath) -> Vec<FieldError> {
    let mut v = Problems::default();
    if let Some(level) = spec.paranoia_level.filter(|l| !(1..=4).contains(l)) {
        v.add(
            at.key("paranoiaLevel"),
            format!("{level} is not a paranoia level; expected 1, 2, 3 or 4"),
        );
    }
    if let Some(t) = &spec.anomaly_thresholds {
        let at = at.key("anomalyThresholds");
        for (field, value) in [("inbound", t.inbound), ("outbound", t.outbound)] {
            if value == Some(0) {
                v.add(
                    at.key(field),
                    "must be at least 1 (every score reaches 0, so 0 would block everything)",
                );
            }
        }
    }
    let limits = [
        ("requestBodyLimitBytes", spec.request_body_limit_bytes),
        ("responseBodyLimitBytes", spec.response_body_limit_bytes),
    ];
    for (field, value) in limits {
        match value {
            Some(0) => v.add(at.key(field), "must be at least 1"),
            Some(n) if n > MAX_BODY_LIMIT => v.add(
                at.key(field),
                format!("{n} is more than the limit of {MAX_BODY_LIMIT} (16 MiB)"),
            ),
            _ => {}
        }
    }
    if let Some(methods) = &spec.allowed_methods {
        allowed_methods(&mut v, methods, &at.key("allowedMethods"));
    }
    if spec.exclusions.len() > MAX_EXCLUSIONS {
        v.add(
            at.key("exclusions"),
            format!(
                "{} exclusions are more than the limit of {MAX_EXCLUSIONS}",
                spec.exclusions.len()
            ),
        );
    }
    for (i, e) in spec.exclusions.iter().enumerate() {
        exclusion(&mut v, e, &at.key("exclusions").index(i));
    }
    v.0
}

/// Methods as CRS compares them: upper-case tokens, space-separated in
/// `tx.allowed_methods`.
fn allowed_methods(v: &mut Problems, methods: &[String], at: &FieldPath) {
    if methods.is_empty() {
        v.add(
            at.clone(),
            "must list at least one method (an empty list would refuse every request)",
        );
    }
    for (i, m) in methods.iter().enumerate() {
        let token = !m.is_empty() && m.len() <= 32 && m.bytes().all(|b| b.is_ascii_uppercase());
        if !token {
            v.add(
                at.index(i),
                format!("`{m}` is not a method; expected upper-case letters such as PUT"),
            );
        } else if methods[..i].contains(m) {
            v.add(at.index(i), format!("`{m}` is listed twice"));
        }
    }
}

fn exclusion(v: &mut Problems, e: &WafExclusionSpec, at: &FieldPath) {
    if e.rule_ids.is_empty() && e.targets.is_empty() {
        v.add(
            at.clone(),
            "an exclusion needs ruleIds (rules to remove), targets (variables to take out of \
             every rule) or both (variables to take out of those rules)",
        );
    }
    let lists = [
        ("ruleIds", e.rule_ids.len()),
        ("paths", e.paths.len()),
        ("targets", e.targets.len()),
    ];
    for (field, len) in lists {
        if len > MAX_EXCLUSION_ENTRIES {
            v.add(
                at.key(field),
                format!("{len} entries are more than the limit of {MAX_EXCLUSION_ENTRIES}"),
            );
        }
    }
    for (j, id) in e.rule_ids.iter().enumerate() {
        rule_id(v, *id, e, &at.key("ruleIds").index(j));
    }
    for (j, path) in e.paths.iter().enumerate() {
        if let Err(message) = check_path(path) {
            v.add(at.key("paths").index(j), message);
        }
    }
    for (j, target) in e.targets.iter().enumerate() {
        if let Err(message) = parse_target(target) {
            v.add(at.key("targets").index(j), message);
        }
    }
}

fn rule_id(v: &mut Problems, id: RuleIdSpec, e: &WafExclusionSpec, at: &FieldPath) {
    let (first, last) = id.bounds();
    if first == 0 {
        v.add(at.clone(), "rule ids start at 1");
    }
    if first > last {
        v.add(
            at.clone(),
            format!("the range {id} is empty; write the lower id first ({last}-{first})"),
        );
    }
    // ctl:ruleRemoveTargetById, which path-scoped target exclusions render to, takes a
    // single id (as in ModSecurity).
    if matches!(id, RuleIdSpec::Range(..)) && !e.paths.is_empty() && !e.targets.is_empty() {
        v.add(
            at.clone(),
            format!(
                "a range cannot be combined with both paths and targets (the rule that takes \
                 a target out of a rule for one request names a single rule id); list the \
                 ids, or leave out paths to apply it everywhere ({id})"
            ),
        );
    }
}
