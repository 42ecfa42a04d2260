//! The Bulkhead sidecar: mutual TLS between workloads with policy enforced on every
//! connection and request.
//!
//! A request moves through phases, one module each: accept → detect → (inbound: mTLS
//! handshake, peer identity) → authorize → (inbound HTTP: web application firewall) → route → balance → connect → forward →
//! respond/log. Configuration arrives as one typed [`snapshot::Snapshot`], built from a
//! `ProxyConfig` file in standalone mode ([`reload::ConfigSource`]) or from the control
//! plane's snapshots ([`control::ControlledSource`]).

pub mod accesslog;
pub mod admin;
pub mod config;
pub mod control;
pub mod detect;
pub mod error;
pub mod forward;
mod inbound;
pub mod load;
pub mod metrics;
mod outbound;
pub mod reload;
pub mod resilience;
mod respond;
pub mod run;
pub mod snapshot;
pub mod waf;

pub use error::ProxyError;
pub use run::{Bound, Settings, run};
