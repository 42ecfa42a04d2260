//! NetworkPolicies: ten per namespace, covering every peer and port form of
//! NetworkPolicy v1 (default deny, podSelector, namespaceSelector, both, ipBlock with
//! except, named ports, endPort ranges, matchExpressions, egress).

use std::fmt::Write as _;

use super::{APPS, Cluster, Ns, Tier, metadata, yl};

/// Policies written per namespace.
pub(crate) const PER_NAMESPACE: usize = 10;

/// Load-balancer range allowed into frontends, minus two blocked /24s.
pub(crate) const LB_CIDR: &str = "192.168.0.0/16";
pub(crate) const LB_EXCEPT: [&str; 2] = ["192.168.13.0/24", "192.168.66.0/24"];
/// Node addresses (kubelet probes come from here), minus a quarantined /24.
pub(crate) const NODE_CIDR: &str = "10.20.0.0/16";
pub(crate) const NODE_EXCEPT: &str = "10.20.255.0/24";
/// The cluster DNS service address.
pub(crate) const DNS_IP: &str = "10.96.0.10";

/// `30-networkpolicies.yaml`.
pub(super) fn policies(c: &Cluster) -> (String, usize) {
    let mut out = String::new();
    let writers: [fn(&mut String, &Cluster, usize); PER_NAMESPACE] = [
        default_deny,
        frontend_to_backend,
        ingress_to_frontend,
        team_backend,
        backend_to_data,
        metrics_scrape,
        egress_data,
        egress_worker,
        canary,
        partner,
    ];
    for ns in 0..c.namespaces.len() {
        for write in writers {
            write(&mut out, c, ns);
        }
    }
    (out, c.namespaces.len() * PER_NAMESPACE)
}

fn header(out: &mut String, ns: &Ns, name: &str) {
    yl!(out, "---");
    yl!(out, "apiVersion: networking.k8s.io/v1");
    yl!(out, "kind: NetworkPolicy");
    metadata(out, name, &ns.name, &[("managed-by", "platform-team")]);
    yl!(out, "spec:");
}

fn default_deny(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "default-deny-ingress");
    yl!(out, "  podSelector: {{}}");
    yl!(out, "  policyTypes:");
    yl!(out, "  - Ingress");
}

fn frontend_to_backend(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "allow-frontend-to-backend");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: backend");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: frontend");
    yl!(out, "    ports:");
    yl!(out, "    - port: http");
    yl!(out, "    - port: grpc");
    yl!(out, "      protocol: TCP");
}

fn ingress_to_frontend(out: &mut String, c: &Cluster, ns: usize) {
    let n = &c.namespaces[ns];
    header(out, n, "allow-ingress-to-frontend");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: frontend");
    yl!(out, "  policyTypes:");
    yl!(out, "  - Ingress");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - namespaceSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          team: {}", n.team);
    yl!(out, "    ports:");
    yl!(out, "    - port: http");
    yl!(out, "  - from:");
    yl!(out, "    - ipBlock:");
    yl!(out, "        cidr: {LB_CIDR}");
    yl!(out, "        except:");
    for e in LB_EXCEPT {
        yl!(out, "        - {e}");
    }
    yl!(out, "    ports:");
    yl!(out, "    - port: 8080");
}

fn team_backend(out: &mut String, c: &Cluster, ns: usize) {
    let n = &c.namespaces[ns];
    header(out, n, "allow-team-backends");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: backend");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - namespaceSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          team: {}", n.team);
    yl!(out, "      podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: backend");
    yl!(out, "    ports:");
    yl!(out, "    - port: grpc");
}

fn backend_to_data(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "allow-backend-to-data");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: data");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - podSelector:");
    yl!(out, "        matchExpressions:");
    yl!(out, "        - key: tier");
    yl!(out, "          operator: In");
    yl!(out, "          values: [backend, worker]");
    yl!(out, "    ports:");
    yl!(out, "    - port: 5432");
    yl!(out, "      endPort: 5439");
    yl!(out, "    - port: 6379");
}

