//! The web application firewall on the inbound HTTP path: the OWASP Core Rule Set, run by
//! `bulkhead-waf`, in front of the app (docs/waf.md).
//!
//! A [`Waf`] is one firewall configuration compiled once: its settings rendered as SecLang
//! ([`config`]) around the embedded CRS, built into a `RuleSet` that every connection
//! shares. Snapshots carry it as `Arc<Waf>`; a new snapshot whose firewall renders to the
//! same text reuses the compiled rules, so policy or endpoint changes never recompile the
//! CRS. Per request, [`inspect`] runs a transaction through the phases and [`event`] turns
//! it into the access log's `waf` object.

mod body;
pub mod config;
pub mod event;
pub(crate) mod inspect;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bulkhead_resources::{WafMode, WafSpec};
use bulkhead_waf::{RuleSet, WafError};
use serde_json::{Value, json};

pub use config::{Rendered, render};
pub use event::{WafAction, WafEvent};

use crate::accesslog::rfc3339;

/// One firewall configuration, compiled.
#[derive(Debug)]
pub struct Waf {
    source: String,
    spec: WafSpec,
    rendered: Rendered,
    /// `None` in mode `Off`: nothing runs, so nothing is compiled.
    rules: Option<Arc<RuleSet>>,
    compile_time: Duration,
    compiled_at: SystemTime,
}

/// Why a firewall configuration was refused (the previous one stays in force).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: the firewall rules do not compile: {error}")]
pub struct WafConfigError {
    /// The firewall, e.g. `WebApplicationFirewall/shop/frontend`.
    pub source_name: String,
    /// The engine's error, naming the file (or rendered label) and line.
    #[source]
    pub error: WafError,
}

impl Waf {
    /// Compiles the firewall `spec` (already validated) configured by `source` (e.g.
    /// `WebApplicationFirewall/shop/frontend`), reusing `previous`'s rules when `spec`
    /// renders to the same text. Compiling the CRS takes a while: call this off the data
    /// path (a blocking thread).
    pub fn build(
        source: String,
        spec: WafSpec,
        previous: Option<&Waf>,
    ) -> Result<Arc<Waf>, WafConfigError> {
        let rendered = render(&spec);
        if let Some(prev) = previous.filter(|p| p.rendered == rendered) {
            return Ok(Arc::new(Waf {
                source,
                spec,
                rendered,
                rules: prev.rules.clone(),
                compile_time: prev.compile_time,
                compiled_at: prev.compiled_at,
            }));
        }
        let started = Instant::now();
        let rules = match spec.mode {
            WafMode::Off => None,
            _ => Some(Arc::new(compile(&source, &rendered).map_err(|error| {
                WafConfigError {
                    source_name: source.clone(),
                    error,
                }
            })?)),
        };
        let compile_time = started.elapsed();
        if let Some(rules) = &rules {
            tracing::info!(firewall = %source, mode = spec.mode.as_str(),
                rules = rules.rule_count(), compile_ms = compile_time.as_secs_f64() * 1e3,
                "web application firewall rules compiled");
        }
        Ok(Arc::new(Waf {
            source,
            spec,
            rendered,
            rules,
            compile_time,
            compiled_at: SystemTime::now(),
        }))
    }

    /// What configured it, e.g. `WebApplicationFirewall/shop/frontend`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The settings.
    pub fn spec(&self) -> &WafSpec {
        &self.spec
    }

    /// The SecLang rendered around the CRS.
    pub fn rendered(&self) -> &Rendered {
        &self.rendered
    }

    /// The compiled rules; `None` when the mode is `Off`.
    pub fn rules(&self) -> Option<&Arc<RuleSet>> {
        self.rules.as_ref()
    }

    /// Whether two firewalls share one compiled rule set.
    pub fn shares_rules_with(&self, other: &Waf) -> bool {
        match (&self.rules, &other.rules) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The firewall as `/config` shows it.
    pub fn to_json(&self) -> Value {
        let s = &self.spec;
        json!({
            "source": self.source,
            "mode": s.mode.as_str(),
            "paranoia_level": s.paranoia(),
            "anomaly_thresholds": {"inbound": s.inbound_threshold(), "outbound": s.outbound_threshold()},
            "request_body_limit_bytes": s.request_body_limit(),
            "response_inspection": s.inspects_responses(),
            "response_body_limit_bytes": s.response_body_limit(),
            "exclusions": s.exclusions.len(),
            "rule_count": self.rules.as_ref().map_or(0, |r| r.rule_count()),
            "compile_ms": (self.compile_time.as_secs_f64() * 1e6).round() / 1e3,
            "compiled_at": rfc3339(self.compiled_at),
        })
    }
}

/// The rendered settings, the embedded CRS, then the exclusions that change CRS rules.
fn compile(source: &str, rendered: &Rendered) -> Result<RuleSet, WafError> {
    let label = format!("<{source}>");
    let after = format!("<{source} after CRS>");
    let dir = Path::new(".");
    RuleSet::builder()
        .text(&label, &rendered.before, dir)?
        .embedded_crs()?
        .text(&after, &rendered.after, dir)?
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_resources::{RuleIdSpec, WafExclusionSpec};

    fn spec(mode: WafMode) -> WafSpec {
        let mut spec = WafSpec::with_mode(mode);
        spec.exclusions = vec![
            WafExclusionSpec {
                rule_ids: vec![RuleIdSpec::One(942100)],
                paths: vec!["/api/search".into()],
                targets: vec![],
            },
            WafExclusionSpec {
                rule_ids: vec![RuleIdSpec::Range(920000, 920999)],
                paths: vec![],
                targets: vec!["ARGS:password".into()],
            },
        ];
        spec
    }

    #[test]
    fn the_crs_compiles_with_rendered_settings_and_is_reused_while_they_stay() {
        let first = Waf::build("test/a".into(), spec(WafMode::Blocking), None).unwrap();
        let rules = first.rules().unwrap();
        assert!(rules.rule_count() > 500, "{}", rules.rule_count());
        assert_eq!(rules.engine_mode(), bulkhead_waf::EngineMode::On);
        let same = Waf::build("test/b".into(), spec(WafMode::Blocking), Some(&first)).unwrap();
        assert!(same.shares_rules_with(&first));
        assert_eq!(same.source(), "test/b");
        let other = Waf::build("test/a".into(), spec(WafMode::DetectionOnly), Some(&first));
        let other = other.unwrap();
        assert!(!other.shares_rules_with(&first));
        let detect = other.rules().unwrap().engine_mode();
        assert_eq!(detect, bulkhead_waf::EngineMode::DetectionOnly);
        let off = Waf::build("test/a".into(), spec(WafMode::Off), Some(&first)).unwrap();
        assert!(off.rules().is_none());
        assert_eq!(off.to_json()["rule_count"], 0);
        assert_eq!(first.to_json()["mode"], "Blocking");
    }

    #[test]
    fn a_rule_that_does_not_compile_is_named_with_its_line() {
        let mut rendered = render(&WafSpec::with_mode(WafMode::Blocking));
        rendered
            .after
            .push_str("SecRule ARGS \"@nosuchoperator x\" \"id:1,phase:2,pass\"\n");
        let err = compile("WebApplicationFirewall/shop/web", &rendered).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("<WebApplicationFirewall/shop/web after CRS>:1:"),
            "{shown}"
        );
    }
}
