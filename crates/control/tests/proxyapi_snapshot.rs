//! The per-proxy snapshot builder on small resource sets: what goes in, how upstream
//! ports and endpoints resolve, and how the hash behaves.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use bulkhead_api::proxy::{Endpoint, InboundPort, Snapshot, UpstreamRef};
use bulkhead_control::mesh::MeshView;
use bulkhead_control::proxyapi::snapshot::{Subscription, build, build_unless, resolve_address};
use bulkhead_identity::TrustDomain;
use bulkhead_resources::{Format, Loader};
use bulkhead_store::{ObjectKey, Registration, StoredObject};
use prost::Message;
use serde_json::{Value, json};

const BUNDLE: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn td() -> TrustDomain {
    TrustDomain::new("cluster.local").unwrap()
}

fn stored(object: Value) -> StoredObject {
    StoredObject {
        key: ObjectKey::of_object(&object).unwrap(),
        resource_version: 1,
        object,
    }
}

fn view(revision: u64, objects: Vec<Value>, registrations: Vec<Registration>) -> MeshView {
    MeshView::from_objects(
        revision,
        0,
        objects.into_iter().map(stored).collect(),
        registrations,
    )
    .unwrap()
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn netpol(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": {"podSelector": {}}})
}

fn authz(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": {}})
}

fn peer_authn(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": ns}, "spec": {"mtls": {"mode": "STRICT"}}})
}

fn workload(ns: &str, name: &str, sa: &str, labels: Value, spec: Value) -> Value {
    let mut spec = spec;
    spec["serviceAccount"] = json!(sa);
    json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec})
}

fn service(ns: &str, name: &str, selector: Value, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector, "ports": ports}})
}

fn registration(workload: &str, sa: &str, inbound: &[(u16, &str)]) -> Registration {
    let (ns, _) = workload.split_once('/').unwrap();
    let addresses: Vec<&str> = inbound.iter().map(|(_, a)| *a).collect();
    Registration {
        instance: format!("{workload}@{}", addresses.join(",")),
        workload: workload.to_owned(),
        identity: format!("spiffe://cluster.local/ns/{ns}/sa/{sa}"),
        inbound: inbound
            .iter()
            .map(|(p, a)| (*p, (*a).to_owned(), "auto".to_owned()))
            .collect(),
        last_seen_unix: 1,
        connected: false,
        cert_expiry_unix: None,
    }
}

fn subscription(ns: &str, name: &str, sa: &str, upstreams: &[(&str, u32)]) -> Subscription {
    let upstreams = upstreams
        .iter()
        .map(|(service, port)| UpstreamRef {
            service: (*service).to_owned(),
            port: *port,
        })
        .collect();
    Subscription::new(ns, name, sa, BTreeMap::new(), Vec::new(), upstreams)
}

fn snapshot(view: &MeshView, sub: &Subscription) -> Snapshot {
    build(view, &td(), BUNDLE, sub)
}

