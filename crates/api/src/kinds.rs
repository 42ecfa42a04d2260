//! Kind names as people type them: `AuthorizationPolicy`, `authorizationpolicy`,
//! `authorizationpolicies`, or the short names kubectl users know. The server and the CLI
//! read them through this one table.

/// Every stored kind with its accepted spellings (lower case).
pub const KINDS: [(&str, &[&str]); 9] = [
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
    ("TrafficPolicy", &["trafficpolicy", "trafficpolicies", "tp"]),
    (
        "WebApplicationFirewall",
        &["webapplicationfirewall", "webapplicationfirewalls", "waf"],
    ),
];

/// The kind `name` stands for, in any case, plural or short form.
pub fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KINDS
        .iter()
        .find(|(_, names)| names.contains(&lower.as_str()))
        .map(|(kind, _)| *kind)
}

/// Whether objects of `kind` live in a namespace.
pub fn namespaced(kind: &str) -> bool {
    kind != "Namespace"
}
