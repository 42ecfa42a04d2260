//! Bulkhead's policy engine: Kubernetes NetworkPolicy, Istio PeerAuthentication and Istio
//! AuthorizationPolicy, compiled once into an indexed form and evaluated without parsing.
//!
//! A pure library without I/O: the CLI, the sidecar and the control plane all decide
//! through [`Engine::evaluate`], and every [`Decision`] names the layer, policy and rule
//! that decided it. The semantics are written down in `docs/policy-semantics.md`.

mod authn;
mod authz;
mod decision;
mod engine;
mod eval;
mod explain;
mod labels;
mod network;
pub mod query;
mod request;
mod trust;

pub use decision::{Decision, Direction, Layer, PolicyHit, Reason};
pub use engine::{Engine, Options};
pub use explain::{Explanation, PolicyReport, RuleReport};
pub use request::{Destination, EndpointId, HttpRequest, Jwt, RawPeer, Request, Source};

/// Errors from compiling resources into an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A policy value the loader let through cannot be compiled.
    #[error("{policy}: {message}")]
    Invalid {
        /// `Kind/ns/name`.
        policy: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Two endpoints (a Pod and a Workload) share one `namespace/name`.
    #[error("`{0}` names both a Pod and a Workload; endpoint names must be unique per namespace")]
    DuplicateEndpoint(String),
}