/// `Kind/ns/name` of every resource, in snapshot order.
fn names(s: &Snapshot) -> Vec<String> {
    s.resources_json
        .iter()
        .map(|j| {
            ObjectKey::of_object(&serde_json::from_str(j).unwrap())
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The hash as docs/control-plane.md defines it, computed from scratch.
fn reference_hash(s: &Snapshot) -> String {
    let mut copy = s.clone();
    copy.version = 0;
    copy.hash.clear();
    let d = digest(&SHA256, &copy.encode_to_vec());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn endpoints(list: &[(&str, &str)]) -> Vec<Endpoint> {
    list.iter()
        .map(|(address, sa)| Endpoint {
            address: (*address).to_owned(),
            identity: format!("spiffe://cluster.local/ns/shop/sa/{sa}"),
        })
        .collect()
}

fn mixed_namespaces() -> Vec<Value> {
    vec![
        namespace("shop"),
        namespace("other"),
        netpol("shop", "np-shop"),
        netpol("other", "np-other"),
        authz("bulkhead-system", "root-authz"),
        authz("other", "authz-other"),
        peer_authn("other", "pa-other"),
        peer_authn("shop", "pa-shop"),
        service("shop", "web", json!({"app": "web"}), json!([{"port": 80}])),
        service("other", "db", json!({"app": "db"}), json!([{"port": 5432}])),
        workload("shop", "web", "web", json!({"app": "web"}), json!({})),
        workload(
            "other",
            "db",
            "db",
            json!({"app": "db"}),
            json!({"address": "10.9.0.1"}),
        ),
        workload("other", "cache", "cache", json!({}), json!({})),
    ]
}

#[test]
fn holds_own_namespace_and_root_policies_only() {
    let v = view(3, mixed_namespaces(), Vec::new());
    let s = snapshot(&v, &subscription("shop", "web", "web", &[]));
    assert_eq!(
        names(&s),
        [
            "Namespace/other",
            "Namespace/shop",
            "AuthorizationPolicy/bulkhead-system/root-authz",
            "NetworkPolicy/shop/np-shop",
            "PeerAuthentication/shop/pa-shop",
            "Service/shop/web",
            "Workload/other/db",
            "Workload/shop/web",
        ]
    );
    assert_eq!(s.version, 3);
    assert_eq!(s.trust_domain, "cluster.local");
    assert_eq!(s.trust_bundle_pem, BUNDLE);
}

#[test]
fn an_addressed_own_workload_appears_once() {
    let v = view(1, mixed_namespaces(), Vec::new());
    let s = snapshot(&v, &subscription("other", "db", "db", &[]));
    let n = names(&s);
    assert_eq!(n.iter().filter(|k| *k == "Workload/other/db").count(), 1);
    assert!(n.contains(&"NetworkPolicy/other/np-other".to_owned()));
    assert!(!n.contains(&"NetworkPolicy/shop/np-shop".to_owned()));
    assert!(
        !n.contains(&"Workload/other/cache".to_owned()),
        "not addressed, not own"
    );
}

#[test]
fn a_proxy_in_the_root_namespace_gets_its_policies_once() {
    let v = view(1, mixed_namespaces(), Vec::new());
    let s = snapshot(&v, &subscription("bulkhead-system", "gw", "gw", &[]));
    let n = names(&s);
    let root = "AuthorizationPolicy/bulkhead-system/root-authz".to_owned();
    assert_eq!(n.iter().filter(|k| **k == root).count(), 1);
    assert_eq!(s.hash, reference_hash(&s));
}

#[test]
fn synthesizes_an_undeclared_workload_from_subscribe() {
    let v = view(1, vec![namespace("shop")], Vec::new());
    let labels = BTreeMap::from([("app".to_owned(), "edge".to_owned())]);
    let inbound = vec![
        InboundPort {
            port: 8080,
            address: "0.0.0.0:15006".into(),
            protocol: "http".into(),
        },
        InboundPort {
            port: 9000,
            address: "0.0.0.0:15007".into(),
            protocol: "opaque".into(),
        },
        InboundPort {
            port: 7000,
            address: "0.0.0.0:15008".into(),
            protocol: "auto".into(),
        },
    ];
    let sub = Subscription::new("shop", "edge", "edge-sa", labels, inbound, Vec::new());
    let s = snapshot(&v, &sub);
    let own: Value = serde_json::from_str(s.resources_json.last().unwrap()).unwrap();
    assert_eq!(
        own,
        json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": "edge", "namespace": "shop", "labels": {"app": "edge"}},
            "spec": {"serviceAccount": "edge-sa", "ports": [
                {"port": 7000}, {"port": 8080, "appProtocol": "http"},
                {"port": 9000, "appProtocol": "tcp"}]}})
    );
    // The proxy loads it with the same loader as every other resource.
    let mut loader = Loader::new();
    for (i, json) in s.resources_json.iter().enumerate() {
        loader
            .add_str(json, &format!("resources_json[{i}]"), Format::Json)
            .unwrap();
    }
    let set = loader.finish().unwrap();
    assert_eq!(set.workloads.len(), 1);
}

fn api_objects() -> Vec<Value> {
    vec![
        service(
            "shop",
            "api",
            json!({"app": "api"}),
            json!([
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9090},
                {"name": "grpc", "port": 81, "targetPort": 7070},
            ]),
        ),
        service(
            "shop",
            "single",
            json!({"app": "api"}),
            json!([{"port": 443, "targetPort": 8443}]),
        ),
        service("shop", "headless", json!({}), json!([{"port": 80}])),
        workload(
            "shop",
            "api-1",
            "api",
            json!({"app": "api", "tier": "backend"}),
            json!({"ports": [{"name": "http", "port": 8080}]}),
        ),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-2", "namespace": "shop",
            "labels": {"app": "api"}},
            "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8081}]}]},
            "status": {"podIP": "10.0.0.2"}}),
        workload("shop", "other", "other", json!({"app": "other"}), json!({})),
        workload(
            "other",
            "api-elsewhere",
            "api",
            json!({"app": "api"}),
            json!({}),
        ),
    ]
}

