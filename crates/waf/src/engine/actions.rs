//! Compiling a rule's action list.

use std::sync::Arc;

use super::macros::Macro;
use super::rule::{
    Actions, AllowScope, BodyProcessor, Ctl, Disruptive, EngineMode, SetOp, SetVar, TagRules,
};
use super::vars::{Exclusion, compile_exclusion};
use crate::parse::ast::{IdRange, RawAction, VarKey, VarSpec};
use crate::transform::Transform;

/// Compiles actions in order; later actions of the same kind win, as in libmodsecurity.
pub(crate) fn compile_actions(raw: &[RawAction]) -> Result<Actions, String> {
    let mut a = Actions::default();
    for action in raw {
        apply(&mut a, action).map_err(|e| format!("action {}: {e}", action.name))?;
    }
    Ok(a)
}

fn value(action: &RawAction) -> Result<&str, String> {
    action
        .value
        .as_deref()
        .ok_or_else(|| "expected a value after ':'".to_string())
}

fn apply(a: &mut Actions, action: &RawAction) -> Result<(), String> {
    match action.name.to_ascii_lowercase().as_str() {
        "id" => a.id = parse_id(value(action)?)?,
        "phase" => a.phase = Some(parse_phase(value(action)?)?),
        "msg" => a.msg = Some(Macro::parse(value(action)?)),
        "logdata" => a.logdata = Some(Macro::parse(value(action)?)),
        "severity" => a.severity = Some(parse_severity(value(action)?)?),
        "tag" => {
            let mut tags = a.tags.to_vec();
            tags.push(value(action)?.to_string());
            a.tags = tags.into();
        }
        "log" => a.log = Some(true),
        "nolog" => a.log = Some(false),
        "capture" => a.capture = true,
        "multimatch" => a.multi_match = true,
        "chain" => a.chain = true,
        "pass" => a.disruptive = Some(Disruptive::Pass),
        "block" => a.disruptive = Some(Disruptive::Block),
        "deny" => a.disruptive = Some(Disruptive::Deny),
        "drop" => a.disruptive = Some(Disruptive::Drop),
        "allow" => a.disruptive = Some(Disruptive::Allow(parse_allow(action.value.as_deref())?)),
        "redirect" => a.disruptive = Some(Disruptive::Redirect(value(action)?.to_string())),
        "status" => {
            let v = value(action)?;
            a.status = Some(
                v.trim()
                    .parse()
                    .map_err(|_| format!("expected an HTTP status, got {v:?}"))?,
            );
        }
        "skip" => {
            let v = value(action)?;
            a.skip = v
                .trim()
                .parse()
                .map_err(|_| format!("expected a rule count, got {v:?}"))?;
        }
        "skipafter" => a.skip_after = Some(value(action)?.trim().to_string()),
        "setvar" => {
            if let Some(sv) = parse_setvar(value(action)?)? {
                a.setvars.push(sv);
            }
        }
        "ctl" => a.ctls.push(parse_ctl(value(action)?)?),
        "t" => {
            let v = value(action)?;
            if v.eq_ignore_ascii_case("none") {
                a.transforms.push(None);
            } else {
                let t = Transform::from_name(v)
                    .ok_or_else(|| format!("unknown transformation {v:?}"))?;
                a.transforms.push(Some(t));
            }
        }
        // Metadata and audit-log controls: no effect on detection.
        "ver"
        | "rev"
        | "maturity"
        | "accuracy"
        | "auditlog"
        | "noauditlog"
        | "sanitisearg"
        | "sanitisematched"
        | "sanitisematchedbytes"
        | "sanitiserequestheader"
        | "sanitiseresponseheader"
        | "logdata_" => {}
        // Persistent collections and environment: Bulkhead keeps no state across
        // transactions, so these are accepted and do nothing (documented in docs/waf.md).
        "initcol" | "expirevar" | "setenv" | "setuid" | "setsid" | "setrsc" | "deprecatevar"
        | "append" | "prepend" => {}
        "exec" => {
            return Err("exec is not supported: Bulkhead does not run external programs".into());
        }
        other => return Err(format!("unknown action {other:?}")),
    }
    Ok(())
}

