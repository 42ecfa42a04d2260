//! Request path normalization and Istio path patterns.
//!
//! Policy authors write patterns against canonical paths, and attackers send
//! non-canonical ones (`/admin/%2e%2e/x`, `/a\..\admin`) hoping a matcher and
//! the upstream disagree about what path was asked for. The engine therefore
//! normalizes once with [`normalize_path`] and matches every pattern against
//! that one result.

mod normalize;
mod pattern;

pub use normalize::{PathError, normalize_path};
pub use pattern::{PathPattern, PathSet, PathTemplate, PatternError};

#[cfg(test)]
mod tests;
