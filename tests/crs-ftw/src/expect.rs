//! Checking a stage's outcome against its `output` block, in go-ftw 2.1.0's order
//! (`runner/run.go` `checkResult`): expected error, status, response text, then the log.

use regex::bytes::Regex;

use crate::log::triggered_rules;
use crate::model::Output;

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A response arrived.
    Response {
        /// Its status.
        status: u16,
        /// The raw response text (status line, headers, body) for `response_contains`.
        text: String,
        /// The WAF log lines written for the request.
        log_lines: Vec<String>,
    },
    /// The exchange failed at the transport level (e.g. an HTTP/0.9 answer).
    TransportError(String),
}

impl Observed {
    /// The rule ids go-ftw would find in this outcome's log.
    pub fn triggered(&self) -> Vec<u32> {
        match self {
            Observed::Response { log_lines, .. } => triggered_rules(log_lines),
            Observed::TransportError(_) => Vec::new(),
        }
    }
}

/// Checks an outcome; `Err` lists why the stage failed.
pub fn check(output: &Output, observed: &Observed) -> Result<(), Vec<String>> {
    let expect_error = output.expect_error == Some(true);
    let (status, text, lines) = match observed {
        Observed::TransportError(_) if expect_error => return Ok(()),
        Observed::TransportError(why) => {
            return Err(vec![format!("unexpected transport error: {why}")]);
        }
        Observed::Response { .. } if expect_error => {
            return Err(vec!["expected a transport error, got a response".into()]);
        }
        Observed::Response {
            status,
            text,
            log_lines,
        } => (*status, text, log_lines),
    };
    if output.status != 0 && output.status != status {
        return Err(vec![format!(
            "expected status {}, got {status}",
            output.status
        )]);
    }
    if !output.response_contains.is_empty() && !text.contains(&output.response_contains) {
        return Err(vec![format!(
            "response does not contain {:?}",
            output.response_contains
        )]);
    }
    let mut problems = log_contains(output, lines);
    if problems.is_empty() {
        problems = log_lacks(output, lines);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `assertLogContains`: match_regex, then expect_ids; `isolated` overrides both.
fn log_contains(output: &Output, lines: &[String]) -> Vec<String> {
    let log = &output.log;
    let mut problems = Vec::new();
    if !log.match_regex.is_empty() && !any_line_matches(&log.match_regex, lines, &mut problems) {
        problems.push(format!("no log line matches {:?}", log.match_regex));
    }
    let triggered = triggered_rules(lines);
    if problems.is_empty() && !log.expect_ids.is_empty() {
        let missing: Vec<u32> = log
            .expect_ids
            .iter()
            .copied()
            .filter(|id| !triggered.contains(id))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "expected ids {missing:?} not logged (logged: {triggered:?})"
            ));
        }
    }
    if output.isolated {
        problems.clear();
        if triggered.len() != 1 {
            problems.push(format!(
                "isolated test logged {} rules: {triggered:?}",
                triggered.len()
            ));
        }
    }
    problems
}

/// `assertNoLogContains`: no_match_regex, then no_expect_ids.
fn log_lacks(output: &Output, lines: &[String]) -> Vec<String> {
    let log = &output.log;
    let mut problems = Vec::new();
    if !log.no_match_regex.is_empty() && any_line_matches(&log.no_match_regex, lines, &mut problems)
    {
        problems.push(format!("a log line matches {:?}", log.no_match_regex));
    }
    if problems.is_empty() && !log.no_expect_ids.is_empty() {
        let triggered = triggered_rules(lines);
        let found: Vec<u32> = log
            .no_expect_ids
            .iter()
            .copied()
            .filter(|id| triggered.contains(id))
            .collect();
        if !found.is_empty() {
            problems.push(format!("unexpected ids {found:?} logged"));
        }
    }
    problems
}

/// Whether a Go regexp matches any line (each line on its own, as go-ftw does).
fn any_line_matches(pattern: &str, lines: &[String], problems: &mut Vec<String>) -> bool {
    match Regex::new(pattern) {
        Ok(re) => lines.iter().any(|l| re.is_match(l.as_bytes())),
        Err(e) => {
            problems.push(format!("invalid regexp {pattern:?}: {e}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogExpect;

    fn response(status: u16, ids: &[u32]) -> Observed {
        Observed::Response {
            status,
            text: String::new(),
            log_lines: ids
                .iter()
                .map(|id| format!("ModSecurity: Warning. [id \"{id}\"] [msg \"m\"]"))
                .collect(),
        }
    }

    fn output(log: LogExpect) -> Output {
        Output {
            log,
            ..Output::default()
        }
    }

    #[test]
    fn ids() {
        let o = output(LogExpect {
            expect_ids: vec![1, 2],
            no_expect_ids: vec![3],
            ..LogExpect::default()
        });
        assert_eq!(check(&o, &response(200, &[1, 2, 4])), Ok(()));
        assert!(check(&o, &response(200, &[1])).is_err());
        assert!(check(&o, &response(200, &[1, 2, 3])).is_err());
    }

    #[test]
    fn regexes() {
        let o = output(LogExpect {
            no_match_regex: r#"\[id "\d+"\]"#.into(),
            ..LogExpect::default()
        });
        assert_eq!(check(&o, &response(200, &[])), Ok(()));
        assert!(check(&o, &response(200, &[5])).is_err());
        let o = output(LogExpect {
            match_regex: "msg \"m\"".into(),
            ..LogExpect::default()
        });
        assert_eq!(check(&o, &response(200, &[5])), Ok(()));
        assert!(check(&o, &response(200, &[])).is_err());
        let o = output(LogExpect {
            match_regex: "(".into(),
            ..LogExpect::default()
        });
        assert!(check(&o, &response(200, &[5])).is_err());
    }

    #[test]
    fn status_and_errors() {
        let o = Output {
            status: 400,
            ..Output::default()
        };
        assert_eq!(check(&o, &response(400, &[])), Ok(()));
        assert!(check(&o, &response(200, &[])).is_err());
        let o = Output {
            expect_error: Some(true),
            ..Output::default()
        };
        assert_eq!(check(&o, &Observed::TransportError("0.9".into())), Ok(()));
        assert!(check(&o, &response(200, &[])).is_err());
        assert!(check(&Output::default(), &Observed::TransportError("x".into())).is_err());
        assert_eq!(check(&Output::default(), &response(200, &[1])), Ok(()));
    }

    #[test]
    fn isolated() {
        let o = Output {
            isolated: true,
            log: LogExpect {
                expect_ids: vec![7],
                ..LogExpect::default()
            },
            ..Output::default()
        };
        assert_eq!(check(&o, &response(200, &[7])), Ok(()));
        assert!(check(&o, &response(200, &[7, 8])).is_err());
    }
}
