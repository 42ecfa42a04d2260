//! BASELINE, not a competitor: a deliberately straightforward NetworkPolicy evaluator that
//! works on the loaded resources as they are (string labels in `BTreeMap`s, CIDRs as
//! text) and scans every NetworkPolicy for every query. It implements only the network
//! layer (podSelector / namespaceSelector / ipBlock peers, numbered, ranged and named
//! ports, ingress and egress isolation) — no authentication or authorization — so it does
//! strictly less work per query than the engine. It exists to show what the engine's
//! compile-time indexing (per-endpoint policy lists, interned labels) buys.

use std::collections::HashMap;
use std::net::IpAddr;

use bulkhead_policy::query::{PeerSpec, Query};
use bulkhead_resources::{
    Labels, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod, PortRef, Protocol,
    ResourceSet,
};

static NO_LABELS: Labels = Labels::new();

/// A peer as the baseline sees it: a pod (namespace and labels) and/or an address.
#[derive(Debug, Clone, Copy)]
struct Peer<'a> {
    pod: Option<(&'a str, &'a Labels)>,
    ip: Option<IpAddr>,
}

/// A query with names already resolved (resolution is not part of a decision).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NaiveQuery<'a> {
    src: Peer<'a>,
    dst: Peer<'a>,
    /// The destination pod, for named ports.
    dst_pod: Option<&'a Pod>,
    port: u16,
    protocol: Protocol,
}

/// The baseline evaluator.
#[derive(Debug)]
pub(crate) struct Baseline<'a> {
    policies: &'a [NetworkPolicy],
    namespaces: HashMap<&'a str, &'a Labels>,
    by_name: HashMap<String, &'a Pod>,
    by_ip: HashMap<IpAddr, &'a Pod>,
}

impl<'a> Baseline<'a> {
    pub(crate) fn new(rs: &'a ResourceSet) -> Self {
        let by_name = rs
            .pods
            .iter()
            .map(|p| {
                (
                    format!("{}/{}", p.metadata.namespace_or_default(), p.metadata.name),
                    p,
                )
            })
            .collect();
        let by_ip = rs
            .pods
            .iter()
            .filter_map(|p| Some((p.status.pod_ip?, p)))
            .collect();
        Baseline {
            policies: &rs.network_policies,
            namespaces: rs
                .namespaces
                .iter()
                .map(|n| (n.metadata.name.as_str(), &n.metadata.labels))
                .collect(),
            by_name,
            by_ip,
        }
    }

