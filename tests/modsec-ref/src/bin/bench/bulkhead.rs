//! bulkhead-waf's side of the benchmark.

use std::sync::Arc;

use bulkhead_modsec_ref::bulkhead_rules;
use bulkhead_modsec_ref::crs::Profile;
use bulkhead_modsec_ref::drive::{self, Exchange, Outcome};
use bulkhead_waf::{RuleSet, Transaction};

use crate::Engine;

struct Bulkhead(Arc<RuleSet>);

impl Engine for Bulkhead {
    fn version(&self) -> String {
        format!(
            "bulkhead-waf {} ({} rules)",
            env!("CARGO_PKG_VERSION"),
            self.0.rule_count()
        )
    }
    fn run(&self, ex: &Exchange) -> anyhow::Result<Outcome> {
        let mut tx = Transaction::new(Arc::clone(&self.0));
        Ok(drive::drive(&mut tx, ex))
    }
}

/// CRS at PL1 with the engine on, from the corpus files unchanged.
pub(crate) fn load(corpus: &std::path::Path) -> anyhow::Result<Box<dyn Engine>> {
    Ok(Box::new(Bulkhead(
        bulkhead_rules(Profile::Pl1On, corpus).map_err(anyhow::Error::msg)?,
    )))
}
