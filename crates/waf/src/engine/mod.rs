//! The SecLang engine: compiling directives into a [`RuleSet`] and running [`Transaction`]s.

mod actions;
mod compile;
mod eval;
mod macros;
mod reqbody;
mod rule;
mod settings;
mod state;
mod tx;
mod uri;
mod vars;

use std::path::Path;

pub use compile::RuleSet;
pub use rule::EngineMode;
pub use settings::{LimitAction, Settings};
pub use tx::{Intervention, RuleMatch, Transaction};

use crate::error::WafError;
use crate::parse::ast::Located;

/// Collects SecLang sources in order, then compiles them into a [`RuleSet`].
#[derive(Debug, Default)]
pub struct RuleSetBuilder {
    directives: Vec<Located>,
}

impl RuleSetBuilder {
    /// Parses a SecLang file now (following `Include`, globs allowed).
    pub fn file(mut self, path: impl AsRef<Path>) -> Result<Self, WafError> {
        self.directives
            .extend(crate::parse::parse_file(path.as_ref())?);
        Ok(self)
    }

    /// Parses SecLang text under `label`; relative paths resolve against `base_dir`.
    pub fn text(mut self, label: &str, text: &str, base_dir: &Path) -> Result<Self, WafError> {
        self.directives
            .extend(crate::parse::parse_str(label, text, base_dir)?);
        Ok(self)
    }

    /// Adds the embedded OWASP CRS rule files (`rules/*.conf`, in name order). The caller
    /// provides the setup (`crs-setup.conf` equivalents) before this.
    pub fn embedded_crs(mut self) -> Result<Self, WafError> {
        for (name, bytes) in crate::crs::rule_files() {
            let text = String::from_utf8_lossy(bytes);
            let label = format!("{}/{name}", crate::crs::EMBEDDED_DIR);
            self.directives.extend(crate::parse::parse_str(
                &label,
                &text,
                Path::new(crate::crs::EMBEDDED_DIR),
            )?);
        }
        Ok(self)
    }

    /// Compiles everything: regexes, phrase sets, chains, markers, defaults, exclusions.
    pub fn build(self) -> Result<RuleSet, WafError> {
        compile::compile(&self.directives)
    }
}
