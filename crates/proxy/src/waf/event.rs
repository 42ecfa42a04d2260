//! The firewall's record of one transaction, written as the `waf` object of the request's
//! access log line: what the firewall did, the anomaly scores, and every logged rule match
//! with its message and matched data, truncated and with secrets redacted.
//!
//! Matched data can hold whatever a client sent, so it is cut to [`MAX_DATA_BYTES`] and
//! values of credentials (`Authorization`, `Cookie`, cookies, password- and token-like
//! arguments) never reach the log: their value and the rule's log data are replaced by
//! [`REDACTED`].

use serde::Serialize;

use bulkhead_resources::WafMode;
use bulkhead_waf::RuleMatch;

/// The most bytes of a matched value or a rule's log data kept in the log.
pub const MAX_DATA_BYTES: usize = 100;
/// The most matches listed per transaction (the count of the rest is `omitted`).
pub const MAX_MATCHES: usize = 20;
/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Header names whose values are credentials.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];
/// Argument names containing one of these (case-insensitive) are treated as credentials.
const SECRET_ARG_PARTS: [&str; 10] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "auth",
    "credential",
    "session",
];

/// What the firewall did with a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WafAction {
    /// Nothing would have been blocked.
    Pass,
    /// A rule would have blocked it, but the firewall only detects (`DetectionOnly`).
    Detect,
    /// Blocked (`Blocking`): the client got the firewall's answer, not the app's.
    Block,
}

impl WafAction {
    /// The label value (`pass`, `detect`, `block`).
    pub fn as_str(self) -> &'static str {
        match self {
            WafAction::Pass => "pass",
            WafAction::Detect => "detect",
            WafAction::Block => "block",
        }
    }
}

/// One logged rule match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchRecord {
    /// The rule id.
    pub id: u32,
    /// The phase it ran in (1-5).
    pub phase: u8,
    /// Its severity (0 emergency … 7 debug), when it has one.
    pub severity: Option<u8>,
    /// Its message.
    pub msg: String,
    /// Its log data, truncated (redacted for credentials).
    pub data: String,
    /// The variable that matched, e.g. `ARGS:id`.
    pub var: String,
    /// The matched value, truncated (redacted for credentials).
    pub value: String,
}

/// The `waf` object of one access log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WafEvent {
    /// The firewall in force, e.g. `WebApplicationFirewall/shop/frontend`.
    pub firewall: String,
    /// Its mode.
    pub mode: WafMode,
    /// What it did.
    pub action: WafAction,
    /// The status it answered with when it blocked (403, 413, or a rule's `status`).
    pub status: Option<u16>,
    /// The rule that blocked (or would have), when one did.
    pub rule: Option<u32>,
    /// The blocking rule's message, or why the firewall refused without a rule.
    pub message: Option<String>,
    /// `tx.blocking_inbound_anomaly_score` at the end.
    pub inbound_score: i64,
    /// `tx.blocking_outbound_anomaly_score` at the end.
    pub outbound_score: i64,
    /// The logged matches in firing order (at most [`MAX_MATCHES`]).
    pub matches: Vec<MatchRecord>,
    /// Logged matches left out beyond [`MAX_MATCHES`].
    pub omitted: usize,
}

impl MatchRecord {
    /// The loggable form of an engine match: truncated, credentials redacted.
    pub fn from_match(m: &RuleMatch) -> MatchRecord {
        let secret = is_secret_variable(&m.matched_var_name);
        let (data, value) = if secret {
            (REDACTED.to_owned(), REDACTED.to_owned())
        } else {
            (
                truncate(&m.data),
                truncate(&String::from_utf8_lossy(&m.matched_value)),
            )
        };
        MatchRecord {
            id: m.id,
            phase: m.phase,
            severity: m.severity,
            msg: truncate_to(&m.msg, 4 * MAX_DATA_BYTES),
            data,
            var: truncate(&m.matched_var_name),
            value,
        }
    }
}

/// The logged matches of a transaction as records (capped), and how many were left out.
pub fn records(matches: &[RuleMatch]) -> (Vec<MatchRecord>, usize) {
    let logged = matches.iter().filter(|m| m.logged);
    let total = logged.clone().count();
    let kept: Vec<MatchRecord> = logged
        .take(MAX_MATCHES)
        .map(MatchRecord::from_match)
        .collect();
    let omitted = total - kept.len();
    (kept, omitted)
}

/// Whether `name` (`REQUEST_HEADERS:Authorization`, `ARGS:user_password`, …) names a
/// variable whose values are credentials.
pub fn is_secret_variable(name: &str) -> bool {
    let (collection, key) = name.split_once(':').unwrap_or((name, ""));
    let collection = collection.to_ascii_uppercase();
    let key = key.to_ascii_lowercase();
    match collection.as_str() {
        "REQUEST_HEADERS" | "RESPONSE_HEADERS" => SECRET_HEADERS.contains(&key.as_str()),
        "REQUEST_COOKIES" => true,
        "ARGS" | "ARGS_GET" | "ARGS_POST" | "FILES" | "XML" | "MULTIPART_PART_HEADERS" => {
            SECRET_ARG_PARTS.iter().any(|part| key.contains(part))
        }
        _ => false,
    }
}

