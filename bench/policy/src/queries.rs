//! Query workloads in the `bulkhead policy eval` JSONL contract: a weighted mix of
//! traffic scenarios over the generated cluster, some expected to be allowed and some
//! denied at each layer, from named pods and from raw peers.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::cluster::authz::{FOREIGN_TD, ISSUER};
use crate::cluster::network::DNS_IP;
use crate::cluster::{APPS, Cluster, PodInfo, TRUST_DOMAIN, Tier, data_port};
use crate::rng::Rng;

/// L4 (plain connection) or L7 (HTTP request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    L4,
    L7,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::L4 => "L4",
            Kind::L7 => "L7",
        }
    }
}

/// Context a scenario draws from.
struct Ctx<'a> {
    c: &'a Cluster,
    r: Rng,
    kind: Kind,
}

type Scenario = fn(&mut Ctx<'_>) -> Value;

/// Scenarios: weight (percent), name (also in each query's `id`), generator.
const SCENARIOS: [(u32, &str, Scenario); 13] = [
    (14, "frontend-to-backend", frontend_to_backend),
    (10, "backend-to-data", backend_to_data),
    (8, "worker-calls", worker_calls),
    (8, "team-backends", team_backends),
    (8, "partner-frontends", partner_frontends),
    (10, "random-pair", random_pair),
    (8, "load-balancer", load_balancer),
    (6, "kubelet-probe", kubelet_probe),
    (6, "metrics-scrape", metrics_scrape),
    (6, "raw-in-cluster", raw_in_cluster),
    (5, "blocked-remote", blocked_remote),
    (3, "foreign-trust-domain", foreign_trust_domain),
    (8, "egress-external", egress_external),
];

/// One generated query and the scenario it came from.
pub(crate) struct Generated {
    pub(crate) scenario: &'static str,
    pub(crate) value: Value,
}

/// `n` queries of `kind`, deterministic in `seed`.
pub(crate) fn generate(c: &Cluster, seed: u64, kind: Kind, n: usize) -> Vec<Generated> {
    let stream = match kind {
        Kind::L4 => 40,
        Kind::L7 => 70,
    };
    let mut ctx = Ctx {
        c,
        r: Rng::new(seed).fork(stream),
        kind,
    };
    let total: u32 = SCENARIOS.iter().map(|(w, _, _)| w).sum();
    (0..n)
        .map(|i| {
            let mut roll = ctx.r.below(total as usize) as u32;
            let (_, name, scenario) = *SCENARIOS
                .iter()
                .find(|(w, _, _)| {
                    let hit = roll < *w;
                    roll = roll.saturating_sub(*w);
                    hit
                })
                .unwrap_or(&SCENARIOS[0]);
            let mut value = scenario(&mut ctx);
            value["id"] = json!(format!("{}-{i:06}-{name}", kind.as_str().to_lowercase()));
            Generated {
                scenario: name,
                value,
            }
        })
        .collect()
}

impl<'a> Ctx<'a> {
    fn ns(&mut self) -> usize {
        self.r.below(self.c.namespaces.len())
    }

    fn app_of(&mut self, tier: Tier) -> usize {
        let apps: Vec<usize> = (0..APPS.len()).filter(|&a| APPS[a].1 == tier).collect();
        *self.r.pick(&apps)
    }

    fn pod(&mut self, ns: usize, app: usize) -> &'a PodInfo {
        let pods = self.c.pods_of(ns, app);
        &pods[self.r.below(pods.len())]
    }

    fn named(&mut self, ns: usize, app: usize) -> Value {
        let p = self.pod(ns, app);
        json!(format!("{}/{}", self.c.namespaces[p.ns].name, p.name))
    }

    /// A query; for L7 `http` is attached, for L4 it is dropped.
    fn query(&self, from: Value, to: Value, port: u16, http: Value) -> Value {
        let mut q = json!({"from": from, "to": to, "port": port});
        if self.kind == Kind::L7 {
            q["http"] = http;
        }
        q
    }

    fn host(&self, ns: usize, app: usize) -> String {
        format!(
            "{}.{}.svc.cluster.local",
            APPS[app].0, self.c.namespaces[ns].name
        )
    }
}

fn http(method: &str, path: &str, host: &str, headers: Value) -> Value {
    json!({"method": method, "path": path, "host": host, "headers": headers})
}

