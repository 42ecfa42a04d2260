//! Evaluation: network → authentication → authorization, first deny wins.

use std::borrow::Cow;
use std::net::IpAddr;

use bulkhead_matchers::path::normalize_path;
use bulkhead_resources::{Labels, MtlsMode, NAMESPACE_NAME_LABEL, Protocol};

use crate::authz::{Attrs, HttpAttrs};
use crate::decision::{Decision, Direction, Layer, PolicyHit, Reason};
use crate::engine::{Endpoint, Engine};
use crate::labels::LabelSet;
use crate::network::{NetPeer, NpId, PodView};
use crate::request::{Destination, Request, Source};
use crate::trust::principal_namespace;

/// The source as every layer sees it, resolved once per evaluation.
pub(crate) struct ResolvedSource<'a> {
    /// The declared endpoint, when the source is (or has the address of) one.
    pub(crate) endpoint: Option<&'a Endpoint>,
    /// Namespace and labels for selectors, when the source is a pod.
    pub(crate) pod: Option<SourcePod<'a>>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) remote_ip: Option<IpAddr>,
    /// The principal the source would present over mTLS.
    pub(crate) principal: Option<&'a str>,
}

/// The peers of one connection as the network layer sees them.
pub(crate) struct NetView<'e, 's> {
    /// The endpoint that owns the destination address (its named ports resolve `port: name`).
    pub(crate) dst: Option<&'e Endpoint>,
    /// The destination is a declared endpoint (so its ingress and later layers apply).
    internal: bool,
    pub(crate) dst_peer: NetPeer<'e>,
    pub(crate) src_peer: NetPeer<'s>,
}

impl<'e> NetView<'e, '_> {
    /// The destination endpoint when the connection stays inside the mesh.
    pub(crate) fn internal_destination(&self) -> Option<&'e Endpoint> {
        self.dst.filter(|_| self.internal)
    }

    /// The destination's port number behind a named port.
    pub(crate) fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.dst.and_then(|e| e.named_port(name, protocol))
    }
}

/// What the network layer hands on.
enum NetworkOutcome<'e> {
    /// Allowed so far; the destination endpoint for the next layers.
    Continue(&'e Endpoint),
    /// The network layer decided.
    Decided(Decision<'e>),
}

/// A source pod's namespace and labels; owned when described only by a query.
pub(crate) struct SourcePod<'a> {
    pub(crate) namespace: u32,
    pub(crate) namespace_labels: Cow<'a, LabelSet>,
    pub(crate) labels: Cow<'a, LabelSet>,
}

impl SourcePod<'_> {
    pub(crate) fn view(&self) -> PodView<'_> {
        PodView {
            namespace: self.namespace,
            namespace_labels: &self.namespace_labels,
            labels: &self.labels,
        }
    }
}

impl Engine {
    /// How a declared endpoint looks to selectors.
    pub(crate) fn pod_view<'a>(&'a self, ep: &'a Endpoint) -> PodView<'a> {
        PodView {
            namespace: ep.namespace,
            namespace_labels: &self.namespace_labels[ep.namespace as usize],
            labels: &ep.labels,
        }
    }

    fn declared_pod<'a>(&'a self, ep: &'a Endpoint) -> SourcePod<'a> {
        SourcePod {
            namespace: ep.namespace,
            namespace_labels: Cow::Borrowed(&self.namespace_labels[ep.namespace as usize]),
            labels: Cow::Borrowed(&ep.labels),
        }
    }

