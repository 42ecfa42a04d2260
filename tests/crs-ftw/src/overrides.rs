//! Expectation overrides: go-ftw's platform overrides files (`httpd-overrides.yaml`, …) and
//! our own format, in which every entry must say why.
//!
//! Our format (`tests/crs-ftw/overrides.yaml`):
//! ```yaml
//! overrides:
//!   - rule_id: 920100
//!     test_ids: [4]
//!     reason: "why this test cannot pass as written"
//!     skip: true                      # either skip the test …
//!   - rule_id: 942131
//!     test_ids: [3, 5]
//!     stage_ids: [0]                  # optional: only these stages (0-based)
//!     reason: "…"
//!     output: {log: {expect_ids: [942131]}}   # … or expect this instead (go-ftw `output`)
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::load::Suite;
use crate::model::Output;

/// Why an overrides file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The file or label.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

/// What an override does to the tests it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideAction {
    /// The test is not run.
    Skip,
    /// The stage's expectation is replaced by this one.
    Expect(Output),
}

/// One override entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideEntry {
    /// The rule whose tests are overridden.
    pub rule_id: u32,
    /// The tests (go-ftw: an empty list matches nothing).
    pub test_ids: Vec<u32>,
    /// The stages (0-based); empty means all.
    pub stage_ids: Vec<usize>,
    /// Why.
    pub reason: String,
    /// What to do.
    pub action: OverrideAction,
    /// Which file it came from.
    pub source: String,
}

impl OverrideEntry {
    fn names(&self, rule_id: u32, test_id: u32) -> bool {
        self.rule_id == rule_id && self.test_ids.contains(&test_id)
    }
}

/// A set of overrides; later entries win over earlier ones.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The entries in load order.
    pub entries: Vec<OverrideEntry>,
}

#[derive(Deserialize)]
struct GoFtwFile {
    #[serde(default)]
    test_overrides: Vec<GoFtwOverride>,
}

#[derive(Deserialize)]
struct GoFtwOverride {
    rule_id: u32,
    #[serde(default)]
    test_ids: Vec<u32>,
    #[serde(default)]
    stage_ids: Vec<usize>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    output: Output,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OurFile {
    #[serde(default)]
    overrides: Vec<OurOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OurOverride {
    rule_id: u32,
    test_ids: Vec<u32>,
    #[serde(default)]
    stage_ids: Vec<usize>,
    reason: String,
    #[serde(default)]
    skip: bool,
    output: Option<Output>,
}

impl Overrides {
    /// Parses a go-ftw overrides file: each entry replaces the whole `output` of the stages it names.
    pub fn parse_go_ftw(text: &str, source_name: &str) -> Result<Overrides, OverridesError> {
        let invalid = |message: String| OverridesError::Invalid {
            source_name: source_name.into(),
            message,
        };
        let file: Option<GoFtwFile> =
            serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let entries = file
            .map(|f| f.test_overrides)
            .unwrap_or_default()
            .into_iter()
            .map(|o| OverrideEntry {
                rule_id: o.rule_id,
                test_ids: o.test_ids,
                stage_ids: o.stage_ids,
                reason: o.reason,
                action: OverrideAction::Expect(o.output.normalized()),
                source: source_name.into(),
            })
            .collect();
        Ok(Overrides { entries })
    }

    /// Parses our format; every entry needs test ids, a reason, and exactly one of skip/output.
    pub fn parse_ours(text: &str, source_name: &str) -> Result<Overrides, OverridesError> {
        let invalid = |message: String| OverridesError::Invalid {
            source_name: source_name.into(),
            message,
        };
        let file: Option<OurFile> =
            serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = Vec::new();
        for (index, o) in file
            .map(|f| f.overrides)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("entry {} (rule {})", index + 1, o.rule_id);
            if o.reason.trim().is_empty() {
                return Err(invalid(format!("{at}: `reason` must say why")));
            }
            if o.test_ids.is_empty() {
                return Err(invalid(format!(
                    "{at}: `test_ids` must name at least one test"
                )));
            }
            let action = match (o.skip, o.output) {
                (true, None) => OverrideAction::Skip,
                (false, Some(output)) => OverrideAction::Expect(output.normalized()),
                _ => {
                    return Err(invalid(format!(
                        "{at}: give exactly one of `skip: true` and `output`"
                    )));
                }
            };
            entries.push(OverrideEntry {
                rule_id: o.rule_id,
                test_ids: o.test_ids,
                stage_ids: o.stage_ids,
                reason: o.reason,
                action,
                source: source_name.into(),
            });
        }
        Ok(Overrides { entries })
    }

    /// Reads a go-ftw overrides file.
    pub fn load_go_ftw(path: &Path) -> Result<Overrides, OverridesError> {
        Self::parse_go_ftw(&read(path)?, &path.display().to_string())
    }

    /// Reads an overrides file in our format.
    pub fn load_ours(path: &Path) -> Result<Overrides, OverridesError> {
        Self::parse_ours(&read(path)?, &path.display().to_string())
    }

    /// Appends another set (its entries win).
    pub fn extend(&mut self, other: Overrides) {
        self.entries.extend(other.entries);
    }

    /// The reason a test is skipped, if the last entry naming it says skip.
    pub fn skip_reason(&self, rule_id: u32, test_id: u32) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.names(rule_id, test_id) && e.stage_ids.is_empty())
            .filter(|e| e.action == OverrideAction::Skip)
            .map(|e| e.reason.as_str())
    }

    /// The expectation for a stage after overrides (the last matching entry wins).
    pub fn output_for<'a>(
        &'a self,
        rule_id: u32,
        test_id: u32,
        stage: usize,
        original: &'a Output,
    ) -> &'a Output {
        self.entries
            .iter()
            .rev()
            .filter(|e| {
                e.names(rule_id, test_id)
                    && (e.stage_ids.is_empty() || e.stage_ids.contains(&stage))
            })
            .find_map(|e| match &e.action {
                OverrideAction::Expect(output) => Some(output),
                OverrideAction::Skip => None,
            })
            .unwrap_or(original)
    }

    /// Entries naming tests that are not in the suite (`rule-test` names).
    pub fn unused(&self, suite: &Suite) -> Vec<String> {
        let mut unused = Vec::new();
        for entry in &self.entries {
            for &test_id in &entry.test_ids {
                if !suite
                    .cases()
                    .any(|(_, t)| t.rule_id == entry.rule_id && t.test_id == test_id)
                {
                    unused.push(format!("{}-{} ({})", entry.rule_id, test_id, entry.source));
                }
            }
        }
        unused
    }
}

