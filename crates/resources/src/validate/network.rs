//! NetworkPolicy rules, as the Kubernetes API server validates them.

use bulkhead_matchers::cidr::{is_subnet_of, parse_cidr};
use ipnet::IpNet;

use super::{PORT_RANGE, Problems, label_selector, port_ref};
use crate::field::FieldPath;
use crate::kinds::core::PortRef;
use crate::kinds::network::{IpBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};

pub(super) fn validate(v: &mut Problems, np: &NetworkPolicy, spec: &FieldPath) {
    label_selector(v, &np.spec.pod_selector, &spec.key("podSelector"));
    for (i, rule) in np.spec.ingress.iter().flatten().enumerate() {
        let at = spec.key("ingress").index(i);
        peers(v, &rule.from, &at.key("from"));
        ports(v, &rule.ports, &at.key("ports"));
    }
    for (i, rule) in np.spec.egress.iter().flatten().enumerate() {
        let at = spec.key("egress").index(i);
        peers(v, &rule.to, &at.key("to"));
        ports(v, &rule.ports, &at.key("ports"));
    }
}

fn peers(v: &mut Problems, peers: &[NetworkPolicyPeer], at: &FieldPath) {
    for (i, peer) in peers.iter().enumerate() {
        let at = at.index(i);
        let selects = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
        match (&peer.ip_block, selects) {
            (Some(_), true) => v.add(
                at.key("ipBlock"),
                "ipBlock cannot be combined with podSelector or namespaceSelector in one peer; \
                 write them as separate peers",
            ),
            (None, false) => v.add(
                at.clone(),
                "a peer must set podSelector, namespaceSelector or ipBlock",
            ),
            _ => {}
        }
        if let Some(selector) = &peer.pod_selector {
            label_selector(v, selector, &at.key("podSelector"));
        }
        if let Some(selector) = &peer.namespace_selector {
            label_selector(v, selector, &at.key("namespaceSelector"));
        }
        if let Some(block) = &peer.ip_block {
            ip_block(v, block, &at.key("ipBlock"));
        }
    }
}

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "IPv4",
        IpNet::V6(_) => "IPv6",
    }
}

/// `cidr` must be a CIDR (Kubernetes requires the prefix length); every `except` a CIDR of
/// the same family strictly inside it.
fn ip_block(v: &mut Problems, block: &IpBlock, at: &FieldPath) {
    let cidr = match parse_cidr(&block.cidr, false) {
        Ok(net) => Some(net),
        Err(e) => {
            v.add(at.key("cidr"), e.to_string());
            None
        }
    };
    for (i, except) in block.except.iter().enumerate() {
        let path = at.key("except").index(i);
        let net = match parse_cidr(except, false) {
            Ok(net) => net,
            Err(e) => {
                v.add(path, e.to_string());
                continue;
            }
        };
        let Some(outer) = cidr else { continue };
        if family(&net) != family(&outer) {
            v.add(
                path,
                format!(
                    "`{except}` is {} but cidr `{}` is {}; except entries must be of the cidr's \
                     address family",
                    family(&net),
                    block.cidr,
                    family(&outer)
                ),
            );
        } else if net.prefix_len() <= outer.prefix_len() || !is_subnet_of(&net, &outer) {
            v.add(
                path,
                format!(
                    "`{except}` is not strictly inside cidr `{}`; except entries must be smaller \
                     ranges within it",
                    block.cidr
                ),
            );
        }
    }
}

fn ports(v: &mut Problems, ports: &[NetworkPolicyPort], at: &FieldPath) {
    for (i, port) in ports.iter().enumerate() {
        let at = at.index(i);
        if let Some(number) = &port.port {
            port_ref(v, number, at.key("port"));
        }
        let Some(end) = port.end_port else { continue };
        let end_at = at.key("endPort");
        match &port.port {
            _ if end == 0 => v.add(end_at, PORT_RANGE),
            None => v.add(
                end_at,
                "endPort requires a numeric port (the first port of the range)",
            ),
            Some(PortRef::Name(name)) => v.add(
                end_at,
                format!("endPort cannot be used with a named port (`{name}`); use a numeric port"),
            ),
            Some(PortRef::Number(start)) if end < *start => v.add(
                end_at,
                format!("endPort ({end}) must not be less than port ({start})"),
            ),
            Some(PortRef::Number(_)) => {}
        }
    }
}
