//! Network layer: Kubernetes NetworkPolicy v1, compiled per namespace.

use std::net::IpAddr;

use bulkhead_matchers::cidr::{IpSet, parse_cidr};
use bulkhead_resources::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PortRef, Protocol};

use crate::PolicyError;
use crate::decision::Direction;
use crate::labels::{Interner, LabelSet, Selector};

/// Index of a compiled NetworkPolicy.
pub(crate) type NpId = u32;

/// A pod as selectors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodView<'a> {
    /// Namespace index (`u32::MAX` for a namespace the resources never mention).
    pub(crate) namespace: u32,
    /// The namespace's labels.
    pub(crate) namespace_labels: &'a LabelSet,
    /// The pod's labels.
    pub(crate) labels: &'a LabelSet,
}

/// How a peer looks to the network layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetPeer<'a> {
    /// Set when the peer is a pod (declared or described).
    pub(crate) pod: Option<PodView<'a>>,
    /// The peer's address.
    pub(crate) ip: Option<IpAddr>,
}

/// One compiled NetworkPolicy.
#[derive(Debug)]
pub(crate) struct CompiledNetworkPolicy {
    pub(crate) name: String,
    pub(crate) namespace: u32,
    pub(crate) selector: Selector,
    /// `Some` when the policy isolates ingress.
    pub(crate) ingress: Option<Vec<NpRule>>,
    /// `Some` when the policy isolates egress.
    pub(crate) egress: Option<Vec<NpRule>>,
}

/// One ingress or egress rule.
#[derive(Debug)]
pub(crate) struct NpRule {
    /// Empty means every peer.
    peers: Vec<NpPeer>,
    /// Empty means every port and protocol.
    ports: Vec<NpPort>,
}

#[derive(Debug)]
enum NpPeer {
    /// Pods picked by selectors; `namespaces: None` means the policy's own namespace.
    Pods {
        pods: Option<Selector>,
        namespaces: Option<Selector>,
    },
    Addresses(IpSet),
}

#[derive(Debug)]
struct NpPort {
    protocol: Protocol,
    port: PortSpec,
}

#[derive(Debug)]
enum PortSpec {
    Any,
    Range(u16, u16),
    Named(String),
}

/// Why a rule did not match, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleMiss {
    Peer,
    Port,
}

impl CompiledNetworkPolicy {
    /// Compiles `np`, whose namespace has index `namespace`.
    pub(crate) fn compile(
        np: &NetworkPolicy,
        namespace: u32,
        interner: &mut Interner,
    ) -> Result<Self, PolicyError> {
        let name = format!(
            "NetworkPolicy/{}/{}",
            np.metadata.namespace_or_default(),
            np.metadata.name
        );
        let (isolates_ingress, isolates_egress) = np.spec.effective_types();
        let compile_rules = |rules: Vec<(&[NetworkPolicyPeer], &[NetworkPolicyPort])>,
                             interner: &mut Interner| {
            rules
                .into_iter()
                .map(|(peers, ports)| NpRule::compile(peers, ports, interner, &name))
                .collect::<Result<Vec<_>, _>>()
        };
        let ingress = if isolates_ingress {
            let rules = np.spec.ingress.iter().flatten();
            Some(compile_rules(
                rules.map(|r| (&r.from[..], &r.ports[..])).collect(),
                interner,
            )?)
        } else {
            None
        };
        let egress = if isolates_egress {
            let rules = np.spec.egress.iter().flatten();
            Some(compile_rules(
                rules.map(|r| (&r.to[..], &r.ports[..])).collect(),
                interner,
            )?)
        } else {
            None
        };
        Ok(CompiledNetworkPolicy {
            selector: Selector::compile(&np.spec.pod_selector, interner),
            name,
            namespace,
            ingress,
            egress,
        })
    }

