//! `spec.controlPlane` and the command-line overrides: what a controlled ProxyConfig may
//! and must hold, each problem naming its field.

mod config_support;

use std::path::PathBuf;

use bulkhead_proxy::config::ControlPlaneOverrides;
use bulkhead_proxy::load::{load_config, load_config_with};
use config_support::{Mesh, WEB, web_mesh};

/// The local wiring of `web` under a control plane.
const CONTROLLED: &str = r#"apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  admin: {listen: "127.0.0.1:15000"}
  inbound:
    - {listen: "127.0.0.1:15006", port: 8080, forwardTo: "127.0.0.1:8080"}
  outbound:
    - {listen: "127.0.0.1:9001", service: api.shop, port: 8080}
    - {listen: "127.0.0.1:9002", service: db.shop}
  controlPlane:
    address: "127.0.0.1:15010"
    caFile: cp/ca.pem
    tokenFile: cp/token
"#;

/// A scratch directory holding the control plane's CA and a token file.
fn controlled_mesh() -> Mesh {
    let mesh = Mesh::new();
    mesh.write("cp/ca.pem", &mesh.ca.chain_pem());
    mesh.write("cp/token", "bhj_secret\n");
    mesh
}

/// The problems of `CONTROLLED` with `from` replaced by `to`, without file prefixes.
fn errors_with(from: &str, to: &str) -> Vec<String> {
    let mesh = controlled_mesh();
    assert!(CONTROLLED.contains(from), "{from:?} not in the example");
    let path = mesh.write("bad.yaml", &CONTROLLED.replace(from, to));
    let text = load_config(&path).unwrap_err().to_string();
    let prefix = format!("{}: ", path.display());
    text.lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_owned())
        .collect()
}

#[test]
fn a_controlled_config_loads_with_its_defaults() {
    let mesh = controlled_mesh();
    let cfg = load_config(&mesh.write("proxy.yaml", CONTROLLED)).unwrap();
    assert!(cfg.spec.identity.is_none());
    let cp = cfg.spec.control_plane.as_ref().unwrap();
    assert_eq!(cp.address, "127.0.0.1:15010");
    assert_eq!(cp.ca_file, PathBuf::from("cp/ca.pem"));
    assert_eq!(cp.trust_domain, "cluster.local");
    assert!(cp.token.is_none() && cp.state_dir.is_none());
    assert_eq!(cfg.spec.outbound[0].port, 8080);
    assert_eq!(cfg.spec.outbound[1].port, 0);
    assert!(cfg.spec.outbound.iter().all(|o| o.endpoints.is_empty()));
    // The token never shows up in debug output.
    let cfg = load_config(&mesh.write(
        "inline.yaml",
        &CONTROLLED.replace("tokenFile: cp/token", "token: bhj_secret"),
    ))
    .unwrap();
    assert!(!format!("{cfg:?}").contains("bhj_secret"));
}

#[test]
fn what_the_control_plane_supplies_is_forbidden_in_the_file() {
    let identity =
        "  identity: {certFile: web/cert.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem}\n";
    let errors = errors_with("  admin:", &format!("{identity}  policies: [cp]\n  admin:"));
    assert!(errors.iter().any(|e| e.ends_with("spec.identity: not allowed with spec.controlPlane: the control plane supplies the certificate")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.ends_with("spec.policies: not allowed with spec.controlPlane: the control plane supplies the policies")), "{errors:#?}");
    let errors = errors_with(
        "service: db.shop}",
        "service: db.shop, endpoints: [{address: \"127.0.0.1:1\", identity: \"spiffe://cluster.local/ns/shop/sa/db\"}]}",
    );
    assert_eq!(
        errors,
        [
            "document 1 (line 11): ProxyConfig/shop/web: spec.outbound[1].endpoints: not allowed with spec.controlPlane: the control plane supplies the endpoints"
        ]
    );
    let errors = errors_with(
        "service: db.shop}",
        "service: db.shop, trafficPolicy: {retries: {attempts: 1}}}",
    );
    assert_eq!(
        errors,
        [
            "document 1 (line 11): ProxyConfig/shop/web: spec.outbound[1].trafficPolicy: not allowed with spec.controlPlane: the control plane supplies the traffic policy (a TrafficPolicy resource for the Service)"
        ]
    );
}

#[test]
fn the_firewall_comes_from_the_control_plane_too() {
    let errors = errors_with("  admin:", "  waf: {mode: Blocking}\n  admin:");
    assert!(errors.iter().any(|e| e.ends_with("spec.waf: not allowed with spec.controlPlane: the control plane supplies the firewall (a WebApplicationFirewall resource selecting the workload)")), "{errors:#?}");
}

