//! Workload identity for Bulkhead: SPIFFE IDs, the certificate authority, X.509-SVIDs,
//! trust bundles, rustls verifiers that enforce the SVID rules, automatic rotation and
//! join tokens.

pub mod bundle;
pub mod ca;
pub mod rotation;
pub mod spiffe;
pub mod svid;
pub mod token;
pub mod verify;
mod x509;

pub use bundle::{BundleError, TrustBundle};
pub use spiffe::{SpiffeId, SpiffeIdError, TrustDomain};
