//! `bulkhead.dev/v1alpha1/WebApplicationFirewall`: the OWASP Core Rule Set in front of the
//! workloads a selector picks, in one of three modes, with the CRS tuning knobs (paranoia
//! level, anomaly thresholds) and rule exclusions. The firewall fields are [`WafSpec`],
//! which a `ProxyConfig`'s `spec.waf` uses too.
//!
//! Absent fields take the defaults below (docs/waf.md). Semantic rules live in
//! [`crate::validate::waf_spec`]; which firewall applies to a workload is
//! [`crate::waf::select`].

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::meta::ObjectMeta;
use crate::selector::WorkloadSelector;

/// `paranoiaLevel` when absent (CRS's default).
pub const DEFAULT_PARANOIA_LEVEL: u32 = 1;
/// `anomalyThresholds.inbound` when absent (CRS's default).
pub const DEFAULT_INBOUND_THRESHOLD: u32 = 5;
/// `anomalyThresholds.outbound` when absent (CRS's default).
pub const DEFAULT_OUTBOUND_THRESHOLD: u32 = 4;
/// `requestBodyLimitBytes` when absent: 128 KiB, ModSecurity's recommended
/// `SecRequestBodyNoFilesLimit` (the sidecar holds the inspected part in memory).
pub const DEFAULT_REQUEST_BODY_LIMIT: u64 = 128 * 1024;
/// `responseBodyLimitBytes` when absent: 512 KiB, ModSecurity's `SecResponseBodyLimit`
/// default.
pub const DEFAULT_RESPONSE_BODY_LIMIT: u64 = 512 * 1024;
/// The largest body limit either direction accepts: 16 MiB.
pub const MAX_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// A WebApplicationFirewall: the CRS for the workloads `spec.selector` picks in the
/// resource's namespace (every workload of the namespace without a selector; of the whole
/// mesh for one without a selector in the root namespace).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebApplicationFirewall {
    /// `bulkhead.dev/v1alpha1`.
    pub api_version: String,
    /// `WebApplicationFirewall`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The workloads and the firewall settings.
    pub spec: WebApplicationFirewallSpec,
}

/// `WebApplicationFirewall.spec`: the selector and the [`WafSpec`] fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebApplicationFirewallSpec {
    /// The workloads it applies to; absent means every workload of the namespace.
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    /// See [`WafSpec::mode`].
    pub mode: WafMode,
    /// See [`WafSpec::paranoia_level`].
    #[serde(default)]
    pub paranoia_level: Option<u32>,
    /// See [`WafSpec::anomaly_thresholds`].
    #[serde(default)]
    pub anomaly_thresholds: Option<AnomalyThresholdsSpec>,
    /// See [`WafSpec::request_body_limit_bytes`].
    #[serde(default)]
    pub request_body_limit_bytes: Option<u64>,
    /// See [`WafSpec::response_inspection`].
    #[serde(default)]
    pub response_inspection: Option<bool>,
    /// See [`WafSpec::response_body_limit_bytes`].
    #[serde(default)]
    pub response_body_limit_bytes: Option<u64>,
    /// See [`WafSpec::allowed_methods`].
    #[serde(default)]
    pub allowed_methods: Option<Vec<String>>,
    /// See [`WafSpec::exclusions`].
    #[serde(default)]
    pub exclusions: Vec<WafExclusionSpec>,
}

impl WebApplicationFirewallSpec {
    /// The firewall fields, without the selector.
    pub fn waf(&self) -> WafSpec {
        WafSpec {
            mode: self.mode,
            paranoia_level: self.paranoia_level,
            anomaly_thresholds: self.anomaly_thresholds,
            request_body_limit_bytes: self.request_body_limit_bytes,
            response_inspection: self.response_inspection,
            response_body_limit_bytes: self.response_body_limit_bytes,
            allowed_methods: self.allowed_methods.clone(),
            exclusions: self.exclusions.clone(),
        }
    }
}

