//! libmodsecurity 3.0.9 as the differential reference of `bulkhead-waf`.
//!
//! With the `libmodsecurity` feature (needs `scripts/install-libmodsecurity`): a small
//! hand-written FFI (`ModSecurity`, `RulesSet`, `Transaction` with the same stages as
//! `bulkhead_waf::Transaction`), a CRS loader (`Reference`), the differential test
//! (tests/differential.rs) and the benchmark binary `bulkhead-bench-waf`. Without the feature
//! only the library-free helpers are built, so the workspace builds anywhere.

pub mod crs;
pub mod drive;
pub mod logline;

#[cfg(feature = "libmodsecurity")]
pub mod deviations;
#[cfg(feature = "libmodsecurity")]
mod engines;
#[cfg(feature = "libmodsecurity")]
mod ffi;
#[cfg(feature = "libmodsecurity")]
mod reference;

#[cfg(feature = "libmodsecurity")]
pub use engines::{bulkhead_rules, bulkhead_rules_with};
#[cfg(feature = "libmodsecurity")]
pub use ffi::{Intervention, ModSecurity, RulesSet, Transaction};
#[cfg(feature = "libmodsecurity")]
pub use reference::Reference;
