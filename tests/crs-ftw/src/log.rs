//! WAF error-log lines: rendering an in-process rule match the way ModSecurity writes it, and
//! reading rule ids back the way go-ftw does (`waflog/read.go`).

use std::sync::LazyLock;

use regex::bytes::Regex;

/// One logged rule match (a rule whose effective actions include `log`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEntry {
    /// Rule id.
    pub id: u32,
    /// Phase the rule ran in.
    pub phase: u8,
    /// Expanded `msg`.
    pub msg: String,
    /// Expanded `logdata`.
    pub data: String,
    /// Severity 0–7, if set.
    pub severity: Option<u8>,
    /// Tags.
    pub tags: Vec<String>,
    /// The variable that matched, e.g. `ARGS:id`.
    pub matched_var_name: String,
}

impl LogEntry {
    /// One error-log line in ModSecurity's style: `[id "…"] [msg "…"] [data "…"] …`, with the
    /// fields escaped as ModSecurity does (quotes and backslashes escaped, other bytes outside
    /// printable ASCII as `\xNN`), so one match is one line.
    pub fn render(&self) -> String {
        let mut line = format!(
            "ModSecurity: Warning. Matched at {}. [id \"{}\"] [msg \"{}\"] [data \"{}\"]",
            escape(&self.matched_var_name),
            self.id,
            escape(&self.msg),
            escape(&self.data),
        );
        if let Some(severity) = self.severity {
            line.push_str(&format!(" [severity \"{severity}\"]"));
        }
        for tag in &self.tags {
            line.push_str(&format!(" [tag \"{}\"]", escape(tag)));
        }
        line.push_str(&format!(" [phase \"{}\"]", self.phase));
        line
    }
}

/// ModSecurity's log escaping: `"` and `\` get a backslash, bytes outside 0x20–0x7e become `\xNN`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// go-ftw's `stdLogIdRegex`: `[id "N"]`, also with escaped quotes or JSON-ish spelling.
static STD_ID: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"\[(?:id |\\?"id\\?":)\\?"(\d+)\\?"\]"#).ok());

/// go-ftw's `jsonLogIdRegex`, tried on a line only when the first finds nothing.
static JSON_ID: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?:\{|,)\s*"(?:id|ruleId)":\s*"?(\d+)"?"#).ok());

/// The sorted, de-duplicated rule ids go-ftw finds in these log lines.
pub fn triggered_rules(lines: &[String]) -> Vec<u32> {
    let mut ids: Vec<u32> = Vec::new();
    for line in lines {
        let line = line.as_bytes();
        for regex in [&*STD_ID, &*JSON_ID].into_iter().flatten() {
            let found: Vec<u32> = regex
                .captures_iter(line)
                .filter_map(|c| c.get(1))
                .filter_map(|m| std::str::from_utf8(m.as_bytes()).ok()?.parse().ok())
                .collect();
            if !found.is_empty() {
                ids.extend(found);
                break;
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(id: u32, data: &str) -> LogEntry {
        LogEntry {
            id,
            phase: 2,
            msg: "Remote Command Execution: SMTP Command Execution".into(),
            data: data.into(),
            severity: Some(2),
            tags: vec!["attack-rce".into()],
            matched_var_name: "ARGS:textarea".into(),
        }
    }

    #[test]
    fn render_is_one_escaped_line() {
        let line = entry(
            932300,
            "Matched Data: \r\nMAIL FROM:<a@b> found within ARGS:textarea: \"q\"\\",
        )
        .render();
        assert!(!line.contains('\n'));
        assert!(line.contains("[id \"932300\"]"), "{line}");
        assert!(line.contains(r#"[data "Matched Data: \x0d\x0aMAIL FROM:<a@b> found within ARGS:textarea: \"q\"\\"]"#), "{line}");
    }

    #[test]
    fn corpus_regexes_match_rendered_lines() {
        let line = entry(932300, "Matched Data: \r\nMAIL FROM:<Smith@bar.com> found within ARGS:textarea: \r\nMAIL FROM:<Smith@bar.com>").render();
        let re = Regex::new(
            "Matched Data:.*MAIL FROM:<Smith@bar.com> found within ARGS:textarea:.*MAIL FROM:<Smith@bar.com>",
        );
        assert!(re.is_ok_and(|re| re.is_match(line.as_bytes())));
        let mut e = entry(922130, "");
        e.msg = "Multipart header contains characters outside of valid range".into();
        let re = Regex::new(
            r#"Multipart parsing error: Multipart: Invalid part header \(contains invalid character\)|\[id "922130"\].*\[msg "Multipart header contains characters outside of valid range"\]"#,
        );
        assert!(re.is_ok_and(|re| re.is_match(e.render().as_bytes())));
        let any = Regex::new(r#"\[id "\d+"\]"#);
        assert!(any.is_ok_and(|re| re.is_match(e.render().as_bytes())));
    }

    #[test]
    fn ids_read_back_like_go_ftw() {
        let lines = vec![
            entry(942100, "x").render(),
            entry(920100, "[id \"1\"] inside data").render(),
            r#"{"transaction":{"messages":[{"details":{"ruleId":"949110"}}]}}"#.to_string(),
            "AH00126: Invalid URI in request".to_string(),
        ];
        // Like go-ftw, an escaped `[id \"1\"]` inside logged data counts too.
        assert_eq!(triggered_rules(&lines), vec![1, 920100, 942100, 949110]);
    }

    proptest! {
        #[test]
        fn any_entry_reads_back(id in 1u32..10_000_000, msg in ".{0,40}", data in ".{0,80}") {
            let e = LogEntry { id, msg, data, ..LogEntry::default() };
            let line = e.render();
            prop_assert!(!line.contains('\n'));
            prop_assert!(triggered_rules(&[line]).contains(&id));
        }
    }
}
