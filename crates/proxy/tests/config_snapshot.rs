//! `build_snapshot`: identity checks, this workload as a policy endpoint, compiled
//! policies, and reuse of the previous snapshot's SVID source and bundle handle.

mod config_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_policy::{Destination, RawPeer, Request, Source};
use bulkhead_proxy::load::{ConfigError, build_snapshot, config_dir, load_config};
use bulkhead_proxy::snapshot::Snapshot;
use bulkhead_resources::{MtlsMode, Protocol};
use config_support::{Mesh, WEB, web_mesh};

fn build(
    path: &std::path::Path,
    version: u64,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, ConfigError> {
    let cfg = load_config(path).unwrap();
    build_snapshot(&cfg, &config_dir(path), version, previous)
}

const POLICIES: &str = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-api, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/api"]}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec:
  mtls: {mode: STRICT}
"#;

fn decide(snapshot: &Snapshot, principal: &str) -> bool {
    let request = Request {
        source: Source::Raw(RawPeer {
            principal: Some(principal),
            ..RawPeer::default()
        }),
        destination: Destination::Endpoint(snapshot.endpoint),
        port: 8080,
        protocol: Protocol::Tcp,
        http: None,
        jwt: None,
        sni: None,
    };
    snapshot.engine.evaluate(&request).allowed
}

#[test]
fn a_snapshot_carries_identity_ports_upstreams_and_this_workload() {
    let (_mesh, path) = web_mesh();
    let snapshot = build(&path, 1, None).unwrap();
    assert_eq!(snapshot.version, 1);
    assert_eq!(
        snapshot.identity.as_str(),
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    assert_eq!(snapshot.svid.id(), &snapshot.identity);
    assert!(snapshot.svid.is_ready());
    assert_eq!(
        snapshot.bundle.current().trust_domain().as_str(),
        "cluster.local"
    );
    assert_eq!(snapshot.engine.endpoint_name(snapshot.endpoint), "shop/web");
    assert_eq!(
        snapshot.engine.endpoint_principal(snapshot.endpoint),
        "cluster.local/ns/shop/sa/web"
    );
    assert_eq!(snapshot.inbound[0].port, 8080);
    assert_eq!(snapshot.outbound[0].service, "api.shop");
    assert_eq!(
        snapshot.outbound[0].endpoints[0].identity.as_str(),
        "spiffe://cluster.local/ns/shop/sa/api"
    );
    assert!(!snapshot.access_log);
    // No policies: PERMISSIVE by default, everything allowed.
    assert_eq!(
        snapshot.engine.mtls_mode(snapshot.endpoint, 8080).0,
        MtlsMode::Permissive
    );
    assert!(decide(&snapshot, "cluster.local/ns/other/sa/x"));
}

#[test]
fn policies_are_compiled_and_select_this_workload_by_its_labels() {
    let (mesh, _) = web_mesh();
    mesh.write("policies/shop.yaml", POLICIES);
    let path = mesh.write(
        "proxy.yaml",
        &WEB.replace("policies: []", "policies: [policies]"),
    );
    let snapshot = build(&path, 1, None).unwrap();
    assert_eq!(snapshot.engine.policy_counts(), (0, 1, 1));
    let (mode, by) = snapshot.engine.mtls_mode(snapshot.endpoint, 8080);
    assert_eq!(
        (mode, by),
        (MtlsMode::Strict, Some("PeerAuthentication/shop/strict"))
    );
    assert!(decide(&snapshot, "cluster.local/ns/shop/sa/api"));
    assert!(!decide(&snapshot, "cluster.local/ns/shop/sa/other"));
}

#[test]
fn a_declared_workload_is_used_instead_of_the_generated_one() {
    let (mesh, _) = web_mesh();
    mesh.write("policies/shop.yaml", POLICIES);
    // Declared without the `app: web` label: the ALLOW policy no longer selects it.
    mesh.write(
        "policies/web.yaml",
        "apiVersion: bulkhead.dev/v1alpha1\nkind: Workload\nmetadata: {name: web, namespace: shop, labels: {tier: front}}\nspec: {serviceAccount: web}\n",
    );
    let path = mesh.write(
        "proxy.yaml",
        &WEB.replace("policies: []", "policies: [policies]"),
    );
    let snapshot = build(&path, 1, None).unwrap();
    assert_eq!(snapshot.engine.endpoint_count(), 1);
    assert!(decide(&snapshot, "cluster.local/ns/shop/sa/other"));
}

#[test]
fn invalid_policy_files_are_refused_with_their_location() {
    let (mesh, _) = web_mesh();
    let policy = mesh.write(
        "bad-policy.yaml",
        &POLICIES.replace("action: ALLOW", "action: MAYBE"),
    );
    let path = mesh.write(
        "proxy.yaml",
        &WEB.replace("policies: []", "policies: [bad-policy.yaml]"),
    );
    let err = build(&path, 1, None).unwrap_err().to_string();
    assert!(
        err.starts_with("spec.policies: invalid resources:\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: document 1 (line 6): AuthorizationPolicy/shop/only-api: spec.action: unknown variant `MAYBE`", policy.display())),
        "{err}"
    );
}

#[test]
fn a_certificate_for_another_workload_is_refused() {
    let (mesh, path) = web_mesh();
    mesh.issue("web", "shop", "api");
    let err = build(&path, 1, None).unwrap_err();
    assert!(
        matches!(err, ConfigError::IdentityMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "spec.identity.certFile `{}`: the certificate is for `spiffe://cluster.local/ns/shop/sa/api`, but metadata.namespace and spec.serviceAccount make this workload `spiffe://cluster.local/ns/shop/sa/web`; issue a certificate for that ID or fix the config",
            mesh.path().join("web/cert.pem").display()
        )
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let (mesh, path) = web_mesh();
    let other = mesh.issue("other", "shop", "web");
    std::fs::copy(other.join("key.pem"), mesh.path().join("web/key.pem")).unwrap();
    let err = build(&path, 1, None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "spec.identity.keyFile `{}`: ",
            mesh.path().join("web/key.pem").display()
        )),
        "{err}"
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let (mesh, path) = web_mesh();
    let other = Mesh::new();
    let dir = other.issue("web", "shop", "web");
    std::fs::copy(dir.join("cert.pem"), mesh.path().join("web/cert.pem")).unwrap();
    std::fs::copy(dir.join("key.pem"), mesh.path().join("web/key.pem")).unwrap();
    let err = build(&path, 1, None).unwrap_err().to_string();
    assert!(err.contains("does not verify against bundleFile"), "{err}");
    assert!(err.contains("unknown issuer"), "{err}");
}

#[test]
fn garbage_identity_files_name_the_field() {
    let (mesh, path) = web_mesh();
    mesh.write("web/bundle.pem", "not pem\n");
    let err = build(&path, 1, None).unwrap_err().to_string();
    assert!(err.starts_with("spec.identity.bundleFile `"), "{err}");
    mesh.write("web/key.pem", "");
    let err = build(&path, 1, None).unwrap_err().to_string();
    assert!(err.starts_with("spec.identity.keyFile `"), "{err}");
}

#[test]
fn an_expired_certificate_loads_but_is_not_ready() {
    let (mesh, path) = web_mesh();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    mesh.issue_at(
        "web",
        "shop",
        "web",
        two_hours_ago,
        Duration::from_secs(3600),
    );
    let snapshot = build(&path, 1, None).unwrap();
    assert!(!snapshot.svid.is_ready());
}

#[test]
fn an_unchanged_identity_keeps_the_svid_source_and_bundle() {
    let (mesh, path) = web_mesh();
    let first = build(&path, 1, None).unwrap();
    let serial = first.svid.info().serial.clone();
    let second = build(&path, 2, Some(&first)).unwrap();
    assert!(Arc::ptr_eq(&first.svid, &second.svid));
    assert_eq!(second.version, 2);

    // A renewed certificate for the same ID is installed into the same source, so TLS
    // configurations built from the first snapshot serve it too.
    mesh.issue("web", "shop", "web");
    let third = build(&path, 3, Some(&second)).unwrap();
    assert!(Arc::ptr_eq(&first.svid, &third.svid));
    assert_ne!(first.svid.info().serial, serial);
}

#[test]
fn a_new_identity_gets_a_new_source() {
    let (mesh, path) = web_mesh();
    let first = build(&path, 1, None).unwrap();
    mesh.issue("api", "shop", "api");
    let text = WEB
        .replace("serviceAccount: web", "serviceAccount: api")
        .replace("web/", "api/");
    let path2 = mesh.write("proxy.yaml", &text);
    assert_eq!(path, path2);
    let second = build(&path, 2, Some(&first)).unwrap();
    assert!(!Arc::ptr_eq(&first.svid, &second.svid));
    assert_eq!(
        second.identity.as_str(),
        "spiffe://cluster.local/ns/shop/sa/api"
    );
    assert_eq!(
        first.identity.as_str(),
        "spiffe://cluster.local/ns/shop/sa/web"
    );
}

#[test]
fn a_failed_rebuild_leaves_the_previous_sources_untouched() {
    let (mesh, path) = web_mesh();
    let first = build(&path, 1, None).unwrap();
    let serial = first.svid.info().serial.clone();
    // A renewed certificate, but a broken policy file in the same change.
    mesh.issue("web", "shop", "web");
    mesh.write("bad.yaml", "kind: Nope\n");
    mesh.write(
        "proxy.yaml",
        &WEB.replace("policies: []", "policies: [bad.yaml]"),
    );
    assert!(build(&path, 2, Some(&first)).is_err());
    assert_eq!(first.svid.info().serial, serial);
}
