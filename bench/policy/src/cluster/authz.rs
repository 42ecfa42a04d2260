//! AuthorizationPolicies (five per namespace plus mesh-wide ones in the root namespace)
//! and PeerAuthentications.

use std::fmt::Write as _;

use super::{APPS, Cluster, ROOT_NAMESPACE, TRUST_DOMAIN, Tier, flow, metadata, principal, yl};
use crate::rng::Rng;

/// Policies written per application namespace.
pub(crate) const PER_NAMESPACE: usize = 5;
/// Remote addresses every sidecar refuses (mesh-wide DENY).
pub(crate) const BLOCKED_REMOTE: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
/// A trust domain the mesh-wide DENY refuses.
pub(crate) const FOREIGN_TD: &str = "legacy.example.org";
/// Issuer of the JWTs some policies accept.
pub(crate) const ISSUER: &str = "https://idp.example.com";

/// `40-authorizationpolicies.yaml`.
pub(super) fn authorization_policies(c: &Cluster, rng: &mut Rng, audit: bool) -> (String, usize) {
    let mut out = String::new();
    for ns in 0..c.namespaces.len() {
        frontend_allow(&mut out, c, ns);
        backend_allow(&mut out, c, ns, rng);
        data_allow(&mut out, c, ns);
        if ns.is_multiple_of(2) {
            deny_admin(&mut out, c, ns);
        } else {
            deny_quarantined(&mut out, c, ns, rng);
        }
        probes_and_metrics(&mut out, c, ns);
    }
    let root = mesh_wide(&mut out, audit);
    (out, c.namespaces.len() * PER_NAMESPACE + root)
}

fn header(out: &mut String, ns: &str, name: &str, annotations: &[(&str, &str)]) {
    yl!(out, "---");
    yl!(out, "apiVersion: security.istio.io/v1");
    yl!(out, "kind: AuthorizationPolicy");
    metadata(out, name, ns, &[]);
    if !annotations.is_empty() {
        yl!(out, "  annotations:");
        for (k, v) in annotations {
            yl!(out, "    {k}: \"{v}\"");
        }
    }
    yl!(out, "spec:");
}

fn selector(out: &mut String, key: &str, value: &str) {
    yl!(out, "  selector:");
    yl!(out, "    matchLabels:");
    yl!(out, "      {key}: {value}");
}

/// Names of the namespaces of `ns`'s team (including itself).
fn team_namespaces(c: &Cluster, ns: usize) -> Vec<&str> {
    let team = &c.namespaces[ns].team;
    c.namespaces
        .iter()
        .filter(|n| &n.team == team)
        .map(|n| n.name.as_str())
        .collect()
}

fn principals_of(ns: &str, tier: Tier) -> Vec<String> {
    (0..APPS.len())
        .filter(|&a| APPS[a].1 == tier)
        .map(|a| principal(ns, a))
        .collect()
}

fn frontend_allow(out: &mut String, c: &Cluster, ns: usize) {
    let name = &c.namespaces[ns].name;
    header(out, name, "frontend-allow", &[]);
    selector(out, "tier", "frontend");
    yl!(out, "  action: ALLOW");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        namespaces: {}", flow(&team_namespaces(c, ns)));
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        methods: [\"GET\", \"HEAD\", \"POST\"]");
    yl!(out, "        paths: [\"/\", \"/api/*\", \"/static/*\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        ipBlocks: [\"192.168.0.0/16\"]");
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        methods: [\"GET\"]");
    yl!(out, "        paths: [\"/\", \"/static/*\", \"/api/v1/*\"]");
    yl!(out, "    when:");
    yl!(out, "    - key: request.headers[x-forwarded-proto]");
    yl!(out, "      values: [\"https\"]");
}