    /// A pod described only by namespace and labels; a namespace the resources never
    /// mention still carries its `kubernetes.io/metadata.name` label.
    fn described_pod<'a>(&'a self, ns: &str, labels: Option<&Labels>) -> SourcePod<'a> {
        let labels = Cow::Owned(
            labels
                .map(|l| self.interner.lookup_labels(l))
                .unwrap_or_default(),
        );
        match self.namespace_ids.get(ns) {
            Some(&id) => SourcePod {
                namespace: id,
                namespace_labels: Cow::Borrowed(&self.namespace_labels[id as usize]),
                labels,
            },
            None => {
                let mut ns_labels = Labels::new();
                ns_labels.insert(NAMESPACE_NAME_LABEL.into(), ns.into());
                SourcePod {
                    namespace: u32::MAX,
                    namespace_labels: Cow::Owned(self.interner.lookup_labels(&ns_labels)),
                    labels,
                }
            }
        }
    }

    /// Decides one connection or request.
    pub fn evaluate<'e>(&'e self, req: &Request<'_>) -> Decision<'e> {
        let src = self.resolve_source(req);
        let dst = match self.check_network(req, &src) {
            NetworkOutcome::Continue(dst) => dst,
            NetworkOutcome::Decided(decision) => return decision,
        };
        let (mode, mode_policy) = dst.mtls.mode(req.port);
        let principal = match mode {
            MtlsMode::Disable => None,
            _ => src.principal,
        };
        if principal.is_none() && mode == MtlsMode::Strict {
            let d = Decision::new(
                false,
                Layer::Authentication,
                Reason::PlaintextRejected {
                    mode,
                    port: req.port,
                },
            );
            return match mode_policy {
                Some(i) => d.by(&self.authn[i as usize].name, None),
                None => d,
            };
        }
        self.authorize(req, &src, dst, principal)
    }

    pub(crate) fn resolve_source<'a>(&'a self, req: &Request<'a>) -> ResolvedSource<'a> {
        match req.source {
            Source::Endpoint(id) => {
                let ep = self.ep(id);
                ResolvedSource {
                    endpoint: Some(ep),
                    pod: Some(self.declared_pod(ep)),
                    ip: ep.ip,
                    remote_ip: ep.ip,
                    principal: Some(&ep.principal),
                }
            }
            Source::Raw(raw) => {
                let known = match (raw.namespace, raw.ip) {
                    (None, Some(ip)) => self.endpoint_by_ip(ip).map(|id| self.ep(id)),
                    _ => None,
                };
                let pod = match (raw.namespace, known) {
                    (Some(ns), _) => Some(self.described_pod(ns, raw.labels)),
                    (None, Some(ep)) => Some(self.declared_pod(ep)),
                    (None, None) => None,
                };
                ResolvedSource {
                    endpoint: known,
                    pod,
                    ip: raw.ip,
                    remote_ip: raw.remote_ip.or(raw.ip),
                    principal: raw.principal,
                }
            }
        }
    }

    /// The egress policies isolating the source.
    pub(crate) fn source_egress<'a>(&'a self, src: &ResolvedSource<'a>) -> Cow<'a, [NpId]> {
        match (src.endpoint, &src.pod) {
            (Some(ep), _) => Cow::Borrowed(&ep.egress),
            (None, Some(pod)) if (pod.namespace as usize) < self.network_by_ns.len() => {
                Cow::Owned(self.isolating(pod.namespace, &pod.labels).1)
            }
            _ => Cow::Borrowed(&[]),
        }
    }

    /// The network layer: the decision when it decides (a deny, or an allow to a destination
    /// outside the mesh), else the destination endpoint for the next layers.
    fn check_network<'e>(
        &'e self,
        req: &Request<'_>,
        src: &ResolvedSource<'_>,
    ) -> NetworkOutcome<'e> {
        let view = self.net_view(req, src);
        let (dst_peer, src_peer) = (view.dst_peer, view.src_peer);
        let named = |name: &str, proto: Protocol| view.named_port(name, proto);
        let egress = self.source_egress(src);
        let mut allowed_by = None;
        if !egress.is_empty() {
            allowed_by = self.any_rule_allows(&egress, Direction::Egress, &dst_peer, req, &named);
            if allowed_by.is_none() {
                return NetworkOutcome::Decided(self.network_deny(&egress, Direction::Egress, req));
            }
        }
        let Some(dst) = view.internal_destination() else {
            let d = Decision::new(true, Layer::Network, Reason::ExternalAllowed);
            return NetworkOutcome::Decided(match allowed_by {
                Some((id, rule)) => d.by(&self.network[id as usize].name, Some(rule)),
                None => d,
            });
        };
        if !dst.ingress.is_empty()
            && self
                .any_rule_allows(&dst.ingress, Direction::Ingress, &src_peer, req, &named)
                .is_none()
        {
            return NetworkOutcome::Decided(self.network_deny(
                &dst.ingress,
                Direction::Ingress,
                req,
            ));
        }
        NetworkOutcome::Continue(dst)
    }

    /// Both peers as the network layer sees them.
    pub(crate) fn net_view<'e, 's>(
        &'e self,
        req: &Request<'_>,
        src: &'s ResolvedSource<'_>,
    ) -> NetView<'e, 's> {
        let (dst, dst_ip) = match req.destination {
            Destination::Endpoint(id) => (Some(self.ep(id)), self.ep(id).ip),
            Destination::External(ip) => (self.endpoint_by_ip(ip).map(|id| self.ep(id)), Some(ip)),
        };
        NetView {
            dst,
            internal: matches!(req.destination, Destination::Endpoint(_)),
            dst_peer: NetPeer {
                pod: dst.map(|e| self.pod_view(e)),
                ip: dst_ip,
            },
            src_peer: NetPeer {
                pod: src.pod.as_ref().map(SourcePod::view),
                ip: src.ip,
            },
        }
    }

    pub(crate) fn any_rule_allows(
        &self,
        policies: &[NpId],
        direction: Direction,
        peer: &NetPeer<'_>,
        req: &Request<'_>,
        named: &dyn Fn(&str, Protocol) -> Option<u16>,
    ) -> Option<(NpId, usize)> {
        policies.iter().find_map(|&id| {
            let np = &self.network[id as usize];
            let rules = np.rules(direction).unwrap_or_default();
            rules
                .iter()
                .position(|r| {
                    r.check(np.namespace, peer, req.protocol, req.port, named)
                        .is_ok()
                })
                .map(|rule| (id, rule))
        })
    }

    fn network_deny<'e>(
        &'e self,
        policies: &[NpId],
        direction: Direction,
        req: &Request<'_>,
    ) -> Decision<'e> {
        let names: Vec<&str> = policies
            .iter()
            .map(|&i| self.network[i as usize].name.as_str())
            .collect();
        let mut d = Decision::new(
            false,
            Layer::Network,
            Reason::NetworkNotAllowed {
                direction,
                policies: names.len(),
                protocol: req.protocol,
                port: req.port,
            },
        )
        .by(names[0], None);
        d.considered = names;
        d
    }

    /// Builds the attributes authorization reads; `Err` when the path cannot be normalized.
    pub(crate) fn with_attrs<R>(
        &self,
        req: &Request<'_>,
        src: &ResolvedSource<'_>,
        dst: &Endpoint,
        principal: Option<&str>,
        f: impl FnOnce(&Attrs<'_>) -> R,
    ) -> Result<R, String> {
        let path = match req.http {
            Some(h) => Some(normalize_path(&h.path).map_err(|e| e.to_string())?),
            None => None,
        };
        let request_principal = req.jwt.and_then(|j| j.principal());
        let attrs = Attrs {
            principal,
            source_namespace: principal.and_then(principal_namespace),
            source_ip: src.ip,
            remote_ip: src.remote_ip,
            destination_ip: dst.ip,
            port: req.port,
            sni: req.sni,
            http: req.http.map(|h| HttpAttrs {
                request: h,
                path: path.as_deref().unwrap_or("/"),
                jwt: req.jwt,
                request_principal: request_principal.as_deref(),
            }),
        };
        Ok(f(&attrs))
    }

    fn authorize<'e>(
        &'e self,
        req: &Request<'_>,
        src: &ResolvedSource<'_>,
        dst: &'e Endpoint,
        principal: Option<&str>,
    ) -> Decision<'e> {
        let result = self.with_attrs(req, src, dst, principal, |a| self.decide_authz(dst, a));
        result
            .unwrap_or_else(|e| Decision::new(false, Layer::Authorization, Reason::InvalidPath(e)))
    }

    fn decide_authz<'e>(&'e self, dst: &'e Endpoint, a: &Attrs<'_>) -> Decision<'e> {
        let hits = |ids: &[u32]| -> Vec<PolicyHit<'e>> {
            ids.iter()
                .map(|&i| {
                    let p = &self.authz[i as usize];
                    let rule = p.first_match(a);
                    PolicyHit {
                        policy: &p.name,
                        action: p.action.as_str(),
                        matched: rule.is_some(),
                        rule,
                    }
                })
                .collect()
        };
        let mut d = self.enforce_authz(dst, a);
        if !dst.authz.audit.is_empty() {
            d.audit = hits(&dst.authz.audit);
        }
        if !dst.authz.dry_run.is_empty() {
            d.dry_run = hits(&dst.authz.dry_run);
        }
        d
    }

    fn enforce_authz<'e>(&'e self, dst: &'e Endpoint, a: &Attrs<'_>) -> Decision<'e> {
        for &i in &dst.authz.deny {
            let p = &self.authz[i as usize];
            if let Some(rule) = p.first_match(a) {
                return Decision::new(false, Layer::Authorization, Reason::DenyMatched)
                    .by(&p.name, Some(rule));
            }
        }
        if dst.authz.allow.is_empty() {
            return Decision::new(true, Layer::Authorization, Reason::NoAllowPolicies);
        }
        for &i in &dst.authz.allow {
            let p = &self.authz[i as usize];
            if let Some(rule) = p.first_match(a) {
                return Decision::new(true, Layer::Authorization, Reason::AllowMatched)
                    .by(&p.name, Some(rule));
            }
        }
        let names: Vec<&str> = dst
            .authz
            .allow
            .iter()
            .map(|&i| self.authz[i as usize].name.as_str())
            .collect();
        let mut d = Decision::new(
            false,
            Layer::Authorization,
            Reason::NoAllowMatched {
                policies: names.len(),
            },
        )
        .by(names[0], None);
        d.considered = names;
        d
    }
}