fn parse_id(v: &str) -> Result<u32, String> {
    let id: u32 = v
        .trim()
        .parse()
        .map_err(|_| format!("expected a rule id, got {v:?}"))?;
    if id == 0 {
        return Err("rule id 0 is not allowed".into());
    }
    Ok(id)
}

fn parse_phase(v: &str) -> Result<u8, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" => Ok(1),
        "2" | "request" => Ok(2),
        "3" => Ok(3),
        "4" | "response" => Ok(4),
        "5" | "logging" => Ok(5),
        _ => Err(format!(
            "expected a phase 1-5, request, response or logging, got {v:?}"
        )),
    }
}

fn parse_severity(v: &str) -> Result<u8, String> {
    const NAMES: [&str; 8] = [
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    ];
    let t = v.trim();
    if let Ok(n) = t.parse::<u8>()
        && n < 8
    {
        return Ok(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(t))
        .map(|p| p as u8)
        .ok_or_else(|| format!("expected a severity 0-7 or a name such as CRITICAL, got {v:?}"))
}

fn parse_allow(v: Option<&str>) -> Result<AllowScope, String> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(AllowScope::All),
        Some("phase") => Ok(AllowScope::Phase),
        Some("request") => Ok(AllowScope::Request),
        Some(o) => Err(format!(
            "expected allow, allow:phase or allow:request, got allow:{o}"
        )),
    }
}

/// Parses a `setvar` value. Only the TX collection is kept per transaction; settings of
/// the persistent collections (IP, SESSION, GLOBAL …) are accepted and ignored.
fn parse_setvar(v: &str) -> Result<Option<SetVar>, String> {
    let v = v.trim();
    let (delete, body) = match v.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (name, rhs) = match body.find('=') {
        Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
        None => (body, None),
    };
    let Some(dot) = name.find('.') else {
        return Err(format!("expected COLLECTION.name, got {name:?}"));
    };
    if !name[..dot].eq_ignore_ascii_case("tx") {
        return Ok(None);
    }
    let name = Macro::parse(&name[dot + 1..]);
    let op = match (delete, rhs) {
        (true, _) => SetOp::Delete,
        (false, None) => SetOp::Set(Macro::parse("1")),
        (false, Some(r)) => match r.as_bytes().first() {
            Some(b'+') => SetOp::Add(Macro::parse(&r[1..])),
            Some(b'-') => SetOp::Sub(Macro::parse(&r[1..])),
            _ => SetOp::Set(Macro::parse(r)),
        },
    };
    let literal_name = name
        .literal()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase());
    Ok(Some(SetVar {
        name,
        literal_name,
        op,
    }))
}

fn parse_ctl(v: &str) -> Result<Ctl, String> {
    let (name, arg) = v
        .split_once('=')
        .ok_or_else(|| format!("expected ctl:name=value, got {v:?}"))?;
    let arg = arg.trim();
    let on_off = |s: &str| match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("expected On or Off, got {s:?}")),
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleengine" => Ctl::RuleEngine(
            EngineMode::parse(arg)
                .ok_or_else(|| format!("expected On, Off or DetectionOnly, got {arg:?}"))?,
        ),
        "ruleremovebyid" => Ctl::RemoveById(parse_id_list(arg)?),
        "ruleremovebytag" => Ctl::RemoveByTag(TagRules::new(arg)),
        "ruleremovetargetbyid" => {
            let (ids, target) = arg
                .split_once(';')
                .ok_or_else(|| format!("expected ID;VARIABLE, got {arg:?}"))?;
            Ctl::RemoveTargetById(parse_id_list(ids)?, exclusion(target)?)
        }
        "ruleremovetargetbytag" => {
            let (tag, target) = arg
                .split_once(';')
                .ok_or_else(|| format!("expected TAG;VARIABLE, got {arg:?}"))?;
            Ctl::RemoveTargetByTag(TagRules::new(tag), exclusion(target)?)
        }
        "requestbodyprocessor" => {
            Ctl::RequestBodyProcessor(BodyProcessor::parse(arg).ok_or_else(|| {
                format!("expected URLENCODED, MULTIPART, JSON or XML, got {arg:?}")
            })?)
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(arg)?),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(arg)?),
        "auditengine" | "auditlogparts" | "debugloglevel" => Ctl::Ignored,
        other => return Err(format!("unknown ctl {other:?}")),
    })
}

