//! `load_config`: the ProxyConfig contract and every class of error, each naming the file,
//! the line and the field path.

mod config_support;

use std::net::SocketAddr;

use bulkhead_proxy::config::AppProtocol;
use bulkhead_proxy::load::{ConfigError, load_config};
use config_support::{WEB, web_mesh};

/// Loads `WEB` with `from` replaced by `to` and returns the single error line.
fn error_with(from: &str, to: &str) -> String {
    let (mesh, _) = web_mesh();
    assert!(WEB.contains(from), "{from:?} not in the example");
    let path = mesh.write("bad.yaml", &WEB.replace(from, to));
    let err = load_config(&path).unwrap_err();
    let text = err.to_string();
    let prefix = format!("{}: ", path.display());
    assert!(text.starts_with(&prefix), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    text[prefix.len()..].to_owned()
}

#[test]
fn the_design_example_loads_with_its_defaults() {
    let (mesh, path) = web_mesh();
    let cfg = load_config(&path).unwrap();
    assert_eq!(cfg.metadata.name, "web");
    assert_eq!(cfg.spec.service_account, "web");
    assert!(!cfg.spec.access_log.enabled);
    assert_eq!(cfg.spec.inbound[0].port, 8080);
    assert_eq!(cfg.spec.inbound[0].protocol, AppProtocol::Auto);
    assert_eq!(cfg.spec.outbound[0].endpoints.len(), 1);

    let minimal = "apiVersion: bulkhead.dev/v1alpha1\nkind: ProxyConfig\nmetadata: {name: web, namespace: shop}\nspec:\n  serviceAccount: web\n  identity: {certFile: web/cert.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem}\n";
    let cfg = load_config(&mesh.write("minimal.yaml", minimal)).unwrap();
    assert_eq!(
        cfg.spec.admin.listen,
        SocketAddr::from(([127, 0, 0, 1], 15000))
    );
    assert!(cfg.spec.access_log.enabled && cfg.spec.access_log.path.is_none());
    assert!(cfg.spec.inbound.is_empty() && cfg.spec.outbound.is_empty());
}

#[test]
fn json_configs_load_too() {
    let (mesh, _) = web_mesh();
    let json = r#"{"apiVersion":"bulkhead.dev/v1alpha1","kind":"ProxyConfig",
 "metadata":{"name":"web","namespace":"shop"},
 "spec":{"serviceAccount":"web","identity":{"certFile":"web/cert.pem","keyFile":"web/key.pem","bundleFile":"web/bundle.pem"}}}"#;
    load_config(&mesh.write("proxy.json", json)).unwrap();
}

#[test]
fn schema_errors() {
    assert_eq!(
        error_with("  policies: []\n", "  policies: []\n  bogus: 1\n"),
        "document 1 (line 21): ProxyConfig/shop/web: spec.bogus: unknown field `bogus`, expected one of `serviceAccount`, `identity`, `admin`, `accessLog`, `inbound`, `outbound`, `policies`, `controlPlane`, `waf`"
    );
    assert_eq!(
        error_with("      port: 8080", "      port: http"),
        "document 1 (line 11): ProxyConfig/shop/web: spec.inbound[0].port: invalid type: string \"http\", expected u16"
    );
    assert_eq!(
        error_with(
            "      protocol: auto\n  outbound",
            "      protocol: quic\n  outbound"
        ),
        "document 1 (line 13): ProxyConfig/shop/web: spec.inbound[0].protocol: unknown variant `quic`, expected one of `auto`, `http`, `http2`, `grpc`, `tcp`, `opaque`"
    );
    assert_eq!(
        error_with("  serviceAccount: web\n", ""),
        "document 1 (line 4): ProxyConfig/shop/web: spec.serviceAccount: required field is missing"
    );
    let bad_addr = error_with("forwardTo: \"127.0.0.1:8080\"", "forwardTo: \"localhost\"");
    assert!(
        bad_addr
            .starts_with("document 1 (line 12): ProxyConfig/shop/web: spec.inbound[0].forwardTo: "),
        "{bad_addr}"
    );
}

#[test]
fn header_and_syntax_errors() {
    assert_eq!(
        error_with("kind: ProxyConfig", "kind: Workload"),
        "document 1 (line 2): kind: expected `ProxyConfig`, found `Workload`"
    );
    assert_eq!(
        error_with("apiVersion: bulkhead.dev/v1alpha1", "apiVersion: v1"),
        "document 1 (line 1): apiVersion: kind `ProxyConfig` does not exist in apiVersion `v1`; expected `bulkhead.dev/v1alpha1`"
    );
    let syntax = error_with("  policies: []", "  policies: [");
    assert!(syntax.starts_with("document 1 (line "), "{syntax}");
}