fn backend_allow(out: &mut String, c: &Cluster, ns: usize, rng: &mut Rng) {
    let n = &c.namespaces[ns];
    header(out, &n.name, "backend-allow", &[]);
    selector(out, "tier", "backend");
    yl!(out, "  action: ALLOW");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(
        out,
        "        principals: {}",
        flow(&principals_of(&n.name, Tier::Frontend))
    );
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(
        out,
        "        methods: [\"GET\", \"POST\", \"PUT\", \"PATCH\"]"
    );
    yl!(
        out,
        "        paths: [\"/v1/{{*}}/items\", \"/v1/orders/{{**}}\", \"/api/*\"]"
    );
    if rng.chance(50) {
        yl!(out, "    when:");
        yl!(out, "    - key: request.headers[x-tenant]");
        yl!(out, "      values: [\"tenant-*\"]");
    }
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        namespaces: [\"{}\"]", n.name);
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"9090\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    let partner = &c.namespaces[n.partner].name;
    yl!(
        out,
        "        principals: [\"{TRUST_DOMAIN}/ns/{partner}/sa/*\"]"
    );
    yl!(out, "    - source:");
    yl!(out, "        namespaces: {}", flow(&team_namespaces(c, ns)));
    yl!(out, "        notPrincipals: [\"*/sa/mailer\"]");
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"8080\", \"9090\"]");
}

fn data_allow(out: &mut String, c: &Cluster, ns: usize) {
    let name = &c.namespaces[ns].name;
    let mut clients = principals_of(name, Tier::Backend);
    clients.extend(principals_of(name, Tier::Worker));
    header(out, name, "data-allow", &[]);
    selector(out, "tier", "data");
    yl!(out, "  action: ALLOW");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        principals: {}", flow(&clients));
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"5432\", \"6379\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        namespaces: {}", flow(&team_namespaces(c, ns)));
    yl!(
        out,
        "        principals: [\"*/sa/mailer\", \"*/sa/indexer\"]"
    );
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"5432\", \"6379\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(
        out,
        "        principals: {}",
        flow(&principals_of(name, Tier::Data))
    );
}

fn deny_admin(out: &mut String, c: &Cluster, ns: usize) {
    let name = &c.namespaces[ns].name;
    header(out, name, "deny-admin-paths", &[]);
    selector(out, "tier", "frontend");
    yl!(out, "  action: DENY");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(
        out,
        "        notPrincipals: [\"{TRUST_DOMAIN}/ns/{name}/sa/gateway\"]"
    );
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        paths: [\"/admin\", \"/admin/*\"]");
}

fn deny_quarantined(out: &mut String, c: &Cluster, ns: usize, rng: &mut Rng) {
    let quarantined: Vec<&str> = (0..3)
        .map(|_| c.namespaces[rng.below(c.namespaces.len())].name.as_str())
        .collect();
    header(out, &c.namespaces[ns].name, "deny-quarantined", &[]);
    yl!(out, "  action: DENY");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        ipBlocks: [\"192.168.66.0/24\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        namespaces: {}", flow(&quarantined));
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        methods: [\"DELETE\", \"PUT\"]");
}

fn probes_and_metrics(out: &mut String, c: &Cluster, ns: usize) {
    header(out, &c.namespaces[ns].name, "allow-probes-and-metrics", &[]);
    yl!(out, "  rules:");
    yl!(out, "  - to:");
    yl!(out, "    - operation:");
    yl!(out, "        methods: [\"GET\"]");
    yl!(
        out,
        "        paths: [\"/healthz\", \"/readyz\", \"/livez\"]"
    );
    yl!(out, "    when:");
    yl!(out, "    - key: source.ip");
    yl!(out, "      values: [\"10.16.0.0/12\"]");
    yl!(out, "    - key: request.headers[user-agent]");
    yl!(out, "      values: [\"kube-probe/*\"]");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        ipBlocks: [\"{}\"]", Cluster::ns_cidr(0));
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"9100\", \"15090\"]");
    if ns.is_multiple_of(3) {
        yl!(out, "  - from:");
        yl!(out, "    - source:");
        yl!(out, "        requestPrincipals: [\"{ISSUER}/*\"]");
        yl!(out, "    to:");
        yl!(out, "    - operation:");
        yl!(out, "        paths: [\"/debug/*\"]");
        yl!(out, "    when:");
        yl!(out, "    - key: request.auth.claims[groups]");
        yl!(out, "      values: [\"sre\", \"oncall\"]");
    }
}

