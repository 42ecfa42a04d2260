//! Bulkhead's web application firewall: a SecLang engine that runs the OWASP Core Rule Set
//! (CRS v4) unchanged, natively in Rust.
//!
//! The crate does no I/O on the data path: a [`Transaction`] is fed the request and response
//! piece by piece (the same stages as libmodsecurity's C API) and answers with an optional
//! [`Intervention`]. Rule files are read only when a rule set is compiled.

pub mod body;
pub mod crs;
mod engine;
mod error;
pub mod http1;
pub mod operator;
pub mod parse;
pub mod transform;

pub use engine::{
    EngineMode, Intervention, LimitAction, RuleMatch, RuleSet, RuleSetBuilder, Settings,
    Transaction,
};
pub use error::WafError;
pub mod replay;