    fn pod_peer(p: &'a Pod) -> Peer<'a> {
        Peer {
            pod: Some((p.metadata.namespace_or_default(), &p.metadata.labels)),
            ip: p.status.pod_ip,
        }
    }

    /// Resolves a parsed query; `None` for a name the resources do not declare.
    pub(crate) fn resolve(&self, q: &'a Query) -> Option<NaiveQuery<'a>> {
        let src = match &q.from {
            PeerSpec::Named(n) => Self::pod_peer(self.by_name.get(n.as_str())?),
            PeerSpec::Raw(raw) => match (&raw.namespace, raw.ip) {
                (Some(ns), ip) => Peer {
                    pod: Some((ns.as_str(), raw.labels.as_ref().unwrap_or(&NO_LABELS))),
                    ip,
                },
                (None, Some(ip)) => match self.by_ip.get(&ip) {
                    Some(p) => Peer {
                        ip: Some(ip),
                        ..Self::pod_peer(p)
                    },
                    None => Peer {
                        pod: None,
                        ip: Some(ip),
                    },
                },
                (None, None) => Peer {
                    pod: None,
                    ip: None,
                },
            },
        };
        let dst_pod = match &q.to {
            PeerSpec::Named(n) => Some(*self.by_name.get(n.as_str())?),
            PeerSpec::Raw(raw) => raw.ip.and_then(|ip| self.by_ip.get(&ip).copied()),
        };
        let dst = match (&q.to, dst_pod) {
            (_, Some(p)) => Self::pod_peer(p),
            (PeerSpec::Raw(raw), None) => Peer {
                pod: None,
                ip: raw.ip,
            },
            (PeerSpec::Named(_), None) => return None,
        };
        Some(NaiveQuery {
            src,
            dst,
            dst_pod,
            port: q.port,
            protocol: q.protocol,
        })
    }

    /// Whether the network layer allows the query: source egress, then destination ingress.
    pub(crate) fn allows(&self, q: &NaiveQuery<'_>) -> bool {
        let (mut egress_isolated, mut egress_ok) = (false, false);
        let (mut ingress_isolated, mut ingress_ok) = (false, false);
        for np in self.policies {
            let ns = np.metadata.namespace_or_default();
            let (isolates_in, isolates_out) = np.spec.effective_types();
            if isolates_out && self.selects(np, ns, &q.src) {
                egress_isolated = true;
                egress_ok = egress_ok
                    || np
                        .spec
                        .egress
                        .iter()
                        .flatten()
                        .any(|r| self.rule(ns, &r.to, &r.ports, &q.dst, q));
            }
            if isolates_in && q.dst_pod.is_some() && self.selects(np, ns, &q.dst) {
                ingress_isolated = true;
                ingress_ok = ingress_ok
                    || np
                        .spec
                        .ingress
                        .iter()
                        .flatten()
                        .any(|r| self.rule(ns, &r.from, &r.ports, &q.src, q));
            }
        }
        (!egress_isolated || egress_ok) && (!ingress_isolated || ingress_ok)
    }

    fn selects(&self, np: &NetworkPolicy, ns: &str, peer: &Peer<'_>) -> bool {
        peer.pod
            .is_some_and(|(pns, labels)| pns == ns && np.spec.pod_selector.matches(labels))
    }

    fn rule(
        &self,
        ns: &str,
        peers: &[NetworkPolicyPeer],
        ports: &[NetworkPolicyPort],
        peer: &Peer<'_>,
        q: &NaiveQuery<'_>,
    ) -> bool {
        (peers.is_empty() || peers.iter().any(|p| self.peer_matches(ns, p, peer)))
            && (ports.is_empty() || ports.iter().any(|p| port_matches(p, q)))
    }

    fn peer_matches(&self, ns: &str, p: &NetworkPolicyPeer, peer: &Peer<'_>) -> bool {
        if let Some(block) = &p.ip_block {
            return peer.ip.is_some_and(|ip| {
                in_cidr(ip, &block.cidr) && !block.except.iter().any(|e| in_cidr(ip, e))
            });
        }
        let Some((pns, labels)) = peer.pod else {
            return false;
        };
        let ns_ok = match &p.namespace_selector {
            None => pns == ns,
            Some(sel) => self.namespaces.get(pns).is_some_and(|l| sel.matches(l)),
        };
        ns_ok && p.pod_selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

fn port_matches(p: &NetworkPolicyPort, q: &NaiveQuery<'_>) -> bool {
    if p.protocol.unwrap_or_default() != q.protocol {
        return false;
    }
    match &p.port {
        None => true,
        Some(PortRef::Number(n)) => (*n..=p.end_port.unwrap_or(*n)).contains(&q.port),
        Some(PortRef::Name(name)) => q.dst_pod.is_some_and(|pod| {
            pod.spec.containers.iter().flat_map(|c| &c.ports).any(|cp| {
                cp.name.as_deref() == Some(name)
                    && cp.protocol == q.protocol
                    && cp.container_port == q.port
            })
        }),
    }
}

/// Whether `ip` is inside `cidr` (text form, parsed on every call as a naive evaluator
/// over the resource model would).
fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, len) = match cidr.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (cidr, None),
    };
    match (ip, net.parse::<IpAddr>()) {
        (IpAddr::V4(ip), Ok(IpAddr::V4(net))) => {
            let len = len.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), Ok(IpAddr::V6(net))) => {
            let len = len.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::in_cidr;

    #[test]
    fn cidr_membership() {
        let ip = |s: &str| s.parse().unwrap();
        assert!(in_cidr(ip("10.16.0.5"), "10.16.0.0/26"));
        assert!(!in_cidr(ip("10.16.0.64"), "10.16.0.0/26"));
        assert!(in_cidr(ip("1.2.3.4"), "0.0.0.0/0"));
        assert!(in_cidr(ip("10.96.0.10"), "10.96.0.10/32"));
        assert!(!in_cidr(ip("::1"), "0.0.0.0/0"));
    }
}