/// `text` cut to [`MAX_DATA_BYTES`] at a character boundary, with `…` when cut.
pub fn truncate(text: &str) -> String {
    truncate_to(text, MAX_DATA_BYTES)
}

fn truncate_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The label of a rule's family for metrics: the CRS rule file (`942` for
/// REQUEST-942-APPLICATION-ATTACK-SQLI), `200` for ModSecurity's recommended rules, else
/// `other`. A fixed set, so the metric's series stay bounded.
pub fn family(id: u32) -> &'static str {
    let prefix = id / 1000;
    let found = match id {
        900_000..=999_999 => FAMILIES.iter().find(|f| f.parse::<u32>() == Ok(prefix)),
        200_000..=200_999 => Some(&"200"),
        _ => None,
    };
    found.copied().unwrap_or("other")
}

/// Every family label [`family`] returns.
pub const FAMILIES: [&str; 28] = [
    "200", "901", "905", "911", "913", "920", "921", "922", "930", "931", "932", "933", "934",
    "941", "942", "943", "944", "949", "950", "951", "952", "953", "954", "955", "956", "959",
    "980", "other",
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule_match(var: &str, value: &str, data: &str) -> RuleMatch {
        RuleMatch {
            id: 942100,
            phase: 2,
            logged: true,
            msg: "SQL Injection Attack Detected via libinjection".into(),
            data: data.into(),
            severity: Some(2),
            tags: Vec::new().into(),
            matched_var_name: var.into(),
            matched_value: value.as_bytes().to_vec(),
            disruptive: false,
        }
    }

    #[test]
    fn credentials_are_redacted() {
        for var in [
            "REQUEST_HEADERS:Authorization",
            "REQUEST_HEADERS:cookie",
            "REQUEST_COOKIES:session",
            "ARGS:password",
            "ARGS_POST:user[Passwd]",
            "ARGS:json.auth.token",
            "ARGS:api_key",
        ] {
            let m = rule_match(var, "hunter2' OR 1=1", "Matched Data: hunter2' found");
            let r = MatchRecord::from_match(&m);
            assert_eq!(
                (r.value.as_str(), r.data.as_str()),
                (REDACTED, REDACTED),
                "{var}"
            );
            assert_eq!(r.var, var);
        }
        let m = rule_match(
            "ARGS:id",
            "1' OR 1=1--",
            "Matched Data: s&1c found within ARGS:id",
        );
        let r = MatchRecord::from_match(&m);
        assert_eq!(r.value, "1' OR 1=1--");
        assert!(r.data.starts_with("Matched Data"));
    }

    #[test]
    fn long_data_is_cut_at_a_character_boundary() {
        let long = "é".repeat(80);
        let r = MatchRecord::from_match(&rule_match("ARGS:q", &long, &long));
        assert!(r.value.len() <= MAX_DATA_BYTES + "…".len());
        assert!(r.value.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn only_logged_matches_are_recorded_and_capped() {
        let mut all: Vec<RuleMatch> = (0..30)
            .map(|i| {
                let mut m = rule_match("ARGS:a", "x", "y");
                m.id = 942_000 + i;
                m
            })
            .collect();
        all[0].logged = false;
        let (kept, omitted) = records(&all);
        assert_eq!(kept.len(), MAX_MATCHES);
        assert_eq!(kept[0].id, 942_001);
        assert_eq!(omitted, 29 - MAX_MATCHES);
    }

    #[test]
    fn families_are_rule_files() {
        assert_eq!(family(942100), "942");
        assert_eq!(family(949110), "949");
        assert_eq!(family(980170), "980");
        assert_eq!(family(200002), "200");
        assert_eq!(family(10000), "other");
        assert_eq!(family(999999), "other");
    }

    proptest! {
        #[test]
        fn truncation_is_bounded_and_a_prefix(text in "\\PC{0,200}") {
            let cut = truncate(&text);
            prop_assert!(cut.len() <= MAX_DATA_BYTES + "…".len());
            let kept = cut.strip_suffix('…').unwrap_or(&cut);
            prop_assert!(text.starts_with(kept));
        }

        #[test]
        fn secrets_never_reach_the_record(
            key in "(x|user_|X)?(password|Password|TOKEN|session|Auth)[a-z]{0,3}",
            secret in "[A-Z0-9' ]{4,40}",
        ) {
            let var = format!("ARGS:{key}");
            let r = MatchRecord::from_match(&rule_match(&var, &secret, &format!("found {secret}")));
            prop_assert!(!r.value.contains(&secret) && !r.data.contains(&secret));
        }

        #[test]
        fn family_is_always_a_known_label(id in any::<u32>()) {
            prop_assert!(FAMILIES.contains(&family(id)));
        }
    }
}
