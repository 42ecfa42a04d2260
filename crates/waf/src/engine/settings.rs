//! Engine settings from `Sec…` configuration directives.

use super::rule::EngineMode;

/// What `SecRequestBodyLimitAction` / `SecResponseBodyLimitAction` do with a body over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// Refuse the transaction (413 for requests, 500 for responses, as libmodsecurity).
    Reject,
    /// Inspect the part up to the limit.
    ProcessPartial,
}

/// The engine configuration of a rule set.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SecRuleEngine`.
    pub engine: EngineMode,
    /// `SecRequestBodyAccess`.
    pub request_body_access: bool,
    /// `SecRequestBodyLimit` in bytes.
    pub request_body_limit: usize,
    /// `SecRequestBodyNoFilesLimit` in bytes.
    pub request_body_no_files_limit: usize,
    /// `SecRequestBodyLimitAction`.
    pub request_body_limit_action: LimitAction,
    /// `SecResponseBodyAccess`.
    pub response_body_access: bool,
    /// `SecResponseBodyLimit` in bytes.
    pub response_body_limit: usize,
    /// `SecResponseBodyLimitAction`.
    pub response_body_limit_action: LimitAction,
    /// `SecResponseBodyMimeType`, lower-cased.
    pub response_mime_types: Vec<String>,
    /// `SecArgumentsLimit`.
    pub arguments_limit: usize,
    /// `SecRequestBodyJsonDepthLimit`.
    pub json_depth_limit: usize,
    /// `SecArgumentSeparator`.
    pub argument_separator: u8,
    /// `SecComponentSignature` values.
    pub signatures: Vec<String>,
}

impl Default for Settings {
    /// libmodsecurity's defaults when a directive is absent.
    fn default() -> Self {
        Settings {
            engine: EngineMode::Off,
            request_body_access: false,
            request_body_limit: 134_217_728,
            request_body_no_files_limit: 1_048_576,
            request_body_limit_action: LimitAction::Reject,
            response_body_access: false,
            response_body_limit: 524_288,
            response_body_limit_action: LimitAction::Reject,
            response_mime_types: vec!["text/plain".into(), "text/html".into()],
            arguments_limit: 1000,
            json_depth_limit: 10_000,
            argument_separator: b'&',
            signatures: Vec::new(),
        }
    }
}

/// Directives accepted and ignored: logging, auditing, storage and PCRE tuning that have
/// no bearing on an in-process engine without persistent collections.
const IGNORED: &[&str] = &[
    "secauditengine",
    "secauditlog",
    "secauditlog2",
    "secauditlogparts",
    "secauditlogrelevantstatus",
    "secauditlogtype",
    "secauditlogformat",
    "secauditlogstoragedir",
    "secauditlogdirmode",
    "secauditlogfilemode",
    "secdebuglog",
    "secdebugloglevel",
    "sectmpdir",
    "secdatadir",
    "secuploaddir",
    "secuploadfilemode",
    "secuploadkeepfiles",
    "secuploadfilelimit",
    "sectmpsaveuploadedfiles",
    "secpcrematchlimit",
    "secpcrematchlimitrecursion",
    "secstatusengine",
    "secunicodemapfile",
    "seccookieformat",
    "secdisablebackendcompression",
    "seccollectiontimeout",
    "secserversignature",
    "secwebappid",
    "secsensorid",
    "sechttpblkey",
    "secgeolookupdb",
    "secconnengine",
    "secremoterules",
    "secremoterulesfailaction",
    "secxmlexternalentity",
    "secrequestbodyinmemorylimit",
    "secinterceptonerror",
];

impl Settings {
    /// Applies one setting directive; `Err` says what was expected.
    pub fn apply(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        if IGNORED.contains(&lower.as_str()) {
            return Ok(());
        }
        let one = || -> Result<&str, String> {
            match args {
                [a] => Ok(a.as_str()),
                _ => Err(format!("{name} expects one argument, got {}", args.len())),
            }
        };
        match lower.as_str() {
            "secruleengine" => {
                let a = one()?;
                self.engine = EngineMode::parse(a).ok_or_else(|| {
                    format!("{name}: expected On, Off or DetectionOnly, got {a:?}")
                })?;
            }
            "secrequestbodyaccess" => self.request_body_access = on_off(name, one()?)?,
            "secresponsebodyaccess" => self.response_body_access = on_off(name, one()?)?,
            "secrequestbodylimit" => self.request_body_limit = number(name, one()?)?,
            "secrequestbodynofileslimit" => {
                self.request_body_no_files_limit = number(name, one()?)?
            }
            "secresponsebodylimit" => self.response_body_limit = number(name, one()?)?,
            "secargumentslimit" => self.arguments_limit = number(name, one()?)?,
            "secrequestbodyjsondepthlimit" => self.json_depth_limit = number(name, one()?)?,
            "secrequestbodylimitaction" => {
                self.request_body_limit_action = limit_action(name, one()?)?
            }
            "secresponsebodylimitaction" => {
                self.response_body_limit_action = limit_action(name, one()?)?
            }
            "secresponsebodymimetype" => {
                self.response_mime_types = args
                    .iter()
                    .flat_map(|a| a.split_whitespace())
                    .map(|m| m.to_ascii_lowercase())
                    .collect();
            }
            "secresponsebodymimetypesclear" => self.response_mime_types.clear(),
            "secargumentseparator" => {
                let a = one()?;
                match a.as_bytes() {
                    [b] => self.argument_separator = *b,
                    _ => return Err(format!("{name}: expected a single character, got {a:?}")),
                }
            }
            "seccomponentsignature" => self.signatures.push(one()?.to_string()),
            _ => return Err(format!("unknown directive {name}")),
        }
        Ok(())
    }
}

fn on_off(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{name}: expected On or Off, got {v:?}")),
    }
}

fn number(name: &str, v: &str) -> Result<usize, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{name}: expected a number, got {v:?}"))
}

fn limit_action(name: &str, v: &str) -> Result<LimitAction, String> {
    match v.to_ascii_lowercase().as_str() {
        "reject" => Ok(LimitAction::Reject),
        "processpartial" => Ok(LimitAction::ProcessPartial),
        _ => Err(format!(
            "{name}: expected Reject or ProcessPartial, got {v:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_and_rejects() {
        let mut s = Settings::default();
        s.apply("SecRuleEngine", &["DetectionOnly".into()]).unwrap();
        s.apply(
            "SecResponseBodyMimeType",
            &["text/plain text/html".into(), "application/json".into()],
        )
        .unwrap();
        s.apply("SecAuditEngine", &["RelevantOnly".into()]).unwrap();
        assert_eq!(s.engine, EngineMode::DetectionOnly);
        assert_eq!(s.response_mime_types.len(), 3);
        assert!(
            s.apply("SecRequestBodyLimit", &["lots".into()])
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(
            s.apply("SecNoSuch", &[])
                .unwrap_err()
                .contains("unknown directive")
        );
    }
}