/// The firewall fields, shared by the WebApplicationFirewall kind and `ProxyConfig`'s
/// `spec.waf`. Serializes back to the same JSON shape (absent fields left out), which is
/// how the control plane ships it to proxies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WafSpec {
    /// Whether the rules run, and whether they block.
    pub mode: WafMode,
    /// CRS paranoia level 1-4: higher levels add rules (and false positives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paranoia_level: Option<u32>,
    /// The anomaly scores at which a request (or response) is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_thresholds: Option<AnomalyThresholdsSpec>,
    /// The most request body bytes inspected (and held in memory while inspected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_limit_bytes: Option<u64>,
    /// Whether response headers and bodies are inspected too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_inspection: Option<bool>,
    /// The most response body bytes inspected (with `responseInspection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body_limit_bytes: Option<u64>,
    /// HTTP methods requests may use (CRS's `tx.allowed_methods`; others score as rule
    /// 911100). Absent: CRS's `GET HEAD POST OPTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    /// Rules (or targets of rules) switched off, everywhere or under some paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<WafExclusionSpec>,
}

impl WafSpec {
    /// A spec with `mode` and every other field absent (the defaults).
    pub fn with_mode(mode: WafMode) -> WafSpec {
        WafSpec {
            mode,
            paranoia_level: None,
            anomaly_thresholds: None,
            request_body_limit_bytes: None,
            response_inspection: None,
            response_body_limit_bytes: None,
            allowed_methods: None,
            exclusions: Vec::new(),
        }
    }

    /// The paranoia level in force.
    pub fn paranoia(&self) -> u32 {
        self.paranoia_level.unwrap_or(DEFAULT_PARANOIA_LEVEL)
    }

    /// The inbound anomaly threshold in force.
    pub fn inbound_threshold(&self) -> u32 {
        self.anomaly_thresholds
            .and_then(|t| t.inbound)
            .unwrap_or(DEFAULT_INBOUND_THRESHOLD)
    }

    /// The outbound anomaly threshold in force.
    pub fn outbound_threshold(&self) -> u32 {
        self.anomaly_thresholds
            .and_then(|t| t.outbound)
            .unwrap_or(DEFAULT_OUTBOUND_THRESHOLD)
    }

    /// The request body limit in force, in bytes.
    pub fn request_body_limit(&self) -> u64 {
        self.request_body_limit_bytes
            .unwrap_or(DEFAULT_REQUEST_BODY_LIMIT)
    }

    /// Whether responses are inspected.
    pub fn inspects_responses(&self) -> bool {
        self.response_inspection.unwrap_or(false)
    }

    /// The response body limit in force, in bytes.
    pub fn response_body_limit(&self) -> u64 {
        self.response_body_limit_bytes
            .unwrap_or(DEFAULT_RESPONSE_BODY_LIMIT)
    }
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum WafMode {
    /// Nothing is inspected (the rules are not even compiled).
    Off,
    /// Everything is inspected and logged; nothing is blocked.
    DetectionOnly,
    /// Everything is inspected and logged; requests and responses over the anomaly
    /// thresholds are refused with 403.
    Blocking,
}

impl WafMode {
    /// The spelling in resources (`Off`, `DetectionOnly`, `Blocking`).
    pub fn as_str(self) -> &'static str {
        match self {
            WafMode::Off => "Off",
            WafMode::DetectionOnly => "DetectionOnly",
            WafMode::Blocking => "Blocking",
        }
    }
}

/// `anomalyThresholds`: CRS's `tx.inbound_anomaly_score_threshold` and
/// `tx.outbound_anomaly_score_threshold`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnomalyThresholdsSpec {
    /// Requests scoring this much or more are blocked; ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<u32>,
    /// Responses scoring this much or more are blocked; ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<u32>,
}

/// One `exclusions[]` entry, after the CRS exclusion recipes: without `targets` the rules
/// are removed; with `targets` only those variables are taken out of the rules (all CRS
/// rules when `ruleIds` is empty). With `paths` it applies to requests under those paths
/// only, else to every request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WafExclusionSpec {
    /// Rule ids and inclusive ranges (`942100`, `"942000-942999"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<RuleIdSpec>,
    /// Path prefixes, segment-wise: `/api/upload` covers `/api/upload` and
    /// `/api/upload/...`, not `/api/uploads`; `/api/` covers everything under `/api/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Variables to take out of the rules, as SecLang names them (`ARGS:password`,
    /// `REQUEST_COOKIES:session`, `REQUEST_HEADERS:User-Agent`, `ARGS:/^json\.data\./`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// One `ruleIds` entry: an id, or an inclusive range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleIdSpec {
    /// `942100` or `"942100"`.
    One(u32),
    /// `"942000-942999"`.
    Range(u32, u32),
}