    /// The rules of one direction, if the policy isolates it.
    pub(crate) fn rules(&self, direction: Direction) -> Option<&[NpRule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

impl NpRule {
    fn compile(
        peers: &[NetworkPolicyPeer],
        ports: &[NetworkPolicyPort],
        interner: &mut Interner,
        policy: &str,
    ) -> Result<Self, PolicyError> {
        let peers = peers
            .iter()
            .map(|p| NpPeer::compile(p, interner, policy))
            .collect::<Result<_, _>>()?;
        let ports = ports.iter().map(NpPort::compile).collect();
        Ok(NpRule { peers, ports })
    }

    /// Whether this rule admits `peer` on `protocol/port`; the destination's named ports
    /// come from `named`.
    pub(crate) fn check(
        &self,
        policy_ns: u32,
        peer: &NetPeer<'_>,
        protocol: Protocol,
        port: u16,
        named: &dyn Fn(&str, Protocol) -> Option<u16>,
    ) -> Result<(), RuleMiss> {
        let peer_ok =
            self.peers.is_empty() || self.peers.iter().any(|p| p.matches(policy_ns, peer));
        if !peer_ok {
            return Err(RuleMiss::Peer);
        }
        let port_ok =
            self.ports.is_empty() || self.ports.iter().any(|p| p.matches(protocol, port, named));
        if !port_ok {
            return Err(RuleMiss::Port);
        }
        Ok(())
    }
}

impl NpPeer {
    fn compile(
        peer: &NetworkPolicyPeer,
        interner: &mut Interner,
        policy: &str,
    ) -> Result<Self, PolicyError> {
        if let Some(block) = &peer.ip_block {
            let bad = |value: &str, e: &dyn std::fmt::Display| PolicyError::Invalid {
                policy: policy.to_owned(),
                message: format!("ipBlock `{value}`: {e}"),
            };
            let cidr = parse_cidr(&block.cidr, false).map_err(|e| bad(&block.cidr, &e))?;
            let except = block
                .except
                .iter()
                .map(|x| parse_cidr(x, false).map_err(|e| bad(x, &e)))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(NpPeer::Addresses(IpSet::from_blocks(&[(cidr, except)])));
        }
        Ok(NpPeer::Pods {
            pods: peer
                .pod_selector
                .as_ref()
                .map(|s| Selector::compile(s, interner)),
            namespaces: peer
                .namespace_selector
                .as_ref()
                .map(|s| Selector::compile(s, interner)),
        })
    }

    fn matches(&self, policy_ns: u32, peer: &NetPeer<'_>) -> bool {
        match self {
            NpPeer::Addresses(set) => peer.ip.is_some_and(|ip| set.contains(ip)),
            NpPeer::Pods {
                pods,
                namespaces: ns_sel,
            } => {
                let Some(pod) = peer.pod else {
                    return false;
                };
                let ns_ok = match ns_sel {
                    None => pod.namespace == policy_ns,
                    Some(sel) => sel.matches(pod.namespace_labels),
                };
                ns_ok && pods.as_ref().is_none_or(|s| s.matches(pod.labels))
            }
        }
    }
}

impl NpPort {
    fn compile(p: &NetworkPolicyPort) -> Self {
        let protocol = p.protocol.unwrap_or_default();
        let port = match (&p.port, p.end_port) {
            (None, _) => PortSpec::Any,
            (Some(PortRef::Number(n)), end) => PortSpec::Range(*n, end.unwrap_or(*n)),
            (Some(PortRef::Name(name)), _) => PortSpec::Named(name.clone()),
        };
        NpPort { protocol, port }
    }

    fn matches(
        &self,
        protocol: Protocol,
        port: u16,
        named: &dyn Fn(&str, Protocol) -> Option<u16>,
    ) -> bool {
        if self.protocol != protocol {
            return false;
        }
        match &self.port {
            PortSpec::Any => true,
            PortSpec::Range(lo, hi) => (*lo..=*hi).contains(&port),
            PortSpec::Named(name) => named(name, protocol) == Some(port),
        }
    }
}