fn exclusion(target: &str) -> Result<Arc<Exclusion>, String> {
    compile_exclusion(&parse_var_spec(target)?).map(Arc::new)
}

/// Parses `942100`, `942100-942200` and space- or comma-separated lists of them.
pub(crate) fn parse_id_list(text: &str) -> Result<Vec<IdRange>, String> {
    let mut out = Vec::new();
    for part in text.split([' ', ',']).filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => IdRange {
                first: parse_id(a)?,
                last: parse_id(b)?,
            },
            None => {
                let id = parse_id(part)?;
                IdRange {
                    first: id,
                    last: id,
                }
            }
        };
        out.push(range);
    }
    if out.is_empty() {
        return Err("expected at least one rule id".into());
    }
    Ok(out)
}

/// Parses one variable written inside an action (`ARGS:foo`, `!REQUEST_COOKIES:/^_ga/`).
pub(crate) fn parse_var_spec(text: &str) -> Result<VarSpec, String> {
    let mut t = text.trim();
    let exclude = t.starts_with('!');
    t = t.trim_start_matches('!');
    let count = t.starts_with('&');
    t = t.trim_start_matches('&');
    let (name, key) = match t.split_once(':') {
        Some((n, k)) => {
            let k = k.trim_matches('\'');
            let key = if k.len() >= 2 && k.starts_with('/') && k.ends_with('/') {
                VarKey::Regex(k[1..k.len() - 1].to_string())
            } else {
                VarKey::Name(k.to_string())
            };
            (n, Some(key))
        }
        None => (t, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "expected a variable such as ARGS:name, got {text:?}"
        ));
    }
    Ok(VarSpec {
        exclude,
        count,
        name: name.to_ascii_uppercase(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, value: Option<&str>) -> RawAction {
        RawAction {
            name: name.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn compiles_a_crs_style_list() {
        let a = compile_actions(&[
            raw("id", Some("942100")),
            raw("phase", Some("2")),
            raw("block", None),
            raw("capture", None),
            raw("t", Some("none")),
            raw("t", Some("urlDecodeUni")),
            raw("severity", Some("CRITICAL")),
            raw(
                "setvar",
                Some("tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}"),
            ),
            raw("setvar", Some("ip.reput_block_flag=1")),
            raw("ctl", Some("ruleRemoveTargetById=942100;ARGS:password")),
        ])
        .unwrap();
        assert_eq!((a.id, a.phase, a.severity), (942100, Some(2), Some(2)));
        assert_eq!(a.disruptive, Some(Disruptive::Block));
        assert_eq!(a.transforms.len(), 2);
        assert_eq!(a.setvars.len(), 1, "IP collection ignored");
        assert!(matches!(&a.ctls[0], Ctl::RemoveTargetById(ids, _) if ids[0].first == 942100));
    }

    #[test]
    fn rejects_bad_values_with_the_reason() {
        assert!(
            compile_actions(&[raw("id", Some("x"))])
                .unwrap_err()
                .contains("expected a rule id")
        );
        assert!(
            compile_actions(&[raw("phase", Some("9"))])
                .unwrap_err()
                .contains("phase 1-5")
        );
        assert!(
            compile_actions(&[raw("t", Some("nosuch"))])
                .unwrap_err()
                .contains("unknown transformation")
        );
        assert!(
            compile_actions(&[raw("frobnicate", None)])
                .unwrap_err()
                .contains("unknown action")
        );
    }

    #[test]
    fn id_lists_and_ranges() {
        let ids = parse_id_list("942100 942200-942299,1").unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids[1].contains(942250));
        assert!(parse_id_list("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn var_specs_round_trip(name in "[A-Z_]{1,16}", key in "[a-z0-9_-]{1,10}", excl: bool) {
            let text = format!("{}{name}:{key}", if excl { "!" } else { "" });
            let spec = parse_var_spec(&text).unwrap();
            proptest::prop_assert_eq!(spec.exclude, excl);
            proptest::prop_assert_eq!(spec.key, Some(VarKey::Name(key)));
        }

        #[test]
        fn setvar_never_panics(text in ".*") {
            let _ = parse_setvar(&text);
            let _ = parse_ctl(&text);
        }
    }
}
