//! A firewall's settings ([`WafSpec`]) rendered as the SecLang that surrounds the OWASP
//! Core Rule Set: engine directives, ModSecurity's recommended body-processor rules, the
//! CRS setup actions (`crs-setup.conf`'s job) before the rules, and the exclusions as CRS's
//! exclusion recipes write them. Pure: the same spec always renders the same text, which is
//! what lets a new snapshot reuse a compiled rule set.
//!
//! Exclusions with `paths` become one phase-1 rule each (ids from [`EXCLUSION_BASE_ID`],
//! in the range CRS leaves to local rules) that removes rules or targets for the rest of
//! the transaction (`ctl:ruleRemoveById`, `ctl:ruleRemoveTargetById`,
//! `ctl:ruleRemoveTargetByTag`); the path is matched after URL decoding and path
//! normalisation, so `/api/upload/../admin` is not under `/api/upload`. Exclusions without
//! paths become configure-time directives after the CRS (`SecRuleRemoveById`,
//! `SecRuleUpdateTargetById`, `SecRuleUpdateTargetByTag`).

use std::fmt::Write as _;

use bulkhead_resources::waf::parse_target;
use bulkhead_resources::{WafExclusionSpec, WafMode, WafSpec};

/// The id of the rule rendered for the first exclusion with paths; exclusion `i` gets
/// `EXCLUSION_BASE_ID + i` (at most 1,000 exclusions: 10000-10999).
pub const EXCLUSION_BASE_ID: u32 = 10_000;
/// The CRS version the setup actions are written for (`tx.crs_setup_version`).
pub const CRS_SETUP_VERSION: u32 = 4251;
/// Response bodies of these types are inspected (with `responseInspection`), as in
/// ModSecurity's recommended configuration plus the JSON that APIs answer with.
pub const RESPONSE_MIME_TYPES: [&str; 4] =
    ["text/plain", "text/html", "text/xml", "application/json"];
/// CRS's default `tx.allowed_request_content_type` plus gRPC's content types: the
/// sidecar carries gRPC natively, and CRS would otherwise score every call as a
/// forbidden content type (rule 920420). gRPC bodies stream on uninspected.
pub const ALLOWED_CONTENT_TYPES: &str = "|application/x-www-form-urlencoded| \
     |multipart/form-data| |text/xml| |application/xml| |application/soap+xml| \
     |application/json| |application/grpc| |application/grpc+proto|";
/// The tag every CRS rule carries: target exclusions without rule ids apply to all of them.
const CRS_TAG: &str = "OWASP_CRS";
/// `ver:` of the setup actions, as `crs-setup.conf.example` writes it.
const CRS_VER: &str = "OWASP_CRS/4.25.1";

/// The SecLang around the CRS for one firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Engine settings, recommended rules, CRS setup and path-scoped exclusions: loaded
    /// before the CRS rule files.
    pub before: String,
    /// Exclusions that apply everywhere: loaded after the CRS rule files, whose rules they
    /// change.
    pub after: String,
}

/// Renders `spec` (already validated: `bulkhead_resources::validate::waf_spec`).
pub fn render(spec: &WafSpec) -> Rendered {
    let mut before = String::with_capacity(4096);
    engine(&mut before, spec);
    recommended_rules(&mut before);
    crs_setup(&mut before, spec);
    let mut after = String::new();
    for (i, exclusion) in spec.exclusions.iter().enumerate() {
        if exclusion.paths.is_empty() {
            everywhere(&mut after, exclusion);
        } else {
            let id = EXCLUSION_BASE_ID.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
            under_paths(&mut before, id, exclusion);
        }
    }
    Rendered { before, after }
}

/// `SecRuleEngine` and the body settings. Blocking rejects a request body over the limit
/// (413); DetectionOnly inspects its first part (ModSecurity's `ProcessPartial`).
fn engine(out: &mut String, spec: &WafSpec) {
    let (mode, limit_action) = match spec.mode {
        WafMode::Off => ("Off", "ProcessPartial"),
        WafMode::DetectionOnly => ("DetectionOnly", "ProcessPartial"),
        WafMode::Blocking => ("On", "Reject"),
    };
    let request_limit = spec.request_body_limit();
    let response = if spec.inspects_responses() {
        "On"
    } else {
        "Off"
    };
    let _ = write!(
        out,
        "# Engine settings (ModSecurity's recommended configuration, sized for a sidecar)\n\
         SecRuleEngine {mode}\n\
         SecRequestBodyAccess On\n\
         SecRequestBodyLimit {request_limit}\n\
         SecRequestBodyNoFilesLimit {request_limit}\n\
         SecRequestBodyLimitAction {limit_action}\n\
         SecRequestBodyJsonDepthLimit 512\n\
         SecArgumentsLimit 1000\n\
         SecResponseBodyAccess {response}\n\
         SecResponseBodyMimeType {}\n\
         SecResponseBodyLimit {}\n\
         SecResponseBodyLimitAction ProcessPartial\n\
         SecArgumentSeparator &\n\
         SecCookieFormat 0\n",
        RESPONSE_MIME_TYPES.join(" "),
        spec.response_body_limit(),
    );
}

