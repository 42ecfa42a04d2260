//! Precompiled matchers for Bulkhead's policy engine.
//!
//! The policy engine evaluates every connection (L4) and every request (L7)
//! against compiled policy, so this crate splits each matcher into two halves:
//!
//! * **compile** (`parse`, `new`, `from_blocks`): runs once when policy
//!   changes, validates input, may allocate, and returns a typed error whose
//!   message says what was expected;
//! * **match** (`matches`, `contains`): runs on the hot path, does no parsing
//!   and no allocation in the common case.
//!
//! Modules:
//!
//! * [`string`]: Istio string patterns (`*`, `abc*`, `*abc`, exact) for
//!   principals, namespaces, hosts, methods, header values and claims.
//! * [`path`]: request path normalization and Istio path patterns, including
//!   Envoy URI templates (`{*}`, `{**}`).
//! * [`cidr`]: CIDR parsing and IP sets for Kubernetes `ipBlock` and Istio
//!   `ipBlocks` / `remoteIpBlocks`.
//!
//! The crate has no I/O and no global state; every value is immutable after
//! construction and therefore `Send + Sync`.

#![warn(missing_docs)]

pub mod cidr;
pub mod path;
pub mod string;

pub use cidr::{CidrError, IpSet, is_strict_subnet_of, is_subnet_of, parse_cidr};
pub use path::{PathError, PathPattern, PathSet, PathTemplate, PatternError, normalize_path};
pub use string::{StringMatch, StringSet};
