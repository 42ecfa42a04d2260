//! The generated cluster: a model every part of the bench shares (YAML writer, query
//! generator, report) and the YAML text the loader reads.
//!
//! Shape (defaults): 200 application namespaces (`ns-000` … `ns-199`) plus the root
//! namespace `bulkhead-system`; per namespace 10 apps × 5 replicas = 50 pods, one Service
//! per app, 10 NetworkPolicies, 5 AuthorizationPolicies; a few mesh-wide policies and
//! PeerAuthentications in the root namespace and in some namespaces.

pub(crate) mod authz;
pub(crate) mod network;
mod workloads;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::rng::Rng;

/// Appends one formatted line to a `String` (writing to a `String` cannot fail).
macro_rules! yl {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}
pub(crate) use yl;

/// The mesh's root namespace (policies there apply mesh-wide).
pub(crate) const ROOT_NAMESPACE: &str = "bulkhead-system";
/// Trust domain of every generated principal.
pub(crate) const TRUST_DOMAIN: &str = "cluster.local";

/// Role of an app, which decides the policies that select it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Frontend,
    Backend,
    Data,
    Worker,
}

impl Tier {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Tier::Frontend => "frontend",
            Tier::Backend => "backend",
            Tier::Data => "data",
            Tier::Worker => "worker",
        }
    }
}

/// The apps deployed in every namespace, with their tier.
pub(crate) const APPS: [(&str, Tier); 10] = [
    ("web", Tier::Frontend),
    ("gateway", Tier::Frontend),
    ("orders", Tier::Backend),
    ("payments", Tier::Backend),
    ("catalog", Tier::Backend),
    ("users", Tier::Backend),
    ("postgres", Tier::Data),
    ("redis", Tier::Data),
    ("mailer", Tier::Worker),
    ("indexer", Tier::Worker),
];

/// Database port of the data-tier apps (`postgres`, `redis`).
pub(crate) fn data_port(app: usize) -> u16 {
    if APPS[app].0 == "redis" { 6379 } else { 5432 }
}

/// Sizes of the generated cluster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) namespaces: usize,
    pub(crate) replicas: usize,
}

impl Shape {
    pub(crate) fn pods_per_namespace(self) -> usize {
        APPS.len() * self.replicas
    }
}

/// One application namespace.
#[derive(Debug, Clone)]
pub(crate) struct Ns {
    pub(crate) name: String,
    pub(crate) team: String,
    pub(crate) env: &'static str,
    /// Another namespace whose frontends may call one of this one's backends…
    pub(crate) partner: usize,
    /// …this one (an index into [`APPS`]).
    pub(crate) partner_app: usize,
}

/// One pod.
#[derive(Debug, Clone)]
pub(crate) struct PodInfo {
    pub(crate) ns: usize,
    pub(crate) app: usize,
    pub(crate) name: String,
    pub(crate) version: &'static str,
    pub(crate) ip: Ipv4Addr,
}

/// The cluster model.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) shape: Shape,
    pub(crate) namespaces: Vec<Ns>,
    pub(crate) pods: Vec<PodInfo>,
}

/// Pod addresses: namespace `i` owns the /26 starting at `10.16.0.0 + 64·i`.
pub(crate) const POD_BASE: u32 = u32::from_be_bytes([10, 16, 0, 0]);

impl Cluster {
    /// Builds the model for `shape` from `rng`.
    pub(crate) fn new(shape: Shape, rng: &Rng) -> Self {
        assert!(shape.pods_per_namespace() <= 64, "a namespace owns a /26");
        let mut r = rng.fork(1);
        let envs = [
            "prod", "prod", "prod", "prod", "prod", "staging", "staging", "staging", "dev", "dev",
        ];
        let namespaces = (0..shape.namespaces)
            .map(|i| Ns {
                name: format!("ns-{i:03}"),
                team: format!("team-{:02}", i % 25),
                env: envs[i % envs.len()],
                partner: (i + 1 + r.below(shape.namespaces - 1)) % shape.namespaces,
                partner_app: 2 + r.below(4),
            })
            .collect();
        let mut pods = Vec::with_capacity(shape.namespaces * shape.pods_per_namespace());
        for ns in 0..shape.namespaces {
            for (app, (app_name, _)) in APPS.iter().enumerate() {
                let hash = r.next_u64() & 0xf_ffff;
                for replica in 0..shape.replicas {
                    let slot = (app * shape.replicas + replica) as u32;
                    pods.push(PodInfo {
                        ns,
                        app,
                        name: format!("{app_name}-{hash:05x}-{replica}"),
                        version: if replica + 1 == shape.replicas {
                            "v2"
                        } else {
                            "v1"
                        },
                        ip: Ipv4Addr::from(POD_BASE + 64 * ns as u32 + slot),
                    });
                }
            }
        }
        Cluster {
            shape,
            namespaces,
            pods,
        }
    }