/// ModSecurity's recommended rules 200000-200007: XML and JSON bodies are parsed into
/// arguments (CRS inspects `ARGS`, so without these a JSON body would go unread), and
/// bodies that fail to parse are refused rather than let through unread.
fn recommended_rules(out: &mut String) {
    out.push_str(
        "# ModSecurity's recommended rules: body processors by Content-Type, parse errors\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" \
         \"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" \
         \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/[a-z0-9.-]+[+]json\" \
         \"id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule &ARGS \"@ge 1000\" \
         \"id:200007,phase:2,t:none,log,deny,status:400,msg:'Failed to fully parse request \
         body due to large argument count',severity:2\"\n\
         SecRule REQBODY_ERROR \"!@eq 0\" \
         \"id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',\
         logdata:'%{reqbody_error_msg}',severity:2\"\n\
         SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \
         \"id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed \
         strict validation'\"\n\
         SecRule MULTIPART_UNMATCHED_BOUNDARY \"@eq 1\" \
         \"id:200004,phase:2,t:none,log,deny,msg:'Multipart parser detected a possible \
         unmatched boundary.'\"\n\
         SecRule TX:/^MSC_/ \"!@streq 0\" \
         \"id:200005,phase:2,t:none,log,deny,msg:'ModSecurity internal error flagged: \
         %{MATCHED_VAR_NAME}'\"\n",
    );
}

/// What `crs-setup.conf` does: anomaly-scoring defaults (detection rules log and pass;
/// the blocking-evaluation rules deny), paranoia level, thresholds, and the setup version
/// without which CRS refuses to run (rule 901001).
fn crs_setup(out: &mut String, spec: &WafSpec) {
    out.push_str("# CRS setup (crs-setup.conf)\n");
    for phase in 1..=5 {
        let _ = writeln!(out, "SecDefaultAction \"phase:{phase},log,auditlog,pass\"");
    }
    let setup = |out: &mut String, id: u32, vars: &str| {
        let _ = writeln!(
            out,
            "SecAction \"id:{id},phase:1,pass,t:none,nolog,tag:'{CRS_TAG}',ver:'{CRS_VER}',{vars}\""
        );
    };
    let paranoia = spec.paranoia();
    setup(
        out,
        900_000,
        &format!("setvar:tx.blocking_paranoia_level={paranoia}"),
    );
    setup(
        out,
        900_110,
        &format!(
            "setvar:tx.inbound_anomaly_score_threshold={},\
             setvar:tx.outbound_anomaly_score_threshold={}",
            spec.inbound_threshold(),
            spec.outbound_threshold()
        ),
    );
    if let Some(methods) = &spec.allowed_methods {
        // Validated as upper-case tokens: nothing to quote.
        let methods = methods.join(" ");
        setup(
            out,
            900_200,
            &format!("setvar:'tx.allowed_methods={methods}'"),
        );
    }
    setup(
        out,
        900_220,
        &format!("setvar:'tx.allowed_request_content_type={ALLOWED_CONTENT_TYPES}'"),
    );
    setup(
        out,
        900_990,
        &format!("setvar:tx.crs_setup_version={CRS_SETUP_VERSION}"),
    );
}

/// A path-scoped exclusion: a phase-1 rule matching the decoded, normalised path.
fn under_paths(out: &mut String, id: u32, e: &WafExclusionSpec) {
    let mut ctls: Vec<String> = Vec::new();
    let targets = targets(e);
    match (e.rule_ids.is_empty(), targets.is_empty()) {
        (false, true) => {
            for rid in &e.rule_ids {
                ctls.push(format!("ctl:ruleRemoveById={rid}"));
            }
        }
        (false, false) => {
            // Validation allows only single ids here: ctl:ruleRemoveTargetById takes one.
            for rid in &e.rule_ids {
                for t in &targets {
                    ctls.push(format!("ctl:ruleRemoveTargetById={rid};{t}"));
                }
            }
        }
        (true, _) => {
            for t in &targets {
                ctls.push(format!("ctl:ruleRemoveTargetByTag={CRS_TAG};{t}"));
            }
        }
    }
    let _ = writeln!(
        out,
        "SecRule REQUEST_FILENAME \"@rx {}\" \"id:{id},phase:1,pass,nolog,t:none,\
         t:urlDecodeUni,t:normalizePath,{}\"",
        path_regex(&e.paths),
        ctls.join(",")
    );
}

/// An exclusion for every request, as configure-time directives after the CRS.
fn everywhere(out: &mut String, e: &WafExclusionSpec) {
    let targets = targets(e);
    let removed: Vec<String> = targets.iter().map(|t| format!("!{t}")).collect();
    let removed = removed.join("|");
    if targets.is_empty() {
        let ids: Vec<String> = e.rule_ids.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "SecRuleRemoveById {}", ids.join(" "));
    } else if e.rule_ids.is_empty() {
        let _ = writeln!(out, "SecRuleUpdateTargetByTag \"{CRS_TAG}\" \"{removed}\"");
    } else {
        for rid in &e.rule_ids {
            let _ = writeln!(out, "SecRuleUpdateTargetById {rid} \"{removed}\"");
        }
    }
}

/// The targets in SecLang spelling; unparsable ones (validation refuses them) are dropped
/// rather than rendered into text they could break.
fn targets(e: &WafExclusionSpec) -> Vec<String> {
    e.targets
        .iter()
        .filter_map(|t| parse_target(t).ok())
        .map(|t| t.to_string())
        .collect()
}

/// `^(?:...)` matching each path segment-wise: `/a` matches `/a` and `/a/...` (not `/ab`),
/// `/a/` matches everything under `/a/`.
fn path_regex(paths: &[String]) -> String {
    let alternatives: Vec<String> = paths
        .iter()
        .map(|p| {
            let escaped = escape(p);
            if p.ends_with('/') {
                escaped
            } else {
                format!("{escaped}(?:/|$)")
            }
        })
        .collect();
    format!("^(?:{})", alternatives.join("|"))
}

/// Escapes what is special in a regular expression; validated paths hold nothing that is
/// special to SecLang's quoting.
fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if matches!(
            c,
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '\\'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
