//! The Bulkhead sidecar: mutual TLS between workloads with policy enforced on every
//! connection and request.
//!
//! A request moves through phases, one module each: accept → detect → (inbound: mTLS
//! handshake, peer identity) → authorize → route → balance → connect → forward →
//! respond/log. Configuration arrives as one typed [`snapshot::Snapshot`], built from a
//! `ProxyConfig` file in standalone mode (and later from the control plane).

pub mod config;
pub mod snapshot;