fn read(path: &Path) -> Result<String, OverridesError> {
    std::fs::read_to_string(path).map_err(|source| OverridesError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_ftw_format() {
        let text = r#"
version: "v0.0.0"
meta: {engine: "ModSecurity v2", platform: "httpd", annotations: [{purpose: "x"}]}
test_overrides:
  - rule_id: 920360
    test_ids: [1]
    reason: Requires ARG_NAME_LENGTH
    output:
      status: 200
      log:
        no_expect_ids: [920360]
  - rule_id: 933220
    test_ids: [2, 4]
    reason: "no output: always passes"
"#;
        let o = Overrides::parse_go_ftw(text, "httpd").unwrap_or_default();
        assert_eq!(o.entries.len(), 2);
        let original = Output::default();
        assert_eq!(o.output_for(920360, 1, 0, &original).status, 200);
        assert_eq!(o.output_for(920360, 2, 0, &original), &original);
        assert_eq!(o.output_for(933220, 4, 0, &original), &Output::default());
        assert_eq!(o.skip_reason(920360, 1), None);
    }

    #[test]
    fn our_format() {
        let text = r#"
overrides:
  - rule_id: 1
    test_ids: [2]
    reason: "not reachable in-process"
    skip: true
  - rule_id: 3
    test_ids: [4]
    stage_ids: [1]
    reason: "engine difference"
    output: {log: {expect_ids: [3]}}
"#;
        let o = Overrides::parse_ours(text, "ours").unwrap_or_default();
        assert_eq!(o.skip_reason(1, 2), Some("not reachable in-process"));
        let original = Output::default();
        assert_eq!(o.output_for(3, 4, 0, &original), &original);
        assert_eq!(o.output_for(3, 4, 1, &original).log.expect_ids, vec![3]);
        assert!(Overrides::parse_ours("overrides: []\n", "x").is_ok());
        assert!(Overrides::parse_ours("# nothing yet\n", "x").is_ok());
    }

    #[test]
    fn our_format_is_strict() {
        for bad in [
            "overrides:\n  - {rule_id: 1, test_ids: [1], reason: '', skip: true}\n",
            "overrides:\n  - {rule_id: 1, test_ids: [], reason: r, skip: true}\n",
            "overrides:\n  - {rule_id: 1, test_ids: [1], reason: r}\n",
            "overrides:\n  - {rule_id: 1, test_ids: [1], reason: r, skip: true, output: {status: 1}}\n",
            "overrides:\n  - {rule_id: 1, test_ids: [1], skip: true}\n",
            "overrides:\n  - {rule_id: 1, test_ids: [1], reason: r, skip: true, extra: 1}\n",
        ] {
            assert!(Overrides::parse_ours(bad, "x").is_err(), "{bad}");
        }
    }
}