#[test]
fn listener_rules() {
    assert_eq!(
        error_with("listen: \"127.0.0.1:9001\"", "listen: \"127.0.0.1:15006\""),
        "document 1 (line 15): ProxyConfig/shop/web: spec.outbound[0].listen: `127.0.0.1:15006` is already used by spec.inbound[0].listen (`127.0.0.1:15006`); every listener needs its own address"
    );
    assert_eq!(
        error_with(
            "admin: {listen: \"127.0.0.1:15000\"}",
            "admin: {listen: \"0.0.0.0:15000\"}"
        ),
        "document 1 (line 7): ProxyConfig/shop/web: spec.admin.listen: `0.0.0.0:15000` is not a loopback address; the admin listener exposes configuration and control, so it must listen on 127.0.0.1 or ::1"
    );
    assert_eq!(
        error_with("listen: \"127.0.0.1:9001\"", "listen: \"10.0.0.1:9001\""),
        "document 1 (line 15): ProxyConfig/shop/web: spec.outbound[0].listen: `10.0.0.1:9001` is not a loopback address; the app's plaintext side of an upstream must only be reachable from this host (127.0.0.1 or ::1)"
    );
    assert_eq!(
        error_with("      port: 8080", "      port: 0"),
        "document 1 (line 11): ProxyConfig/shop/web: spec.inbound[0].port: expected a port 1-65535, found 0"
    );
    assert_eq!(
        error_with("      port: 8080", "      port: 70000"),
        "document 1 (line 11): ProxyConfig/shop/web: spec.inbound[0].port: invalid value: integer `70000`, expected u16"
    );
    assert_eq!(
        error_with(
            "forwardTo: \"127.0.0.1:8080\"",
            "forwardTo: \"127.0.0.1:15006\""
        ),
        "document 1 (line 12): ProxyConfig/shop/web: spec.inbound[0].forwardTo: `127.0.0.1:15006` is this proxy's own listener spec.inbound[0].listen; expected the app's address"
    );
}

#[test]
fn a_wildcard_listener_clashes_with_the_same_port() {
    assert_eq!(
        error_with("listen: \"127.0.0.1:15006\"", "listen: \"0.0.0.0:15000\""),
        "document 1 (line 10): ProxyConfig/shop/web: spec.inbound[0].listen: `0.0.0.0:15000` is already used by spec.admin.listen (`127.0.0.1:15000`); every listener needs its own address"
    );
}

#[test]
fn outbound_rules() {
    assert_eq!(
        error_with("service: api.shop", "service: api"),
        "document 1 (line 16): ProxyConfig/shop/web: spec.outbound[0].service: `api` is not `name.namespace`; expected the service's name and namespace, e.g. `api.shop`"
    );
    assert_eq!(
        error_with(
            "      endpoints:\n        - {address: \"127.0.0.1:16006\", identity: \"spiffe://cluster.local/ns/shop/sa/api\"}\n",
            "      endpoints: []\n"
        ),
        "document 1 (line 18): ProxyConfig/shop/web: spec.outbound[0].endpoints: no endpoints; expected at least one {address, identity}"
    );
    let bad_id = error_with("spiffe://cluster.local/ns/shop/sa/api", "https://api.shop");
    assert!(
        bad_id.starts_with("document 1 (line 19): ProxyConfig/shop/web: spec.outbound[0].endpoints[0].identity: `https://api.shop` is not a valid SPIFFE ID ("),
        "{bad_id}"
    );
}

#[test]
fn names_must_make_a_spiffe_id() {
    assert_eq!(
        error_with("  serviceAccount: web", "  serviceAccount: Web_Account"),
        "document 1 (line 5): ProxyConfig/shop/web: spec.serviceAccount: `Web_Account` is not a valid service account name; expected lower-case letters, digits, `-` and `.` (a DNS subdomain)"
    );
    let ns = error_with("namespace: shop,", "namespace: Shop,");
    assert!(ns.starts_with("document 1 (line 3): ProxyConfig/Shop/web: metadata.namespace: `Shop` is not a valid name"), "{ns}");
}

