//! A reusable emulation of go-ftw 2.1.0, the OWASP CRS regression-test runner, for running
//! the CRS test corpus against an in-process WAF.
//!
//! The pieces, in the order a stage goes through them:
//! - [`load`]: read every go-ftw YAML file below a directory ([`model`] is the format);
//! - [`wire`]: build the exact bytes go-ftw sends (header sorting and autocompletion, form
//!   encoding, multipart CRLF, `encoded_request`, the `repeat` [`template`]);
//! - [`server`]: what Apache httpd (the CI's front server) does first: answer 400 to
//!   malformed requests, merge repeated headers;
//! - the WAF under test (a closure given to [`runner::run_suite`]), with [`albedo`] as the
//!   backend and [`log`] to render its matches as ModSecurity error-log lines;
//! - [`expect`]: check the outcome against the stage's `output`, after [`overrides`].

/// The albedo backend emulation lives in the engine crate (`bulkhead waf test` uses it too).
pub use bulkhead_waf::replay::albedo;
pub mod expect;
pub mod golang;
pub mod load;
pub mod log;
pub mod model;
pub mod overrides;
pub mod runner;
pub mod server;
pub mod template;
pub mod wire;
