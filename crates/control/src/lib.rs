//! Bulkhead's control plane (`bulkhead control`): the operator REST API on an embedded
//! store, the CA service, and the proxy API that pushes every sidecar its own versioned
//! snapshot. docs/control-plane.md is the reference; docs/ARCHITECTURE.md places it.
//!
//! Layout, by request phase: [`server`] accepts TLS connections and routes gRPC to
//! [`proxyapi`] and everything else to [`rest`]; both read and write through [`state`],
//! which owns the store, the CA, the mesh view and the change notifications; [`error`] is
//! the one place errors become HTTP or gRPC statuses.

pub mod bootstrap;
pub mod error;
pub mod mesh;
pub mod metrics;
pub mod proxyapi;
pub mod rest;
pub mod server;
pub mod state;
pub mod tls;
pub mod validate;

pub use bootstrap::{Bootstrap, MIN_SVID_TTL, Options};
pub use error::ApiError;
pub use server::Server;
pub use state::Shared;

/// The namespace whose policies apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "bulkhead-system";

/// `t` as RFC 3339 in UTC (the format every API time uses).
pub use bulkhead_identity::ca::rfc3339;
