//! libmodsecurity loaded with a CRS profile, ready for transactions.

use std::path::{Path, PathBuf};

use crate::crs::{self, Profile};
use crate::ffi::{ModSecurity, RulesSet, Transaction};

/// libmodsecurity with CRS loaded (adapted as [`crate::crs`] describes).
pub struct Reference {
    // Field order is drop order: the rules before the library instance.
    rules: RulesSet,
    msc: ModSecurity,
    files: Vec<PathBuf>,
    _scratch: tempfile::TempDir,
}

impl Reference {
    /// Loads `profile` from the CRS corpus at `corpus`; Err carries ModSecurity's error text.
    pub fn load(profile: Profile, corpus: &Path) -> Result<Self, String> {
        let scratch = tempfile::Builder::new()
            .prefix("bulkhead-modsec-ref.")
            .tempdir()
            .map_err(|e| format!("scratch directory: {e}"))?;
        let files = crs::reference_files(profile, corpus, scratch.path())?;
        let msc = ModSecurity::new()?;
        let mut rules = RulesSet::new()?;
        for f in &files {
            rules
                .add_file(f)
                .map_err(|e| format!("loading {}: {e}", f.display()))?;
        }
        Ok(Self {
            rules,
            msc,
            files,
            _scratch: scratch,
        })
    }

    /// A new transaction on the loaded rules.
    pub fn transaction(&self) -> Result<Transaction<'_>, String> {
        Transaction::new(&self.msc, &self.rules)
    }

    /// The library instance.
    pub fn modsecurity(&self) -> &ModSecurity {
        &self.msc
    }

    /// The files loaded, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}
