//! AuthorizationPolicy rules, as Istio validates them, plus what Bulkhead does not support.

use bulkhead_matchers::cidr::parse_cidr;
use bulkhead_matchers::path::PathPattern;

use super::{Problems, workload_selector};
use crate::field::FieldPath;
use crate::kinds::istio::{Action, Condition, Operation, PolicyTargetRef, Rule, Source};
use crate::meta::ObjectMeta;
use crate::{AuthorizationPolicy, DRY_RUN_ANNOTATION};

/// The `when` keys Bulkhead evaluates, as listed in error messages.
const WHEN_KEYS: &str = "request.headers[<name>], source.ip, remote.ip, source.namespace, \
     source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, \
     request.auth.claims[<name>] (nested: [<a>][<b>]...), destination.ip, destination.port, \
     connection.sni";

pub(super) fn validate(v: &mut Problems, ap: &AuthorizationPolicy) {
    dry_run(v, &ap.metadata);
    let spec = FieldPath::root().key("spec");
    let s = &ap.spec;
    targets(v, ap, &spec);
    if let Some(selector) = &s.selector {
        workload_selector(v, selector, &spec.key("selector"));
    }
    if s.action == Action::Custom {
        v.add(
            spec.key("action"),
            "action CUSTOM is not supported yet; use ALLOW, DENY or AUDIT",
        );
    } else if s.provider.is_some() {
        v.add(
            spec.key("provider"),
            "provider is only allowed with action CUSTOM",
        );
    }
    for (i, rule) in s.rules.iter().enumerate() {
        self::rule(v, rule, &spec.key("rules").index(i));
    }
}

fn dry_run(v: &mut Problems, meta: &ObjectMeta) {
    let value = meta.annotations.get(DRY_RUN_ANNOTATION);
    if let Some(value) = value.filter(|x| !matches!(x.as_str(), "true" | "false")) {
        let at = FieldPath::root().key("metadata").key("annotations");
        v.add(
            at.key(DRY_RUN_ANNOTATION),
            format!("must be \"true\" or \"false\", found `{value}`"),
        );
    }
}

fn targets(v: &mut Problems, ap: &AuthorizationPolicy, spec: &FieldPath) {
    let s = &ap.spec;
    let has_refs = s.target_ref.is_some() || !s.target_refs.is_empty();
    let refs_field = match s.target_ref {
        Some(_) => "targetRef",
        None => "targetRefs",
    };
    if s.target_ref.is_some() && !s.target_refs.is_empty() {
        v.add(
            spec.key("targetRef"),
            "targetRef and targetRefs cannot both be set; use targetRefs",
        );
    }
    if s.selector.is_some() && has_refs {
        v.add(
            spec.key(refs_field),
            "selector and targetRef/targetRefs cannot both be set; use one of them",
        );
    }
    let namespace = ap.metadata.namespace_or_default();
    if let Some(target) = &s.target_ref {
        target_ref(v, target, &spec.key("targetRef"), namespace);
    }
    for (i, target) in s.target_refs.iter().enumerate() {
        target_ref(v, target, &spec.key("targetRefs").index(i), namespace);
    }
}

fn target_ref(v: &mut Problems, target: &PolicyTargetRef, at: &FieldPath, namespace: &str) {
    match target.kind.as_str() {
        "Service" => {
            if !matches!(target.group.as_str(), "" | "core") {
                v.add(
                    at.key("group"),
                    format!(
                        "group `{}` is not supported; use group \"\" (core) with kind Service",
                        target.group
                    ),
                );
            }
        }
        kind @ ("Gateway" | "GatewayClass") => v.add(
            at.key("kind"),
            format!(
                "kind `{kind}` is not supported: Bulkhead has no gateways yet; use kind Service"
            ),
        ),
        kind => v.add(
            at.key("kind"),
            format!("kind `{kind}` is not supported; use kind Service"),
        ),
    }
    if target.name.is_empty() {
        v.add(at.key("name"), "must not be empty");
    }
    if let Some(ns) = target.namespace.as_deref().filter(|ns| *ns != namespace) {
        v.add(
            at.key("namespace"),
            format!(
                "namespace `{ns}` differs from the policy's namespace `{namespace}`; a policy can \
                 only target objects in its own namespace"
            ),
        );
    }
}

