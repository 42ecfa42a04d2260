//! Kind names as clients may write them: `AuthorizationPolicy`, `authorizationpolicy`,
//! `authorizationpolicies`, or the short names kubectl users know.

use crate::error::ApiError;

/// Every stored kind with its accepted spellings (lower case).
const KINDS: [(&str, &[&str]); 7] = [
    ("Namespace", &["namespace", "namespaces", "ns"]),
    ("Pod", &["pod", "pods", "po"]),
    ("Workload", &["workload", "workloads", "wl"]),
    ("Service", &["service", "services", "svc"]),
    (
        "NetworkPolicy",
        &["networkpolicy", "networkpolicies", "netpol"],
    ),
    (
        "AuthorizationPolicy",
        &["authorizationpolicy", "authorizationpolicies", "ap"],
    ),
    (
        "PeerAuthentication",
        &["peerauthentication", "peerauthentications", "pa"],
    ),
];

/// The canonical kind for `name`, or an `Invalid` error listing the kinds.
pub fn canonical(name: &str) -> Result<&'static str, ApiError> {
    let lower = name.to_ascii_lowercase();
    KINDS
        .iter()
        .find(|(_, names)| names.contains(&lower.as_str()))
        .map(|(kind, _)| *kind)
        .ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            ApiError::invalid(format!(
                "unknown kind `{name}`, expected one of {}",
                known.join(", ")
            ))
        })
}

/// Whether objects of `kind` live in a namespace.
pub fn namespaced(kind: &str) -> bool {
    kind != "Namespace"
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
        assert!(
            canonical("Gateway")
                .unwrap_err()
                .to_string()
                .contains("Namespace")
        );
    }
}
