//! One module per group of resource kinds.

pub mod core;
pub mod istio;
pub mod network;
pub mod traffic;
pub mod waf;