fn rule(v: &mut Problems, rule: &Rule, at: &FieldPath) {
    for (i, from) in rule.from.iter().enumerate() {
        source(v, &from.source, &at.key("from").index(i).key("source"));
    }
    for (i, to) in rule.to.iter().enumerate() {
        operation(v, &to.operation, &at.key("to").index(i).key("operation"));
    }
    for (i, condition) in rule.when.iter().enumerate() {
        self::condition(v, condition, &at.key("when").index(i));
    }
}

fn ip_or_cidr(v: &mut Problems, values: &[String], at: &FieldPath) {
    for (i, value) in values.iter().enumerate() {
        if parse_cidr(value, true).is_err() {
            v.add(
                at.index(i),
                format!(
                    "`{value}` is not an IP address or CIDR; expected e.g. 10.1.2.3 or 10.0.0.0/16"
                ),
            );
        }
    }
}

fn source(v: &mut Problems, source: &Source, at: &FieldPath) {
    ip_or_cidr(v, &source.ip_blocks, &at.key("ipBlocks"));
    ip_or_cidr(v, &source.not_ip_blocks, &at.key("notIpBlocks"));
    ip_or_cidr(v, &source.remote_ip_blocks, &at.key("remoteIpBlocks"));
    ip_or_cidr(
        v,
        &source.not_remote_ip_blocks,
        &at.key("notRemoteIpBlocks"),
    );
}

/// A port as Istio writes it in policies: decimal digits, 1-65535.
fn is_port(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u16>().is_ok_and(|p| p > 0)
}

fn port_strings(v: &mut Problems, values: &[String], at: &FieldPath) {
    for (i, value) in values.iter().enumerate() {
        if !is_port(value) {
            v.add(
                at.index(i),
                format!("`{value}` is not a port number; expected a number from 1 to 65535"),
            );
        }
    }
}

fn paths(v: &mut Problems, values: &[String], at: &FieldPath) {
    for (i, value) in values.iter().enumerate() {
        if let Err(e) = PathPattern::parse(value) {
            v.add(at.index(i), e.to_string());
        }
    }
}

fn operation(v: &mut Problems, operation: &Operation, at: &FieldPath) {
    port_strings(v, &operation.ports, &at.key("ports"));
    port_strings(v, &operation.not_ports, &at.key("notPorts"));
    paths(v, &operation.paths, &at.key("paths"));
    paths(v, &operation.not_paths, &at.key("notPaths"));
}

/// What values a `when` key takes.
enum KeyClass {
    Ip,
    Port,
    Text,
}

/// How many `[name]` groups make up all of `s`; `None` when malformed or empty.
fn bracketed_names(s: &str) -> Option<usize> {
    let mut count = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let name = &inner[..end];
        if name.is_empty() || name.contains('[') {
            return None;
        }
        count += 1;
        rest = &inner[end + 1..];
    }
    (count > 0).then_some(count)
}

fn when_key(key: &str) -> Option<KeyClass> {
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => Some(KeyClass::Ip),
        "destination.port" => Some(KeyClass::Port),
        "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Some(KeyClass::Text),
        _ => {
            let header = key
                .strip_prefix("request.headers")
                .and_then(bracketed_names);
            let claim = key
                .strip_prefix("request.auth.claims")
                .and_then(bracketed_names);
            (header == Some(1) || claim.is_some()).then_some(KeyClass::Text)
        }
    }
}

fn condition(v: &mut Problems, condition: &Condition, at: &FieldPath) {
    match when_key(&condition.key) {
        None => v.add(
            at.key("key"),
            format!(
                "unknown key `{}`; expected one of: {WHEN_KEYS}",
                condition.key
            ),
        ),
        Some(KeyClass::Ip) => {
            ip_or_cidr(v, &condition.values, &at.key("values"));
            ip_or_cidr(v, &condition.not_values, &at.key("notValues"));
        }
        Some(KeyClass::Port) => {
            port_strings(v, &condition.values, &at.key("values"));
            port_strings(v, &condition.not_values, &at.key("notValues"));
        }
        Some(KeyClass::Text) => {}
    }
    if condition.values.is_empty() && condition.not_values.is_empty() {
        v.add(at.clone(), "a condition needs values or notValues");
    }
}
