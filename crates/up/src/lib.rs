//! `bulkhead up DIR`: a whole mesh on one machine from a directory of resources.
//!
//! By phase: [`plan`] loads and checks DIR before anything starts (strict loader, the
//! control plane's own write validation, commands resolved); [`mesh`] starts the embedded
//! control plane ([`control`]), writes every sidecar's ProxyConfig ([`wiring`]) and starts
//! sidecars then workloads under [`supervise`], which restarts what exits; [`tail`] turns
//! the sidecars' access logs into [`Event`]s; [`exec`] is `bulkhead up-exec`, the small
//! parent every workload runs under so that it dies with `up`; [`layout`] names the files
//! under the data directory.

#![warn(missing_docs)]

pub mod control;
pub mod exec;
pub mod layout;
pub mod mesh;
pub mod plan;
pub mod signal;
pub mod supervise;
pub mod tail;
pub mod wiring;

pub use layout::Layout;
pub use mesh::{Mesh, Row, Summary};
pub use plan::Plan;
pub use supervise::{Event, Lifecycle, Role};
pub use tail::Request;