#[test]
fn referenced_paths_must_exist() {
    let (mesh, _) = web_mesh();
    let path = mesh.write(
        "bad.yaml",
        &WEB.replace("certFile: web/cert.pem", "certFile: nope/cert.pem"),
    );
    let err = load_config(&path).unwrap_err().to_string();
    let missing = mesh.path().join("nope/cert.pem");
    assert_eq!(
        err,
        format!(
            "{}: document 1 (line 6): ProxyConfig/shop/web: spec.identity.certFile: `{}` is not a readable file",
            path.display(),
            missing.display()
        )
    );
    let path = mesh.write(
        "bad.yaml",
        &WEB.replace("policies: []", "policies: [policies/, more.yaml]"),
    );
    std::fs::create_dir(mesh.path().join("policies")).unwrap();
    let err = load_config(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            ": spec.policies[1]: `{}` does not exist; expected a resource file or directory",
            mesh.path().join("more.yaml").display()
        )),
        "{err}"
    );
    let path = mesh.write(
        "bad.yaml",
        &WEB.replace(
            "accessLog: {enabled: false}",
            "accessLog: {path: logs/access.log}",
        ),
    );
    let err = load_config(&path).unwrap_err().to_string();
    assert!(
        err.contains(": spec.accessLog.path: the directory of "),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let (mesh, _) = web_mesh();
    let text = WEB
        .replace("      port: 8080", "      port: 0")
        .replace("service: api.shop", "service: api");
    let err = load_config(&mesh.write("bad.yaml", &text)).unwrap_err();
    let ConfigError::Invalid(load) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(load.diagnostics().len(), 2, "{err}");
}

#[test]
fn an_unreadable_config_file_is_named() {
    let (mesh, _) = web_mesh();
    let path = mesh.path().join("missing.yaml");
    let err = load_config(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", path.display()))
    );
}

#[test]
fn outbound_traffic_policies_load_check_and_reach_the_snapshot() {
    use std::time::Duration;

    use bulkhead_proxy::load::{build_snapshot, config_dir};
    use bulkhead_proxy::resilience::TrafficPolicy;
    use bulkhead_proxy::resilience::policy::LoadBalancer;

    let (mesh, path) = web_mesh();
    let with = |name: &str, policy: &str| {
        let text = WEB.replace(
            "      protocol: auto\n      endpoints:",
            &format!("      protocol: auto\n      trafficPolicy:\n{policy}      endpoints:"),
        );
        mesh.write(name, &text)
    };
    // Without a trafficPolicy every default applies.
    let cfg = load_config(&path).unwrap();
    let snapshot = build_snapshot(&cfg, &config_dir(&path), 1, None).unwrap();
    assert_eq!(*snapshot.outbound[0].traffic, TrafficPolicy::default());

    let policy = "        loadBalancer: leastRequest\n        timeouts: {request: 2s}\n        \
                  retries: {attempts: 1, retryOn: [connect-failure, gateway-error]}\n";
    let path = with("tp.yaml", policy);
    let cfg = load_config(&path).unwrap();
    let snapshot = build_snapshot(&cfg, &config_dir(&path), 1, None).unwrap();
    let traffic = &snapshot.outbound[0].traffic;
    assert_eq!(traffic.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(traffic.timeouts.request, Some(Duration::from_secs(2)));
    assert_eq!(traffic.retries.attempts, 1);
    assert_eq!(traffic.retries.on.statuses, [502, 503, 504]);
    assert!(traffic.retries.on.connect_failure && !traffic.retries.on.reset);
    assert_eq!(traffic.limits, TrafficPolicy::default().limits);

    // Problems are reported at their path under the outbound entry, with the line.
    let bad = "        retries: {perTryTimeout: 5s}\n        timeouts: {request: 1s}\n";
    let err = load_config(&with("bad.yaml", bad)).unwrap_err().to_string();
    assert!(
        err.contains("(line 19): ProxyConfig/shop/web: spec.outbound[0].trafficPolicy.retries.perTryTimeout: 5s is longer than spec.outbound[0].trafficPolicy.timeouts.request"),
        "{err}"
    );
    let bad = "        retries: {retryOn: [5xx]}\n";
    let err = load_config(&with("bad.yaml", bad)).unwrap_err().to_string();
    assert!(
        err.contains("spec.outbound[0].trafficPolicy.retries.retryOn[0]: `5xx` is not accepted"),
        "{err}"
    );
}
