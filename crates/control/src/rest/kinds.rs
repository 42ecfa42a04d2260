//! Kind names as clients may write them: `AuthorizationPolicy`, `authorizationpolicy`,
//! `authorizationpolicies`, or the short names kubectl users know.

use crate::error::ApiError;

use bulkhead_api::kinds::KINDS;
pub use bulkhead_api::kinds::namespaced;

/// The canonical kind for `name`, or an `Invalid` error listing the kinds.
pub fn canonical(name: &str) -> Result<&'static str, ApiError> {
    bulkhead_api::kinds::canonical(name).ok_or_else(|| {
        let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        ApiError::invalid(format!(
            "unknown kind `{name}`, expected one of {}",
            known.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(canonical("netpol").unwrap(), "NetworkPolicy");
        assert_eq!(
            canonical("AuthorizationPolicies").unwrap(),
            "AuthorizationPolicy"
        );
        assert_eq!(canonical("Service").unwrap(), "Service");
        assert_eq!(canonical("tp").unwrap(), "TrafficPolicy");
        assert_eq!(canonical("TrafficPolicies").unwrap(), "TrafficPolicy");
        assert!(
            canonical("Gateway")
                .unwrap_err()
                .to_string()
                .contains("Namespace")
        );
    }
}
