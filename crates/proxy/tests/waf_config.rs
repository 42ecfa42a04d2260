//! The firewall in file mode: `spec.waf` of a ProxyConfig, a WebApplicationFirewall among
//! the policy files, their checks (each problem at its field and line), reloading (a bad
//! firewall keeps the rules in force; an unchanged one is not recompiled) and the
//! controlled mode's refusal of `spec.waf`.

mod config_support;

use std::sync::Arc;

use bulkhead_proxy::load::{build_snapshot, config_dir, load_config};
use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::reload::ConfigSource;
use bulkhead_resources::WafMode;
use config_support::{WEB, web_mesh};

/// [`WEB`] with `spec.waf` holding `waf` (indented four spaces per line).
fn with_waf(waf: &str) -> String {
    WEB.replace(
        "  policies: []\n",
        &format!("  policies: []\n  waf:\n{waf}"),
    )
}

#[test]
fn spec_waf_reaches_the_snapshot_compiled() {
    let (mesh, _) = web_mesh();
    let path = mesh.write(
        "waf.yaml",
        &with_waf("    mode: Blocking\n    paranoiaLevel: 2\n    exclusions: [{ruleIds: [942100], paths: [/search]}]\n"),
    );
    let cfg = load_config(&path).unwrap();
    let snapshot = build_snapshot(&cfg, &config_dir(&path), 1, None).unwrap();
    let waf = snapshot.waf.as_ref().expect("a firewall");
    assert_eq!(waf.source(), "ProxyConfig/shop/web");
    assert_eq!(waf.spec().mode, WafMode::Blocking);
    assert!(waf.rules().unwrap().rule_count() > 500);
    assert!(waf.rendered().before.contains("blocking_paranoia_level=2"));
    // Without spec.waf and without a WebApplicationFirewall there is none.
    let path = mesh.write("plain.yaml", WEB);
    let snapshot = build_snapshot(&load_config(&path).unwrap(), &config_dir(&path), 1, None);
    assert!(snapshot.unwrap().waf.is_none());
}

#[test]
fn spec_waf_problems_name_field_and_line() {
    let (mesh, _) = web_mesh();
    let cases = [
        (
            "    mode: Blocking\n    paranoiaLevel: 7\n",
            "(line 23): ProxyConfig/shop/web: spec.waf.paranoiaLevel: 7 is not a paranoia level",
        ),
        (
            "    mode: Blocking\n    exclusions: [{targets: [\"ARGS:a b\"]}]\n",
            "(line 23): ProxyConfig/shop/web: spec.waf.exclusions[0].targets[0]: the key `a b` holds a space",
        ),
        (
            "    paranoiaLevel: 1\n",
            "ProxyConfig/shop/web: spec.waf.mode: required field is missing",
        ),
        (
            "    mode: Blocking\n    blocking: true\n",
            "spec.waf.blocking: unknown field `blocking`",
        ),
    ];
    for (waf, want) in cases {
        let err = load_config(&mesh.write("bad.yaml", &with_waf(waf)))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}\nwanted: {want}");
    }
}

const POLICY_WAFS: &str = r#"apiVersion: bulkhead.dev/v1alpha1
kind: WebApplicationFirewall
metadata: {name: web-waf, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  mode: DetectionOnly
---
apiVersion: bulkhead.dev/v1alpha1
kind: WebApplicationFirewall
metadata: {name: api-waf, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  mode: Blocking
"#;

#[test]
fn a_firewall_resource_among_the_policies_selects_the_workload() {
    let (mesh, _) = web_mesh();
    mesh.write("policies/waf.yaml", POLICY_WAFS);
    let text = WEB.replace("  policies: []\n", "  policies: [policies]\n");
    let path = mesh.write("proxy.yaml", &text);
    let snapshot = build_snapshot(&load_config(&path).unwrap(), &config_dir(&path), 1, None);
    let snapshot = snapshot.unwrap();
    let waf = snapshot.waf.as_ref().unwrap();
    assert_eq!(waf.source(), "WebApplicationFirewall/shop/web-waf");
    assert_eq!(waf.spec().mode, WafMode::DetectionOnly);
    // spec.waf, when present, is what applies.
    let path = mesh.write(
        "both.yaml",
        &text.replace(
            "  policies: [policies]\n",
            "  policies: [policies]\n  waf: {mode: Off}\n",
        ),
    );
    let snapshot = build_snapshot(&load_config(&path).unwrap(), &config_dir(&path), 1, None);
    let snapshot = snapshot.unwrap();
    let waf = snapshot.waf.as_ref().unwrap();
    assert_eq!(
        (waf.source(), waf.spec().mode),
        ("ProxyConfig/shop/web", WafMode::Off)
    );
    assert!(waf.rules().is_none());
}

#[test]
fn a_bad_firewall_keeps_the_rules_in_force_and_an_unchanged_one_is_not_recompiled() {
    let (mesh, _) = web_mesh();
    let path = mesh.write("proxy.yaml", &with_waf("    mode: Blocking\n"));
    let source = ConfigSource::load(&path, Metrics::new()).unwrap();
    let first = source.current();
    let rules = Arc::clone(first.waf.as_ref().unwrap().rules().unwrap());

    mesh.write(
        "proxy.yaml",
        &with_waf("    mode: Blocking\n    paranoiaLevel: 9\n"),
    );
    let err = source.reload().unwrap_err().to_string();
    assert!(err.contains("spec.waf.paranoiaLevel"), "{err}");
    let current = source.current();
    assert_eq!(current.version, 1);
    assert!(Arc::ptr_eq(
        current.waf.as_ref().unwrap().rules().unwrap(),
        &rules
    ));
    // Rules that do not compile (a target's regular expression only the engine checks)
    // are refused naming the rendered line; the rules in force stay.
    mesh.write(
        "proxy.yaml",
        &with_waf("    mode: Blocking\n    exclusions: [{targets: [\"ARGS:/(/\"]}]\n"),
    );
    let err = source.reload().unwrap_err().to_string();
    assert!(err.contains("ProxyConfig/shop/web: the firewall rules do not compile: <ProxyConfig/shop/web after CRS>:1:"), "{err}");
    assert_eq!(source.current().version, 1);

    // Another change leaves the firewall as it was: its compiled rules are reused.
    let moved = with_waf("    mode: Blocking\n").replace("port: 8080", "port: 8081");
    mesh.write("proxy.yaml", &moved);
    assert_eq!(source.reload().unwrap(), 2);
    let current = source.current();
    assert!(Arc::ptr_eq(
        current.waf.as_ref().unwrap().rules().unwrap(),
        &rules
    ));
    // A changed firewall is compiled anew.
    mesh.write(
        "proxy.yaml",
        &moved.replace("mode: Blocking", "mode: DetectionOnly"),
    );
    assert_eq!(source.reload().unwrap(), 3);
    let current = source.current();
    assert!(!Arc::ptr_eq(
        current.waf.as_ref().unwrap().rules().unwrap(),
        &rules
    ));
}