impl RuleIdSpec {
    /// The first and last id covered.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            RuleIdSpec::One(id) => (id, id),
            RuleIdSpec::Range(first, last) => (first, last),
        }
    }
}

impl fmt::Display for RuleIdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleIdSpec::One(id) => write!(f, "{id}"),
            RuleIdSpec::Range(first, last) => write!(f, "{first}-{last}"),
        }
    }
}

const RULE_ID_EXPECTED: &str = "a rule id such as 942100 or a range such as \"942000-942999\"";

/// Parses `942100` or `942000-942999` (no spaces, decimal digits only).
fn parse_rule_id(text: &str) -> Option<RuleIdSpec> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match text.split_once('-') {
        None => number(text).map(RuleIdSpec::One),
        Some((first, last)) => Some(RuleIdSpec::Range(number(first)?, number(last)?)),
    }
}

impl<'de> Deserialize<'de> for RuleIdSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = RuleIdSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RULE_ID_EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RuleIdSpec, E> {
                u32::try_from(v)
                    .map(RuleIdSpec::One)
                    .map_err(|_| E::custom(format!("`{v}` is too large for a rule id")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RuleIdSpec, E> {
                Err(E::custom(format!(
                    "`{v}` is not a rule id; expected {RULE_ID_EXPECTED}"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RuleIdSpec, E> {
                parse_rule_id(v).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a rule id; expected {RULE_ID_EXPECTED}"
                    ))
                })
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

impl Serialize for RuleIdSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RuleIdSpec::One(id) => s.serialize_u32(*id),
            RuleIdSpec::Range(..) => s.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rule_ids_parse_as_numbers_and_ranges() {
        assert_eq!(parse_rule_id("942100"), Some(RuleIdSpec::One(942100)));
        assert_eq!(
            parse_rule_id("942000-942999"),
            Some(RuleIdSpec::Range(942000, 942999))
        );
        for bad in [
            "",
            "-",
            "1-",
            "-2",
            "1-2-3",
            " 1",
            "1 - 2",
            "+1",
            "x",
            "99999999999",
        ] {
            assert_eq!(parse_rule_id(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn rule_id_text_round_trips(first in any::<u32>(), last in any::<u32>(), range: bool) {
            let id = if range { RuleIdSpec::Range(first, last) } else { RuleIdSpec::One(first) };
            prop_assert_eq!(parse_rule_id(&id.to_string()), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<RuleIdSpec>(&json).unwrap(), id);
        }

        #[test]
        fn rule_id_parsing_never_panics(text in "\\PC{0,24}") {
            let _ = parse_rule_id(&text);
        }

        #[test]
        fn spec_json_round_trips(
            mode in prop_oneof![Just(WafMode::Off), Just(WafMode::DetectionOnly), Just(WafMode::Blocking)],
            paranoia in proptest::option::of(1u32..=4),
            inbound in proptest::option::of(1u32..100),
            limit in proptest::option::of(1u64..MAX_BODY_LIMIT),
            ids in proptest::collection::vec(1u32..999_999, 0..4),
        ) {
            let mut spec = WafSpec::with_mode(mode);
            spec.paranoia_level = paranoia;
            spec.anomaly_thresholds = inbound.map(|i| AnomalyThresholdsSpec { inbound: Some(i), outbound: None });
            spec.request_body_limit_bytes = limit;
            if !ids.is_empty() {
                spec.exclusions.push(WafExclusionSpec {
                    rule_ids: ids.into_iter().map(RuleIdSpec::One).collect(),
                    paths: vec!["/api".into()],
                    targets: Vec::new(),
                });
            }
            let json = serde_json::to_string(&spec).unwrap();
            prop_assert_eq!(serde_json::from_str::<WafSpec>(&json).unwrap(), spec);
        }
    }
}
