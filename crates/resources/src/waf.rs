//! Which WebApplicationFirewall applies to a workload, and the syntax of exclusion
//! targets and paths (shared by validation and by the sidecar's rule rendering).
//!
//! A workload has at most one firewall. Candidates rank like Istio's PeerAuthentication:
//! a firewall of the workload's namespace whose selector matches it, then one of its
//! namespace without a selector (or with an empty one), then one of the root namespace
//! without a selector (mesh-wide). Within the best rank the first by name wins, so every
//! proxy and every tool picks the same one; the others are reported by [`conflicts`].

mod target;

pub use target::{TargetKey, WafTarget, check_path, parse_target};

use crate::ResourceSet;
use crate::kinds::waf::WebApplicationFirewall;
use crate::meta::Labels;

/// The firewall that applies to one workload, and the others of the same rank it won over.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// The firewall in force; `None` when none selects the workload.
    pub chosen: Option<&'a WebApplicationFirewall>,
    /// Other firewalls of the same rank that also select the workload (ignored).
    pub ignored: Vec<&'a WebApplicationFirewall>,
}

/// How well `waf` fits a workload of `namespace` with `labels`: lower is closer, `None`
/// when it does not select the workload at all.
fn rank(waf: &WebApplicationFirewall, namespace: &str, labels: &Labels, root: &str) -> Option<u8> {
    let own = waf.metadata.namespace_or_default() == namespace;
    let selector = waf
        .spec
        .selector
        .as_ref()
        .filter(|s| !s.match_labels.is_empty());
    match selector {
        Some(s) if own && s.matches(labels) => Some(0),
        Some(_) => None,
        None if own => Some(1),
        None if waf.metadata.namespace_or_default() == root => Some(2),
        None => None,
    }
}

/// The firewall among `wafs` for a workload of `namespace` with `labels` (`root` is the
/// mesh's root namespace).
pub fn select<'a>(
    wafs: impl IntoIterator<Item = &'a WebApplicationFirewall>,
    namespace: &str,
    labels: &Labels,
    root: &str,
) -> Selection<'a> {
    let mut best: Vec<(u8, &'a WebApplicationFirewall)> = Vec::new();
    for waf in wafs {
        let Some(r) = rank(waf, namespace, labels, root) else {
            continue;
        };
        match best.first().map(|(b, _)| *b) {
            Some(b) if r > b => continue,
            Some(b) if r < b => best.clear(),
            _ => {}
        }
        best.push((r, waf));
    }
    best.sort_by(|a, b| a.1.metadata.name.cmp(&b.1.metadata.name));
    let mut candidates = best.into_iter().map(|(_, w)| w);
    Selection {
        chosen: candidates.next(),
        ignored: candidates.collect(),
    }
}

/// `namespace/name` of a firewall, as logs and `/config` name it.
pub fn waf_name(waf: &WebApplicationFirewall) -> String {
    format!(
        "{}/{}",
        waf.metadata.namespace_or_default(),
        waf.metadata.name
    )
}

/// One warning per declared Workload or Pod selected by more than one firewall of the
/// same rank, naming the one that applies (what `bulkhead policy check` prints).
pub fn conflicts(set: &ResourceSet, root: &str) -> Vec<String> {
    if set.web_application_firewalls.len() < 2 {
        return Vec::new();
    }
    let workloads = set
        .workloads
        .iter()
        .map(|w| ("Workload", &w.metadata))
        .chain(set.pods.iter().map(|p| ("Pod", &p.metadata)));
    let mut out = Vec::new();
    for (kind, meta) in workloads {
        let namespace = meta.namespace_or_default();
        let selection = select(
            &set.web_application_firewalls,
            namespace,
            &meta.labels,
            root,
        );
        let (Some(chosen), false) = (selection.chosen, selection.ignored.is_empty()) else {
            continue;
        };
        let ignored: Vec<String> = selection.ignored.iter().map(|w| waf_name(w)).collect();
        out.push(format!(
            "{kind} {namespace}/{} is selected by more than one WebApplicationFirewall of the \
             same precedence; {} applies (first by name), ignored: {}",
            meta.name,
            waf_name(chosen),
            ignored.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::load;

    fn waf(ns: &str, name: &str, selector: Option<&str>) -> String {
        let selector = selector.map_or(String::new(), |s| {
            format!("  selector: {{matchLabels: {{app: {s}}}}}\n")
        });
        format!(
            "apiVersion: bulkhead.dev/v1alpha1\nkind: WebApplicationFirewall\nmetadata: \
             {{name: {name}, namespace: {ns}}}\nspec:\n  mode: Blocking\n{selector}---\n"
        )
    }

    fn labels(app: &str) -> Labels {
        Labels::from([("app".to_owned(), app.to_owned())])
    }

    fn chosen(text: &str, ns: &str, app: &str) -> Option<String> {
        let set = load(text, "w.yaml").unwrap();
        let s = select(
            &set.web_application_firewalls,
            ns,
            &labels(app),
            "bulkhead-system",
        );
        s.chosen.map(waf_name)
    }

    #[test]
    fn a_matching_selector_beats_the_namespace_which_beats_the_mesh() {
        let all = [
            waf("bulkhead-system", "mesh", None),
            waf("shop", "ns-wide", None),
            waf("shop", "web", Some("web")),
            waf("shop", "api", Some("api")),
            waf("other", "web", Some("web")),
        ]
        .concat();
        assert_eq!(chosen(&all, "shop", "web").as_deref(), Some("shop/web"));
        assert_eq!(chosen(&all, "shop", "db").as_deref(), Some("shop/ns-wide"));
        assert_eq!(
            chosen(&all, "billing", "web").as_deref(),
            Some("bulkhead-system/mesh")
        );
        let none = [waf("shop", "api", Some("api"))].concat();
        assert_eq!(chosen(&none, "shop", "web"), None);
    }

    #[test]
    fn ties_go_to_the_first_name_and_are_reported() {
        let text = [
            waf("shop", "b", Some("web")),
            waf("shop", "a", Some("web")),
            "apiVersion: bulkhead.dev/v1alpha1\nkind: Workload\nmetadata: {name: web, \
             namespace: shop, labels: {app: web}}\nspec: {}\n"
                .to_owned(),
        ]
        .concat();
        assert_eq!(chosen(&text, "shop", "web").as_deref(), Some("shop/a"));
        let set = load(&text, "w.yaml").unwrap();
        let warnings = conflicts(&set, "bulkhead-system");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("Workload shop/web")
                && warnings[0].contains("shop/a applies")
                && warnings[0].contains("ignored: shop/b"),
            "{}",
            warnings[0]
        );
    }
}