fn api_registrations() -> Vec<Registration> {
    vec![
        registration(
            "shop/api-1",
            "api",
            &[
                (8080, "10.0.0.1:15006"),
                (9090, "10.0.0.1:15007"),
                (7070, "10.0.0.1:15008"),
            ],
        ),
        registration(
            "shop/api-2",
            "ignored",
            &[(8081, "0.0.0.0:15006"), (8443, "[::]:15443")],
        ),
        registration("shop/other", "other", &[(8080, "10.0.0.9:15006")]),
        registration("other/api-elsewhere", "api", &[(8080, "10.8.0.1:15006")]),
    ]
}

#[test]
fn resolves_service_ports_and_target_ports() {
    let v = view(5, api_objects(), api_registrations());
    let sub = subscription(
        "shop",
        "client",
        "client",
        &[
            ("api.shop", 80),
            ("api.shop", 9090),
            ("api.shop", 81),
            ("single.shop", 0),
        ],
    );
    let s = snapshot(&v, &sub);
    let ups: Vec<(String, u32, Vec<Endpoint>)> = s
        .upstreams
        .iter()
        .map(|u| (u.service.clone(), u.port, u.endpoints.clone()))
        .collect();
    assert_eq!(
        ups,
        [
            // Named targetPort: each workload's own port of that name; the Pod's
            // unspecified registered IP is replaced by its pod IP; SA `default` when unset.
            (
                "api.shop".to_owned(),
                80,
                endpoints(&[("10.0.0.1:15006", "api"), ("10.0.0.2:15006", "default")]),
            ),
            (
                "api.shop".to_owned(),
                81,
                endpoints(&[("10.0.0.1:15008", "api")])
            ),
            // No targetPort: the Service port itself.
            (
                "api.shop".to_owned(),
                9090,
                endpoints(&[("10.0.0.1:15007", "api")])
            ),
            // Port 0 on a single-port Service; `[::]` replaced by the pod IP.
            (
                "single.shop".to_owned(),
                443,
                endpoints(&[("10.0.0.2:15443", "default")])
            ),
        ]
    );
}

#[test]
fn unknown_services_and_ports_have_no_endpoints() {
    let v = view(5, api_objects(), api_registrations());
    let sub = subscription(
        "shop",
        "client",
        "client",
        &[
            ("api.shop", 0),
            ("api.shop", 1234),
            ("nope.shop", 80),
            ("headless.shop", 80),
        ],
    );
    let s = snapshot(&v, &sub);
    let ups: Vec<(&str, u32, usize)> = s
        .upstreams
        .iter()
        .map(|u| (u.service.as_str(), u.port, u.endpoints.len()))
        .collect();
    assert_eq!(
        ups,
        [
            ("api.shop", 0, 0),
            ("api.shop", 1234, 0),
            ("headless.shop", 80, 0),
            ("nope.shop", 80, 0)
        ]
    );
}

#[test]
fn unspecified_addresses_resolve_to_fixed_then_peer() {
    let fixed = Some("10.0.0.5".parse().unwrap());
    let peer = Some("192.168.1.9".parse().unwrap());
    assert_eq!(
        resolve_address("0.0.0.0:15006", fixed, peer),
        "10.0.0.5:15006"
    );
    assert_eq!(
        resolve_address("0.0.0.0:15006", None, peer),
        "192.168.1.9:15006"
    );
    assert_eq!(
        resolve_address("[::]:15006", None, Some("fd00::1".parse().unwrap())),
        "[fd00::1]:15006"
    );
    assert_eq!(
        resolve_address("10.1.1.1:15006", fixed, peer),
        "10.1.1.1:15006"
    );
    assert_eq!(
        resolve_address("0.0.0.0:15006", None, None),
        "0.0.0.0:15006"
    );
}