fn metrics_scrape(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "allow-metrics-scrape");
    yl!(out, "  podSelector: {{}}");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - ipBlock:");
    yl!(out, "        cidr: {}", Cluster::ns_cidr(0));
    yl!(out, "    - ipBlock:");
    yl!(out, "        cidr: {NODE_CIDR}");
    yl!(out, "        except: [{NODE_EXCEPT}]");
    yl!(out, "    ports:");
    yl!(out, "    - port: 8080");
    yl!(out, "    - port: 9100");
    yl!(out, "      endPort: 9102");
    yl!(out, "    - port: 8125");
    yl!(out, "      protocol: UDP");
    yl!(out, "  - from:");
    yl!(out, "    - namespaceSelector:");
    yl!(out, "        matchExpressions:");
    yl!(out, "        - key: env");
    yl!(out, "          operator: NotIn");
    yl!(out, "          values: [dev]");
    yl!(out, "      podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          app: indexer");
    yl!(out, "    ports:");
    yl!(out, "    - port: http-envoy-prom");
}

fn egress_data(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "restrict-data-egress");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: data");
    yl!(out, "  policyTypes:");
    yl!(out, "  - Egress");
    yl!(out, "  egress:");
    yl!(out, "  - to:");
    yl!(out, "    - podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: data");
    yl!(out, "    ports:");
    yl!(out, "    - port: db");
    dns_rule(out);
}

fn dns_rule(out: &mut String) {
    yl!(out, "  - to:");
    yl!(out, "    - ipBlock:");
    yl!(out, "        cidr: {DNS_IP}/32");
    yl!(out, "    ports:");
    yl!(out, "    - port: 53");
    yl!(out, "      protocol: UDP");
    yl!(out, "    - port: 53");
    yl!(out, "      protocol: TCP");
}

fn egress_worker(out: &mut String, c: &Cluster, ns: usize) {
    let n = &c.namespaces[ns];
    header(out, n, "restrict-worker-egress");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      tier: worker");
    yl!(out, "  policyTypes:");
    yl!(out, "  - Egress");
    yl!(out, "  egress:");
    yl!(out, "  - to:");
    yl!(out, "    - ipBlock:");
    yl!(out, "        cidr: 0.0.0.0/0");
    yl!(
        out,
        "        except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]"
    );
    yl!(out, "    ports:");
    yl!(out, "    - port: 443");
    yl!(out, "    - port: 587");
    yl!(out, "  - to:");
    yl!(out, "    - podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: backend");
    yl!(out, "    ports:");
    yl!(out, "    - port: grpc");
    yl!(out, "  - to:");
    yl!(out, "    - namespaceSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          team: {}", n.team);
    yl!(out, "      podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: data");
    yl!(out, "    ports:");
    yl!(out, "    - port: 5432");
    yl!(out, "      endPort: 5439");
    yl!(out, "    - port: 6379");
    yl!(out, "  - to:");
    yl!(out, "    - namespaceSelector: {{}}");
    yl!(out, "    ports:");
    yl!(out, "    - port: 9100");
    yl!(out, "      endPort: 9102");
    yl!(out, "    - port: 15090");
    dns_rule(out);
}

fn canary(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns], "allow-canary-debug-ports");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      version: v2");
    yl!(out, "    matchExpressions:");
    yl!(out, "    - key: tier");
    yl!(out, "      operator: NotIn");
    yl!(out, "      values: [data]");
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - podSelector:");
    yl!(out, "        matchExpressions:");
    yl!(out, "        - key: app");
    yl!(out, "          operator: Exists");
    yl!(out, "    ports:");
    yl!(out, "    - port: 8080");
    yl!(out, "      endPort: 8090");
}

fn partner(out: &mut String, c: &Cluster, ns: usize) {
    let n = &c.namespaces[ns];
    debug_assert_eq!(APPS[n.partner_app].1, Tier::Backend);
    header(out, n, "allow-partner-frontends");
    yl!(out, "  podSelector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      app: {}", APPS[n.partner_app].0);
    yl!(out, "  ingress:");
    yl!(out, "  - from:");
    yl!(out, "    - namespaceSelector:");
    yl!(out, "        matchLabels:");
    yl!(
        out,
        "          kubernetes.io/metadata.name: {}",
        c.namespaces[n.partner].name
    );
    yl!(out, "      podSelector:");
    yl!(out, "        matchLabels:");
    yl!(out, "          tier: frontend");
    yl!(out, "    ports:");
    yl!(out, "    - port: http");
    yl!(out, "    - port: grpc");
}
