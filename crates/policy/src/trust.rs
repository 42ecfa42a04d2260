//! Trust domains and principals (`<trust-domain>/ns/<namespace>/sa/<service-account>`).

/// The mesh trust domain and its aliases.
#[derive(Debug, Clone)]
pub(crate) struct TrustDomains {
    /// The local trust domain first, then the aliases.
    all: Vec<String>,
}

/// The trust domain Istio policies use to mean "the local one".
const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

impl TrustDomains {
    pub(crate) fn new(local: &str, aliases: &[String]) -> Self {
        let mut all = vec![local.to_owned()];
        all.extend(aliases.iter().filter(|a| *a != local).cloned());
        TrustDomains { all }
    }

    /// The local trust domain.
    pub(crate) fn local(&self) -> &str {
        &self.all[0]
    }

    /// Expands principal patterns the way Istio does for trust-domain migration: a pattern
    /// whose trust domain is the local one, an alias, or `cluster.local` stands for the same
    /// `ns/…/sa/…` in every trust domain of the bundle; any other pattern (including those
    /// with a wildcard trust domain) is kept as written.
    pub(crate) fn expand(&self, patterns: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            match p.split_once('/') {
                Some((td, rest))
                    if !td.contains('*')
                        && (td == DEFAULT_TRUST_DOMAIN || self.all.iter().any(|t| t == td)) =>
                {
                    out.extend(self.all.iter().map(|t| format!("{t}/{rest}")));
                }
                _ => out.push(p.clone()),
            }
        }
        out
    }
}

/// The namespace segment of a principal (`td/ns/<ns>/sa/x` → `<ns>`), as Istio derives
/// `source.namespace` from the peer certificate.
pub(crate) fn principal_namespace(principal: &str) -> Option<&str> {
    let start = principal.find("/ns/")? + 4;
    let rest = &principal[start..];
    let ns = rest.split('/').next()?;
    (!ns.is_empty()).then_some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_istio_migration_rules() {
        let t = TrustDomains::new("new-td", &["old-td".into()]);
        let got = t.expand(&[
            "old-td/ns/a/sa/b".into(),
            "cluster.local/ns/a/sa/c".into(),
            "other/ns/a/sa/d".into(),
            "*/ns/a/sa/e".into(),
            "*".into(),
        ]);
        assert_eq!(
            got,
            vec![
                "new-td/ns/a/sa/b",
                "old-td/ns/a/sa/b",
                "new-td/ns/a/sa/c",
                "old-td/ns/a/sa/c",
                "other/ns/a/sa/d",
                "*/ns/a/sa/e",
                "*"
            ]
        );
    }

    #[test]
    fn namespace_from_principal() {
        assert_eq!(
            principal_namespace("cluster.local/ns/shop/sa/web"),
            Some("shop")
        );
        assert_eq!(principal_namespace("td/ns//sa/web"), None);
        assert_eq!(principal_namespace("td/sa/web"), None);
    }
}