/// Mesh-wide policies in the root namespace; returns how many.
fn mesh_wide(out: &mut String, audit: bool) -> usize {
    header(out, ROOT_NAMESPACE, "mesh-deny-blocklist", &[]);
    yl!(out, "  action: DENY");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        remoteIpBlocks: {}", flow(&BLOCKED_REMOTE));
    header(out, ROOT_NAMESPACE, "mesh-deny-foreign-trust-domain", &[]);
    yl!(out, "  action: DENY");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        principals: [\"{FOREIGN_TD}/*\"]");
    header(out, ROOT_NAMESPACE, "mesh-allow-telemetry", &[]);
    yl!(out, "  action: ALLOW");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        namespaces: [\"ns-000\"]");
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        ports: [\"15020\", \"15090\"]");
    if !audit {
        return 3;
    }
    header(out, ROOT_NAMESPACE, "mesh-audit-admin", &[]);
    yl!(out, "  action: AUDIT");
    yl!(out, "  rules:");
    yl!(out, "  - to:");
    yl!(out, "    - operation:");
    yl!(out, "        paths: [\"/admin\", \"/admin/*\"]");
    header(
        out,
        ROOT_NAMESPACE,
        "mesh-dry-run-deny-delete",
        &[("istio.io/dry-run", "true")],
    );
    yl!(out, "  action: DENY");
    yl!(out, "  rules:");
    yl!(out, "  - from:");
    yl!(out, "    - source:");
    yl!(out, "        notNamespaces: [\"ns-000\"]");
    yl!(out, "    to:");
    yl!(out, "    - operation:");
    yl!(out, "        methods: [\"DELETE\"]");
    5
}

/// `50-peerauthentications.yaml`: mesh-wide PERMISSIVE, STRICT in every fourth
/// namespace, STRICT data tiers with a PERMISSIVE metrics port in some, DISABLE for a
/// legacy mailer in a few.
pub(super) fn peer_authentications(c: &Cluster) -> (String, usize) {
    let mut out = String::new();
    let mut n = 1;
    peer_authn(&mut out, ROOT_NAMESPACE, "default", None, "PERMISSIVE");
    for (i, ns) in c.namespaces.iter().enumerate() {
        if i.is_multiple_of(4) {
            n += 1;
            peer_authn(&mut out, &ns.name, "default", None, "STRICT");
        }
        if i % 10 == 5 {
            n += 1;
            peer_authn(
                &mut out,
                &ns.name,
                "data-strict",
                Some(("tier", "data")),
                "STRICT",
            );
            yl!(out, "  portLevelMtls:");
            yl!(out, "    9100:");
            yl!(out, "      mode: PERMISSIVE");
        }
        if i % 25 == 7 {
            n += 1;
            peer_authn(
                &mut out,
                &ns.name,
                "mailer-legacy",
                Some(("app", "mailer")),
                "DISABLE",
            );
        }
    }
    (out, n)
}

fn peer_authn(out: &mut String, ns: &str, name: &str, sel: Option<(&str, &str)>, mode: &str) {
    yl!(out, "---");
    yl!(out, "apiVersion: security.istio.io/v1");
    yl!(out, "kind: PeerAuthentication");
    metadata(out, name, ns, &[]);
    yl!(out, "spec:");
    if let Some((k, v)) = sel {
        selector(out, k, v);
    }
    yl!(out, "  mtls:");
    yl!(out, "    mode: {mode}");
}
