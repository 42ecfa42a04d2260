//! Reading rule ids out of libmodsecurity's error-log lines, as go-ftw does with the web
//! server's log: a rule "was logged" when its line carries `[id "N"]`.

/// The rule id of one log line.
///
/// libmodsecurity 3 writes `<match text> [file "F"] [line "L"] [id "N"] [rev …] [msg …] …`.
/// The match text and msg/data carry request bytes, which may contain `[id "1"]`; the id
/// that directly follows `[line "L"] ` is the rule's own. (A request that spells out a whole
/// `[line "L"] [id "N"]` would still fool it, as it fools go-ftw's own grep.) Lines without
/// that shape fall back to the first `[id "N"]`.
pub fn rule_id(line: &str) -> Option<u32> {
    let mut rest = line;
    while let Some(at) = rest.find("[line \"") {
        let after = &rest[at + "[line \"".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0
            && let Some(tail) = after[digits..].strip_prefix("\"] ")
            && let Some(id) = id_at_start(tail)
        {
            return Some(id);
        }
        rest = after;
    }
    let at = line.find("[id \"")?;
    id_at_start(&line[at..])
}

/// Parses `[id "N"]` at the start of `s`.
fn id_at_start(s: &str) -> Option<u32> {
    let after = s.strip_prefix("[id \"")?;
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    after[digits..].strip_prefix("\"]")?;
    after[..digits].parse().ok()
}

/// The phase of an intervention message, from `(phase N)`.
pub fn phase(line: &str) -> Option<u8> {
    let at = line.find("(phase ")?;
    let after = &line[at + "(phase ".len()..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    after[digits..].strip_prefix(')')?;
    after[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn id_after_line_wins_over_request_text() {
        // The matched value (before) and the msg (after) both carry `[id "…"]` text.
        let line = "ModSecurity: Warning. Matched \"Operator `Rx' with parameter `x' against \
            variable `ARGS:a' (Value: `[id \"1\"]' ) [file \"/r/REQUEST-942.conf\"] \
            [line \"120\"] [id \"942100\"] [rev \"\"] [msg \"SQL [id \\\"5\\\"]\"]";
        assert_eq!(rule_id(line), Some(942100));
        let plain = "ModSecurity: Warning. x [file \"f\"] [line \"3\"] [id \"920100\"] [rev \"\"]";
        assert_eq!(rule_id(plain), Some(920100));
    }

    #[test]
    fn fallback_and_absent() {
        assert_eq!(rule_id("ModSecurity: [id \"77\"] [msg \"x\"]"), Some(77));
        assert_eq!(rule_id("no id here"), None);
        assert_eq!(rule_id("[id \"\"]"), None);
        assert_eq!(rule_id("[id \"99999999999\"]"), None);
    }

    #[test]
    fn phase_of_intervention() {
        let log = "ModSecurity: Access denied with code 403 (phase 2). Matched …";
        assert_eq!(phase(log), Some(2));
        assert_eq!(phase("no phase"), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = rule_id(&s);
            let _ = phase(&s);
        }

        #[test]
        fn finds_the_id_of_a_wellformed_line(id in 1u32..10_000_000, line in 1u32..100_000, msg in "[a-z ]{0,20}") {
            let l = format!("ModSecurity: Warning. Matched {msg} [file \"f.conf\"] [line \"{line}\"] [id \"{id}\"] [rev \"\"] [msg \"{msg}\"]");
            prop_assert_eq!(rule_id(&l), Some(id));
        }
    }
}