fn frontend_to_backend(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let (fa, ba) = (x.app_of(Tier::Frontend), x.app_of(Tier::Backend));
    let (from, to) = (x.named(ns, fa), x.named(ns, ba));
    let port = *x.r.pick(&[8080, 8080, 9090]);
    let method = *x.r.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE"]);
    let path = *x.r.pick(&[
        "/v1/widgets/items",
        "/v1/orders/42/lines",
        "/api/users?id=7",
        "/api/./search/../users",
        "/internal/reindex",
        "/v1/a/b/items",
    ]);
    let tenant = format!("tenant-{}", x.r.below(50));
    let headers = match x.r.below(10) {
        0..=6 => json!({"x-tenant": tenant, "user-agent": "okhttp/4.12"}),
        7 => json!({"x-tenant": "internal"}),
        _ => json!({}),
    };
    let mut q = x.query(from, to, port, http(method, path, &x.host(ns, ba), headers));
    if x.kind == Kind::L7 && x.r.chance(10) {
        q["http"]["path"] = json!("/debug/pprof/heap");
        let group = *x.r.pick(&["sre", "dev"]);
        q["jwt"] = json!({"iss": ISSUER, "sub": "alice", "aud": ["mesh"], "claims": {"groups": [group, "staff"]}});
    }
    q
}

fn backend_to_data(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let (ba, da) = (x.app_of(Tier::Backend), x.app_of(Tier::Data));
    let (from, to) = (x.named(ns, ba), x.named(ns, da));
    let port = if x.r.chance(85) { data_port(da) } else { 8080 };
    x.query(
        from,
        to,
        port,
        http("GET", "/stats", &x.host(ns, da), json!({})),
    )
}

fn worker_calls(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let wa = x.app_of(Tier::Worker);
    let from = x.named(ns, wa);
    let (to_ns, to_app) = if x.r.chance(50) {
        (ns, x.app_of(Tier::Data))
    } else {
        (ns, x.app_of(Tier::Backend))
    };
    let to = x.named(to_ns, to_app);
    let port = match APPS[to_app].1 {
        Tier::Data => data_port(to_app),
        _ => 9090,
    };
    let h = http(
        "POST",
        "/jobs.v1.Jobs/Claim",
        &x.host(to_ns, to_app),
        json!({"content-type": "application/grpc"}),
    );
    x.query(from, to, port, h)
}

fn team_backends(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let team = x.c.namespaces[ns].team.clone();
    let mates: Vec<usize> = (0..x.c.namespaces.len())
        .filter(|&i| x.c.namespaces[i].team == team)
        .collect();
    let other = *x.r.pick(&mates);
    let (a, b) = (x.app_of(Tier::Backend), x.app_of(Tier::Backend));
    let (from, to) = (x.named(ns, a), x.named(other, b));
    let h = http(
        "POST",
        "/orders.v1.Orders/Get",
        &x.host(other, b),
        json!({"content-type": "application/grpc"}),
    );
    x.query(from, to, 9090, h)
}

fn partner_frontends(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let (partner, app) = (x.c.namespaces[ns].partner, x.c.namespaces[ns].partner_app);
    let app = if x.r.chance(80) {
        app
    } else {
        x.app_of(Tier::Backend)
    };
    let fa = x.app_of(Tier::Frontend);
    let (from, to) = (x.named(partner, fa), x.named(ns, app));
    let port = *x.r.pick(&[8080, 9090]);
    let h = http(
        "GET",
        "/api/catalog/items",
        &x.host(ns, app),
        json!({"x-tenant": "tenant-3"}),
    );
    x.query(from, to, port, h)
}

fn random_pair(x: &mut Ctx<'_>) -> Value {
    let (a, b) = (x.r.below(x.c.pods.len()), x.r.below(x.c.pods.len()));
    let (pa, pb) = (&x.c.pods[a], &x.c.pods[b]);
    let from = json!(format!("{}/{}", x.c.namespaces[pa.ns].name, pa.name));
    let to = json!(format!("{}/{}", x.c.namespaces[pb.ns].name, pb.name));
    let (ns, app) = (pb.ns, pb.app);
    let port = *x.r.pick(&[8080, 9090, 5432, 6379, 9100, 22]);
    let method = *x.r.pick(&["GET", "POST", "DELETE"]);
    let h = http(method, "/admin/settings", &x.host(ns, app), json!({}));
    x.query(from, to, port, h)
}

fn lb_ip(x: &mut Ctx<'_>) -> Ipv4Addr {
    let third = if x.r.chance(10) {
        *x.r.pick(&[13u8, 66])
    } else {
        x.r.below(256) as u8
    };
    Ipv4Addr::new(192, 168, third, x.r.below(254) as u8 + 1)
}

fn load_balancer(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let fa = x.app_of(Tier::Frontend);
    let to = x.named(ns, fa);
    let ip = lb_ip(x);
    let path = *x.r.pick(&[
        "/",
        "/static/app.js",
        "/api/v1/items?page=2",
        "/admin",
        "/login",
    ]);
    let proto = *x.r.pick(&["https", "https", "https", "http"]);
    let h = http(
        "GET",
        path,
        &format!("shop-{ns}.example.com"),
        json!({"x-forwarded-proto": proto}),
    );
    x.query(json!({"ip": ip.to_string()}), to, 8080, h)
}