#[test]
fn an_unresolvable_unspecified_endpoint_is_left_out() {
    let objects = vec![
        service("shop", "api", json!({"app": "api"}), json!([{"port": 80}])),
        workload("shop", "api-1", "api", json!({"app": "api"}), json!({})),
    ];
    let regs = vec![registration("shop/api-1", "api", &[(80, "0.0.0.0:15006")])];
    let v = view(1, objects, regs);
    let s = snapshot(&v, &subscription("shop", "c", "c", &[("api.shop", 80)]));
    assert!(s.upstreams[0].endpoints.is_empty());
}

#[test]
fn the_hash_is_the_digest_of_the_content_and_deterministic() {
    let mut objects = api_objects();
    objects.extend(mixed_namespaces());
    let regs = api_registrations();
    let sub = subscription(
        "shop",
        "client",
        "client",
        &[("single.shop", 0), ("api.shop", 80)],
    );
    let a = snapshot(&view(5, objects.clone(), regs.clone()), &sub);
    objects.reverse();
    let mut regs_reversed = regs;
    regs_reversed.reverse();
    let same_order = subscription(
        "shop",
        "client",
        "client",
        &[("api.shop", 80), ("single.shop", 0)],
    );
    let b = snapshot(&view(9, objects, regs_reversed), &same_order);
    assert_eq!(a.hash, reference_hash(&a));
    assert_eq!(a.hash.len(), 64);
    assert_eq!(
        a.hash, b.hash,
        "the hash ignores input order and the version"
    );
    assert_eq!(a.resources_json, b.resources_json);
    assert_eq!((a.version, b.version), (5, 9));
    // Several proxies of one view share the cached prefix; each hash is still exact.
    let v = view(5, api_objects(), api_registrations());
    for sub in [
        subscription("shop", "api-1", "api", &[("api.shop", 80)]),
        subscription("shop", "x", "x", &[]),
        subscription("nowhere", "y", "y", &[("api.shop", 9090)]),
    ] {
        let s = snapshot(&v, &sub);
        assert_eq!(s.hash, reference_hash(&s));
        let again = snapshot(&v, &sub);
        assert_eq!(s, again);
    }
}

#[test]
fn an_unrelated_namespace_does_not_change_the_hash() {
    let sub = subscription("shop", "web", "web", &[("web.shop", 80)]);
    let before = snapshot(&view(1, mixed_namespaces(), Vec::new()), &sub);
    let mut changed = mixed_namespaces();
    changed.push(netpol("other", "np-other-2"));
    changed.push(authz("other", "authz-other-2"));
    let after = snapshot(&view(2, changed, Vec::new()), &sub);
    assert_eq!(before.hash, after.hash);
    assert_ne!(before.version, after.version);

    let mut own = mixed_namespaces();
    own.push(netpol("shop", "np-shop-2"));
    assert_ne!(snapshot(&view(3, own, Vec::new()), &sub).hash, before.hash);
    let mut root = mixed_namespaces();
    root.push(peer_authn("bulkhead-system", "mesh-strict"));
    assert_ne!(snapshot(&view(4, root, Vec::new()), &sub).hash, before.hash);
}

#[test]
fn a_new_endpoint_changes_only_the_proxies_that_dial_it() {
    let objects = api_objects();
    let dialer = subscription("shop", "client", "client", &[("api.shop", 80)]);
    let bystander = subscription("shop", "idle", "idle", &[]);
    let old = view(5, objects.clone(), api_registrations());
    let mut regs = api_registrations();
    regs.push(registration(
        "shop/api-1",
        "api",
        &[(8080, "10.0.0.3:15006")],
    ));
    let new =
        MeshView::from_objects(5, 1, objects.into_iter().map(stored).collect(), regs).unwrap();
    assert_ne!(snapshot(&old, &dialer).hash, snapshot(&new, &dialer).hash);
    assert_eq!(
        snapshot(&old, &bystander).hash,
        snapshot(&new, &bystander).hash
    );
}

#[test]
fn build_unless_skips_what_the_proxy_has() {
    let v = view(5, api_objects(), api_registrations());
    let sub = subscription("shop", "client", "client", &[("api.shop", 80)]);
    let full = snapshot(&v, &sub);
    assert_eq!(build_unless(&v, &td(), BUNDLE, &sub, &full.hash), None);
    assert_eq!(build_unless(&v, &td(), BUNDLE, &sub, "stale"), Some(full));
}