#[test]
fn control_plane_fields_are_checked() {
    let cases = [
        (
            "address: \"127.0.0.1:15010\"",
            "address: \"https://cp:15010\"",
            "spec.controlPlane.address: `https://cp:15010` is not a control plane address: it has a scheme",
        ),
        (
            "address: \"127.0.0.1:15010\"",
            "address: \"cp\"",
            "spec.controlPlane.address: `cp` is not a control plane address: missing `:port`",
        ),
        (
            "    address: \"127.0.0.1:15010\"\n",
            "",
            "spec.controlPlane.address: missing; expected the control plane's `host:port` (or --control-plane)",
        ),
        (
            "    caFile: cp/ca.pem\n",
            "",
            "spec.controlPlane.caFile: missing; expected the control plane API's CA certificate",
        ),
        (
            "caFile: cp/ca.pem",
            "caFile: cp/nope.pem",
            "spec.controlPlane.caFile: `",
        ),
        (
            "tokenFile: cp/token",
            "tokenFile: cp/token\n    token: bhj_x",
            "spec.controlPlane.tokenFile: set either token or tokenFile, not both",
        ),
        (
            "tokenFile: cp/token",
            "token: \" \"",
            "spec.controlPlane.token: empty; expected a join token",
        ),
        (
            "tokenFile: cp/token",
            "trustDomain: \"Not A Domain\"",
            "spec.controlPlane.trustDomain: `Not A Domain` is not a valid trust domain",
        ),
        (
            "tokenFile: cp/token",
            "stateDir: cp/token",
            "spec.controlPlane.stateDir: `",
        ),
        (
            "tokenFile: cp/token",
            "bogus: 1",
            "spec.controlPlane.bogus: unknown field `bogus`",
        ),
    ];
    for (from, to, expected) in cases {
        let errors = errors_with(from, to);
        assert_eq!(errors.len(), 1, "{to}: {errors:#?}");
        assert!(errors[0].contains(expected), "{to}: {}", errors[0]);
    }
}

#[test]
fn standalone_mode_still_requires_identity_and_endpoints() {
    let (mesh, _) = web_mesh();
    let text = WEB.replace(
        "  identity: {certFile: web/cert.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem}\n",
        "",
    );
    let err = load_config(&mesh.write("no-identity.yaml", &text))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "spec.identity: missing; expected {certFile, keyFile, bundleFile} (or spec.controlPlane"
        ),
        "{err}"
    );
    let text = WEB.replace(
        "      endpoints:\n        - {address: \"127.0.0.1:16006\", identity: \"spiffe://cluster.local/ns/shop/sa/api\"}\n",
        "",
    );
    let err = load_config(&mesh.write("no-endpoints.yaml", &text))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.outbound[0].endpoints: no endpoints"),
        "{err}"
    );
}

#[test]
fn command_line_values_fill_or_replace_the_section() {
    let mesh = controlled_mesh();
    let ca = mesh.path().join("cp/ca.pem");
    // A standalone file becomes controlled with --control-plane; the identity and
    // endpoints it names are then refused.
    let (web, path) = web_mesh();
    let overrides = ControlPlaneOverrides {
        address: Some("cp.mesh:15010".into()),
        ca_file: Some(ca.clone()),
        token: Some("bhj_flag".into()),
    };
    let err = load_config_with(&path, &overrides).unwrap_err().to_string();
    assert!(
        err.contains("spec.identity: not allowed with spec.controlPlane"),
        "{err}"
    );
    assert!(
        err.contains("spec.outbound[0].endpoints: not allowed"),
        "{err}"
    );
    drop(web);
    let bare = CONTROLLED.replace(
        "  controlPlane:\n    address: \"127.0.0.1:15010\"\n    caFile: cp/ca.pem\n    tokenFile: cp/token\n",
        "",
    );
    let path = mesh.write("bare.yaml", &bare);
    let cfg = load_config_with(&path, &overrides).unwrap();
    let cp = cfg.spec.control_plane.unwrap();
    assert_eq!(
        (cp.address.as_str(), cp.token.as_deref()),
        ("cp.mesh:15010", Some("bhj_flag"))
    );
    assert_eq!(cp.ca_file, ca);
    // Without --control-plane-ca nothing names the CA.
    let no_ca = ControlPlaneOverrides {
        ca_file: None,
        ..overrides.clone()
    };
    let err = load_config_with(&path, &no_ca).unwrap_err().to_string();
    assert!(err.contains("spec.controlPlane.caFile: missing"), "{err}");
    // The flags replace the file's values; a token flag replaces tokenFile.
    let path = mesh.write("proxy.yaml", CONTROLLED);
    let cfg = load_config_with(&path, &overrides).unwrap();
    let cp = cfg.spec.control_plane.unwrap();
    assert_eq!(cp.address, "cp.mesh:15010");
    assert!(cp.token_file.is_none());
    // A token alone (e.g. BULKHEAD_JOIN_TOKEN) leaves a standalone file standalone.
    let (_web, path) = web_mesh();
    let token_only = ControlPlaneOverrides {
        token: Some("bhj_env".into()),
        ..Default::default()
    };
    assert!(
        load_config_with(&path, &token_only)
            .unwrap()
            .spec
            .control_plane
            .is_none()
    );
}