fn kubelet_probe(x: &mut Ctx<'_>) -> Value {
    let (ns, app) = (x.ns(), x.r.below(APPS.len()));
    let to = x.named(ns, app);
    let node = Ipv4Addr::new(10, 20, x.r.below(256) as u8, x.r.below(254) as u8 + 1);
    let path = *x.r.pick(&["/healthz", "/readyz", "/livez"]);
    let h = http(
        "GET",
        path,
        &format!("{}:8080", node),
        json!({"user-agent": "kube-probe/1.31"}),
    );
    x.query(json!({"ip": node.to_string()}), to, 8080, h)
}

fn metrics_scrape(x: &mut Ctx<'_>) -> Value {
    let (ns, app) = (x.ns(), x.r.below(APPS.len()));
    let to = x.named(ns, app);
    let scraper_app = x.app_of(Tier::Worker);
    let from = if x.r.chance(70) {
        x.named(0, scraper_app)
    } else {
        json!({"ip": x.pod(0, scraper_app).ip.to_string()})
    };
    let port = *x.r.pick(&[9100, 9100, 15090]);
    let h = http(
        "GET",
        "/metrics",
        &x.host(ns, app),
        json!({"accept": "text/plain"}),
    );
    x.query(from, to, port, h)
}

fn raw_in_cluster(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let name = x.c.namespaces[ns].name.clone();
    let job = *x.r.pick(&["nightly-export", "migrate", "mailer"]);
    let tier = *x.r.pick(&["worker", "backend"]);
    let ip = Ipv4Addr::new(10, 24, x.r.below(256) as u8, x.r.below(254) as u8 + 1);
    let from = json!({
        "ip": ip.to_string(), "namespace": name,
        "labels": {"app": job, "tier": tier},
        "principal": format!("{TRUST_DOMAIN}/ns/{name}/sa/{job}"),
    });
    let app = if x.r.chance(50) {
        x.app_of(Tier::Backend)
    } else {
        x.app_of(Tier::Data)
    };
    let to = x.named(ns, app);
    let port = if APPS[app].1 == Tier::Data {
        data_port(app)
    } else {
        9090
    };
    let h = http(
        "POST",
        "/v1/exports/items",
        &x.host(ns, app),
        json!({"x-tenant": "tenant-1"}),
    );
    x.query(from, to, port, h)
}

fn blocked_remote(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let fa = x.app_of(Tier::Frontend);
    let to = x.named(ns, fa);
    // Two of three client networks are on the mesh-wide blocklist; 100.64/10 is not.
    let [a, b, c] = *x.r.pick(&[[203, 0, 113], [198, 51, 100], [100, 64, 7]]);
    let remote = Ipv4Addr::new(a, b, c, x.r.below(254) as u8 + 1);
    let from = json!({"ip": lb_ip(x).to_string(), "remote_ip": remote.to_string()});
    let h = http(
        "GET",
        "/api/v1/items",
        &format!("shop-{ns}.example.com"),
        json!({"x-forwarded-proto": "https"}),
    );
    x.query(from, to, 8080, h)
}

fn foreign_trust_domain(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let name = x.c.namespaces[ns].name.clone();
    let from = json!({
        "ip": Ipv4Addr::new(10, 24, 9, x.r.below(254) as u8 + 1).to_string(),
        "namespace": name, "labels": {"app": "legacy", "tier": "backend"},
        "principal": format!("{FOREIGN_TD}/ns/{name}/sa/legacy"),
    });
    let ba = x.app_of(Tier::Backend);
    let to = x.named(ns, ba);
    let h = http("GET", "/v1/orders/1", &x.host(ns, ba), json!({}));
    x.query(from, to, 9090, h)
}

fn egress_external(x: &mut Ctx<'_>) -> Value {
    let ns = x.ns();
    let app = if x.r.chance(70) {
        x.app_of(Tier::Worker)
    } else {
        x.app_of(Tier::Data)
    };
    let from = x.named(ns, app);
    // DNS (UDP) only in the L4 mix: an L7 workload is HTTP throughout.
    let choice = if x.kind == Kind::L7 {
        1 + x.r.below(3)
    } else {
        x.r.below(4)
    };
    let (ip, port) = match choice {
        0 => (DNS_IP.to_string(), 53),
        1 => (
            Ipv4Addr::new(10, 200, 1, x.r.below(254) as u8 + 1).to_string(),
            443,
        ),
        _ => (
            Ipv4Addr::new(140, 82, x.r.below(256) as u8, 7).to_string(),
            *x.r.pick(&[443, 587, 25]),
        ),
    };
    let mut q = x.query(
        from,
        json!({"ip": ip}),
        port,
        http("POST", "/v3/mail/send", "api.sendgrid.com", json!({})),
    );
    if port == 53 {
        q["protocol"] = json!("UDP");
    }
    q
}
