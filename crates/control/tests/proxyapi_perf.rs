//! Snapshot building at benchmark scale (5,000 workloads in 50 namespaces, 500 Services,
//! 1,000 proxies with three upstreams each). A measurement that prints timings:
//! `cargo test --release -p bulkhead-control --test proxyapi_perf -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::time::Instant;

use bulkhead_api::proxy::UpstreamRef;
use bulkhead_control::mesh::MeshView;
use bulkhead_control::proxyapi::snapshot::{Subscription, build, build_unless};
use bulkhead_identity::TrustDomain;
use bulkhead_store::{ObjectKey, Registration, StoredObject};
use serde_json::{Value, json};

const NAMESPACES: usize = 50;
const WORKLOADS: usize = 5_000;
const PROXIES: usize = 1_000;

fn per_namespace(n: usize) -> Vec<Value> {
    let ns = format!("ns{n}");
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": ns}, "spec": {"podSelector": {}}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ap", "namespace": ns},
            "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/x/sa/y"]}}]}]}}),
    ];
    for s in 0..10 {
        objects.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc{s}"), "namespace": ns},
            "spec": {"selector": {"app": format!("app{s}")},
                "ports": [{"port": 80, "targetPort": "http"}]}}));
    }
    objects
}

fn workload(i: usize, addressed: bool) -> Value {
    let mut spec = json!({"serviceAccount": format!("sa{}", i % 100),
        "ports": [{"name": "http", "port": 8080}]});
    if addressed {
        spec["address"] = json!(format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256));
    }
    json!({"apiVersion": "bulkhead.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": format!("w{i}"), "namespace": format!("ns{}", i % NAMESPACES),
            "labels": {"app": format!("app{}", (i / NAMESPACES) % 10), "n": i.to_string()}},
        "spec": spec})
}

fn registration(i: usize) -> Registration {
    let address = format!("10.1.{}.{}:15006", i / 256, i % 256);
    Registration {
        instance: format!("ns{}/w{i}@{address}", i % NAMESPACES),
        workload: format!("ns{}/w{i}", i % NAMESPACES),
        identity: String::new(),
        inbound: vec![(8080, address, "http".into())],
        last_seen_unix: 0,
        connected: true,
        cert_expiry_unix: None,
    }
}

fn subscription(i: usize) -> Subscription {
    let ns = format!("ns{}", i % NAMESPACES);
    let upstreams = (0..3)
        .map(|s| UpstreamRef {
            service: format!("svc{}.{ns}", (i + s) % 10),
            port: 80,
        })
        .collect();
    let sa = format!("sa{}", i % 100);
    Subscription::new(
        &ns,
        &format!("w{i}"),
        &sa,
        BTreeMap::new(),
        Vec::new(),
        upstreams,
    )
}

fn run(addressed: bool) {
    let mut objects: Vec<Value> = (0..NAMESPACES).flat_map(per_namespace).collect();
    objects.extend((0..WORKLOADS).map(|i| workload(i, addressed)));
    let stored: Vec<StoredObject> = objects
        .into_iter()
        .map(|object| StoredObject {
            key: ObjectKey::of_object(&object).unwrap(),
            resource_version: 1,
            object,
        })
        .collect();
    let started = Instant::now();
    let view =
        MeshView::from_objects(1, 0, stored, (0..PROXIES).map(registration).collect()).unwrap();
    println!(
        "addressed={addressed}: view built in {:?}",
        started.elapsed()
    );

    let td = TrustDomain::new("cluster.local").unwrap();
    let subs: Vec<Subscription> = (0..PROXIES).map(subscription).collect();
    let started = Instant::now();
    let mut bytes = 0;
    let mut hashes = Vec::with_capacity(PROXIES);
    for sub in &subs {
        let s = build(&view, &td, "bundle", sub);
        bytes += s.resources_json.iter().map(String::len).sum::<usize>();
        hashes.push(s.hash);
    }
    println!(
        "  {PROXIES} snapshots in {:?} ({} MB of resources)",
        started.elapsed(),
        bytes >> 20
    );
    let started = Instant::now();
    let changed = subs
        .iter()
        .zip(&hashes)
        .filter(|(sub, hash)| build_unless(&view, &td, "bundle", sub, hash).is_some())
        .count();
    println!(
        "  {PROXIES} unchanged checks in {:?} ({changed} changed)",
        started.elapsed()
    );
}

#[test]
#[ignore = "a measurement, not a check; run it with --release --ignored --nocapture"]
fn snapshots_at_benchmark_scale() {
    run(false);
    run(true);
}