#[test]
fn addressed_workloads_go_only_where_a_network_policy_may_need_them() {
    let mut objects = mixed_namespaces();
    objects.push(namespace("quiet"));
    objects.push(workload(
        "quiet",
        "q",
        "q",
        json!({}),
        json!({"address": "10.9.0.2"}),
    ));
    let v = view(1, objects, Vec::new());
    let quiet = names(&snapshot(&v, &subscription("quiet", "q", "q", &[])));
    assert!(
        !quiet.contains(&"Workload/other/db".to_owned()),
        "{quiet:?}"
    );
    assert_eq!(
        quiet.iter().filter(|k| *k == "Workload/quiet/q").count(),
        1,
        "{quiet:?}"
    );
    let shop = names(&snapshot(&v, &subscription("shop", "web", "web", &[])));
    assert!(
        shop.contains(&"Workload/other/db".to_owned())
            && shop.contains(&"Workload/quiet/q".to_owned())
    );
}

#[test]
fn upstreams_carry_their_services_traffic_policy() {
    let mut objects = api_objects();
    objects.push(
        json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "TrafficPolicy",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"service": "api", "loadBalancer": "roundRobin",
            "retries": {"attempts": 1, "retryOn": ["reset", 503]}}}),
    );
    let v = view(5, objects, api_registrations());
    let sub = subscription(
        "shop",
        "client",
        "client",
        &[("api.shop", 80), ("single.shop", 0)],
    );
    let s = snapshot(&v, &sub);
    let policies: Vec<(&str, &str)> = s
        .upstreams
        .iter()
        .map(|u| (u.service.as_str(), u.traffic_policy_json.as_str()))
        .collect();
    let want =
        r#"{"loadBalancer":"roundRobin","retries":{"attempts":1,"retryOn":["reset","503"]}}"#;
    // `service` is left out; a Service without a TrafficPolicy gets the defaults (empty).
    assert_eq!(policies, [("api.shop", want), ("single.shop", "")]);
    assert_eq!(s.hash, reference_hash(&s));
    // The policy is part of the content: changing it changes the hash.
    assert_ne!(
        s.hash,
        snapshot(&view(5, api_objects(), api_registrations()), &sub).hash
    );
}

fn firewall(ns: &str, name: &str, selector: Option<Value>, mode: &str) -> Value {
    let mut spec = json!({"mode": mode, "paranoiaLevel": 2});
    if let Some(selector) = selector {
        spec["selector"] = json!({"matchLabels": selector});
    }
    json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "WebApplicationFirewall",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

#[test]
fn each_proxy_gets_the_firewall_that_selects_its_workload() {
    let objects = vec![
        namespace("shop"),
        workload("shop", "web", "web", json!({"app": "web"}), json!({})),
        workload("shop", "db", "db", json!({"app": "db"}), json!({})),
        firewall(
            "shop",
            "web-b",
            Some(json!({"app": "web"})),
            "DetectionOnly",
        ),
        firewall("shop", "web-a", Some(json!({"app": "web"})), "Blocking"),
        firewall("shop", "everyone", None, "DetectionOnly"),
        firewall("bulkhead-system", "mesh", None, "Off"),
    ];
    let v = view(3, objects, Vec::new());
    let waf = |ns: &str, name: &str| snapshot(&v, &subscription(ns, name, name, &[])).waf;
    // Two selectors match `web`: the first by name applies.
    let web = waf("shop", "web").unwrap();
    assert_eq!(web.name, "shop/web-a");
    assert_eq!(web.spec_json, r#"{"mode":"Blocking","paranoiaLevel":2}"#);
    // No selector matches `db`: the namespace-wide one applies; elsewhere the mesh's.
    assert_eq!(waf("shop", "db").unwrap().name, "shop/everyone");
    assert_eq!(waf("billing", "x").unwrap().name, "bulkhead-system/mesh");
    // An undeclared workload is selected by the labels it subscribed with.
    let mut labels = BTreeMap::new();
    labels.insert("app".to_owned(), "web".to_owned());
    let sub = Subscription::new("shop", "web-2", "web", labels, Vec::new(), Vec::new());
    let s = snapshot(&v, &sub);
    assert_eq!(s.waf.as_ref().unwrap().name, "shop/web-a");
    // The firewall is part of the content: the hash covers it.
    assert_eq!(s.hash, reference_hash(&s));
    let none = view(3, vec![namespace("shop")], Vec::new());
    let without = snapshot(&none, &sub);
    assert!(without.waf.is_none());
    assert_ne!(without.hash, s.hash);
    assert_eq!(without.hash, reference_hash(&without));
}