    /// The pods of namespace `ns` running `app`.
    pub(crate) fn pods_of(&self, ns: usize, app: usize) -> &[PodInfo] {
        let start = ns * self.shape.pods_per_namespace() + app * self.shape.replicas;
        &self.pods[start..start + self.shape.replicas]
    }

    /// The namespace's address block, e.g. `10.16.0.64/26`.
    pub(crate) fn ns_cidr(ns: usize) -> String {
        format!("{}/26", Ipv4Addr::from(POD_BASE + 64 * ns as u32))
    }
}

/// `cluster.local/ns/<ns>/sa/<app>`: every app runs as its own service account.
pub(crate) fn principal(ns: &str, app: usize) -> String {
    format!("{TRUST_DOMAIN}/ns/{ns}/sa/{}", APPS[app].0)
}

/// One generated YAML file.
#[derive(Debug, Clone)]
pub(crate) struct File {
    pub(crate) name: &'static str,
    pub(crate) text: String,
    pub(crate) documents: usize,
}

/// Counts of generated objects, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) namespaces: usize,
    pub(crate) pods: usize,
    pub(crate) services: usize,
    pub(crate) network_policies: usize,
    pub(crate) authorization_policies: usize,
    pub(crate) peer_authentications: usize,
}

/// The model and its YAML files.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub(crate) cluster: Cluster,
    pub(crate) files: Vec<File>,
    pub(crate) counts: Counts,
}

impl Generated {
    /// Total YAML bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.text.len()).sum()
    }
}

/// Generates the cluster and its YAML, deterministically from `seed`; `audit` adds the
/// mesh-wide AUDIT and dry-run policies (evaluated on every request they apply to).
pub(crate) fn generate(shape: Shape, seed: u64, audit: bool) -> Generated {
    let rng = Rng::new(seed);
    let cluster = Cluster::new(shape, &rng);
    let (namespaces, n_ns) = workloads::namespaces(&cluster);
    let (pods, n_pods) = workloads::pods(&cluster);
    let (services, n_svc) = workloads::services(&cluster);
    let (nps, n_np) = network::policies(&cluster);
    let (aps, n_ap) = authz::authorization_policies(&cluster, &mut rng.fork(3), audit);
    let (pas, n_pa) = authz::peer_authentications(&cluster);
    let file = |name, text, documents| File {
        name,
        text,
        documents,
    };
    Generated {
        counts: Counts {
            namespaces: n_ns,
            pods: n_pods,
            services: n_svc,
            network_policies: n_np,
            authorization_policies: n_ap,
            peer_authentications: n_pa,
        },
        files: vec![
            file("00-namespaces.yaml", namespaces, n_ns),
            file("10-pods.yaml", pods, n_pods),
            file("20-services.yaml", services, n_svc),
            file("30-networkpolicies.yaml", nps, n_np),
            file("40-authorizationpolicies.yaml", aps, n_ap),
            file("50-peerauthentications.yaml", pas, n_pa),
        ],
        cluster,
    }
}

/// Writes `metadata:` with a name, namespace and optional labels.
pub(crate) fn metadata(out: &mut String, name: &str, namespace: &str, labels: &[(&str, &str)]) {
    yl!(out, "metadata:");
    yl!(out, "  name: {name}");
    yl!(out, "  namespace: {namespace}");
    if !labels.is_empty() {
        yl!(out, "  labels:");
        for (k, v) in labels {
            yl!(out, "    {k}: {v}");
        }
    }
}

/// A YAML flow sequence of double-quoted strings: `["a", "b"]`.
pub(crate) fn flow<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    format!("[{}]", quoted.join(", "))
}
