//! Namespaces, Pods and Services.

use std::fmt::Write as _;

use super::{APPS, Cluster, ROOT_NAMESPACE, Tier, data_port, metadata, yl};

/// `00-namespaces.yaml`: the application namespaces and the root namespace.
pub(super) fn namespaces(c: &Cluster) -> (String, usize) {
    let mut out = String::new();
    for ns in &c.namespaces {
        yl!(out, "---");
        yl!(out, "apiVersion: v1");
        yl!(out, "kind: Namespace");
        yl!(out, "metadata:");
        yl!(out, "  name: {}", ns.name);
        yl!(out, "  labels:");
        yl!(out, "    team: {}", ns.team);
        yl!(out, "    env: {}", ns.env);
        yl!(out, "    istio-injection: enabled");
    }
    yl!(out, "---");
    yl!(out, "apiVersion: v1");
    yl!(out, "kind: Namespace");
    yl!(out, "metadata:");
    yl!(out, "  name: {ROOT_NAMESPACE}");
    yl!(out, "  labels:");
    yl!(out, "    team: platform");
    (out, c.namespaces.len() + 1)
}

/// `10-pods.yaml`: every pod with labels, service account, named ports and its IP.
pub(super) fn pods(c: &Cluster) -> (String, usize) {
    let mut out = String::with_capacity(c.pods.len() * 900);
    for pod in &c.pods {
        let ns = &c.namespaces[pod.ns].name;
        let (app, tier) = APPS[pod.app];
        yl!(out, "---");
        yl!(out, "apiVersion: v1");
        yl!(out, "kind: Pod");
        metadata(
            &mut out,
            &pod.name,
            ns,
            &[
                ("app", app),
                ("tier", tier.as_str()),
                ("version", pod.version),
                ("security.istio.io/tlsMode", "istio"),
            ],
        );
        yl!(out, "spec:");
        yl!(out, "  serviceAccountName: {app}");
        yl!(out, "  containers:");
        yl!(out, "  - name: {app}");
        yl!(
            out,
            "    image: registry.example.com/{ns}/{app}:1.{}.0",
            pod.app
        );
        yl!(out, "    ports:");
        container_port(&mut out, "http", 8080, "TCP");
        container_port(&mut out, "grpc", 9090, "TCP");
        container_port(&mut out, "metrics", 9100, "TCP");
        if tier == Tier::Data {
            container_port(&mut out, "db", data_port(pod.app), "TCP");
        }
        yl!(out, "  - name: istio-proxy");
        yl!(out, "    image: registry.example.com/bulkhead/proxy:1.0.0");
        yl!(out, "    ports:");
        container_port(&mut out, "http-envoy-prom", 15090, "TCP");
        yl!(out, "status:");
        yl!(out, "  phase: Running");
        yl!(out, "  podIP: {}", pod.ip);
        yl!(out, "  podIPs:");
        yl!(out, "  - ip: {}", pod.ip);
    }
    (out, c.pods.len())
}

fn container_port(out: &mut String, name: &str, port: u16, protocol: &str) {
    yl!(out, "    - name: {name}");
    yl!(out, "      containerPort: {port}");
    yl!(out, "      protocol: {protocol}");
}

/// `20-services.yaml`: one Service per app, selecting its pods.
pub(super) fn services(c: &Cluster) -> (String, usize) {
    let mut out = String::new();
    let mut n = 0;
    for ns in &c.namespaces {
        for (app, tier) in APPS {
            n += 1;
            yl!(out, "---");
            yl!(out, "apiVersion: v1");
            yl!(out, "kind: Service");
            metadata(&mut out, app, &ns.name, &[("app", app)]);
            yl!(out, "spec:");
            yl!(out, "  type: ClusterIP");
            yl!(out, "  selector:");
            yl!(out, "    app: {app}");
            yl!(out, "  ports:");
            yl!(out, "  - name: http");
            yl!(out, "    port: 80");
            yl!(out, "    targetPort: http");
            yl!(out, "    appProtocol: http");
            yl!(out, "  - name: grpc");
            yl!(out, "    port: 9090");
            yl!(out, "    targetPort: grpc");
            yl!(out, "    appProtocol: grpc");
            if tier == Tier::Data {
                yl!(out, "  - name: tcp-db");
                yl!(out, "    port: 5432");
                yl!(out, "    targetPort: db");
            }
        }
    }
    (out, n)
}
