//! Compilation: resources → indexed engine.

use std::collections::HashMap;
use std::net::IpAddr;

use bulkhead_resources::{Action, Labels, MtlsMode, Protocol, ResourceSet, Service};

use crate::PolicyError;
use crate::authn::{CompiledPeerAuthn, ResolvedMtls};
use crate::authz::{ApId, CompiledAuthz};
use crate::labels::{Interner, LabelSet};
use crate::network::{CompiledNetworkPolicy, NpId};
use crate::request::EndpointId;
use crate::trust::TrustDomains;

/// Mesh-wide settings that change how policies read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The local trust domain (`cluster.local` by default).
    pub trust_domain: String,
    /// Other trust domains treated as the local one.
    pub trust_domain_aliases: Vec<String>,
    /// Namespace whose policies apply mesh-wide (`bulkhead-system` by default).
    pub root_namespace: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            root_namespace: "bulkhead-system".into(),
        }
    }
}

/// A Pod or Workload with everything evaluation needs precomputed.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) key: String,
    pub(crate) namespace: u32,
    pub(crate) labels: LabelSet,
    pub(crate) principal: String,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) ports: Vec<(Option<String>, u16, Protocol)>,
    /// NetworkPolicies isolating this endpoint, sorted by name.
    pub(crate) ingress: Vec<NpId>,
    pub(crate) egress: Vec<NpId>,
    pub(crate) authz: EndpointAuthz,
    pub(crate) mtls: ResolvedMtls,
}

impl Endpoint {
    /// The port number behind a named port of this endpoint, for `protocol`.
    pub(crate) fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, _, p)| n.as_deref() == Some(name) && *p == protocol)
            .map(|(_, port, _)| *port)
    }
}

/// The AuthorizationPolicies that apply to one endpoint, by role, each sorted by name.
#[derive(Debug, Default)]
pub(crate) struct EndpointAuthz {
    pub(crate) deny: Vec<ApId>,
    pub(crate) allow: Vec<ApId>,
    pub(crate) audit: Vec<ApId>,
    pub(crate) dry_run: Vec<ApId>,
}

/// Compiled policy for a whole set of resources; cheap to query from many threads.
#[derive(Debug)]
pub struct Engine {
    pub(crate) options: Options,
    pub(crate) trust: TrustDomains,
    pub(crate) interner: Interner,
    pub(crate) namespace_ids: HashMap<String, u32>,
    pub(crate) namespace_labels: Vec<LabelSet>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) by_name: HashMap<String, EndpointId>,
    pub(crate) by_ip: HashMap<IpAddr, EndpointId>,
    pub(crate) network: Vec<CompiledNetworkPolicy>,
    /// NetworkPolicies per namespace, for peers described only by namespace and labels.
    pub(crate) network_by_ns: Vec<Vec<NpId>>,
    pub(crate) authz: Vec<CompiledAuthz>,
    /// AuthorizationPolicies per namespace, so that attaching them to endpoints looks only
    /// at the endpoint's namespace and the root namespace.
    authz_by_ns: Vec<Vec<ApId>>,
    pub(crate) authn: Vec<CompiledPeerAuthn>,
}

/// Endpoint facts gathered from a Pod or Workload before indexing.
struct RawEndpoint<'a> {
    namespace: &'a str,
    name: &'a str,
    labels: &'a Labels,
    service_account: &'a str,
    ips: Vec<IpAddr>,
    ports: Vec<(Option<String>, u16, Protocol)>,
}

impl Engine {
    /// Compiles a validated resource set.
    pub fn compile(resources: &ResourceSet, options: Options) -> Result<Engine, PolicyError> {
        let trust = TrustDomains::new(&options.trust_domain, &options.trust_domain_aliases);
        let mut engine = Engine {
            trust,
            interner: Interner::default(),
            namespace_ids: HashMap::new(),
            namespace_labels: Vec::new(),
            endpoints: Vec::new(),
            by_name: HashMap::new(),
            by_ip: HashMap::new(),
            network: Vec::new(),
            network_by_ns: Vec::new(),
            authz: Vec::new(),
            authz_by_ns: Vec::new(),
            authn: Vec::new(),
            options,
        };
        engine.compile_namespaces(resources);
        engine.compile_policies(resources)?;
        engine.compile_endpoints(resources)?;
        Ok(engine)
    }

    /// The options the engine was compiled with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Looks up a Pod or Workload by `namespace/name`.
    pub fn endpoint(&self, key: &str) -> Option<EndpointId> {
        self.by_name.get(key).copied()
    }

    /// Looks up the Pod or Workload that owns `ip`.
    pub fn endpoint_by_ip(&self, ip: IpAddr) -> Option<EndpointId> {
        self.by_ip.get(&ip).copied()
    }

    /// The `namespace/name` of an endpoint.
    pub fn endpoint_name(&self, id: EndpointId) -> &str {
        &self.endpoints[id.0 as usize].key
    }

    /// The mTLS principal of an endpoint (`td/ns/x/sa/y`).
    pub fn endpoint_principal(&self, id: EndpointId) -> &str {
        &self.endpoints[id.0 as usize].principal
    }

    /// The effective mutual TLS mode of an endpoint's port and the PeerAuthentication that
    /// set it (`None`: the built-in PERMISSIVE default). The sidecar uses it to decide
    /// whether an inbound port also accepts plaintext.
    pub fn mtls_mode(&self, id: EndpointId, port: u16) -> (MtlsMode, Option<&str>) {
        let (mode, by) = self.ep(id).mtls.mode(port);
        (mode, by.map(|i| self.authn[i as usize].name.as_str()))
    }

    /// Number of compiled policies of each layer: (network, authentication, authorization).
    pub fn policy_counts(&self) -> (usize, usize, usize) {
        (self.network.len(), self.authn.len(), self.authz.len())
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    pub(crate) fn ep(&self, id: EndpointId) -> &Endpoint {
        &self.endpoints[id.0 as usize]
    }

    fn namespace_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.namespace_ids.get(name) {
            return id;
        }
        let id = self.namespace_labels.len() as u32;
        let mut labels = Labels::new();
        labels.insert(bulkhead_resources::NAMESPACE_NAME_LABEL.into(), name.into());
        self.namespace_labels
            .push(self.interner.intern_labels(&labels));
        self.network_by_ns.push(Vec::new());
        self.authz_by_ns.push(Vec::new());
        self.namespace_ids.insert(name.to_owned(), id);
        id
    }

    fn compile_namespaces(&mut self, resources: &ResourceSet) {
        for ns in &resources.namespaces {
            let id = self.namespace_id(&ns.metadata.name);
            let mut labels = ns.metadata.labels.clone();
            labels
                .entry(bulkhead_resources::NAMESPACE_NAME_LABEL.into())
                .or_insert_with(|| ns.metadata.name.clone());
            self.namespace_labels[id as usize] = self.interner.intern_labels(&labels);
        }
    }

    fn compile_policies(&mut self, resources: &ResourceSet) -> Result<(), PolicyError> {
        let mut nps: Vec<_> = resources.network_policies.iter().collect();
        nps.sort_by_cached_key(|p| ns_name(&p.metadata));
        for np in nps {
            let ns = self.namespace_id(np.metadata.namespace_or_default());
            let compiled = CompiledNetworkPolicy::compile(np, ns, &mut self.interner)?;
            self.network_by_ns[ns as usize].push(self.network.len() as NpId);
            self.network.push(compiled);
        }
        let mut pas: Vec<_> = resources.peer_authentications.iter().collect();
        pas.sort_by_cached_key(|p| ns_name(&p.metadata));
        for pa in pas {
            let ns = self.namespace_id(pa.metadata.namespace_or_default());
            self.authn
                .push(CompiledPeerAuthn::compile(pa, ns, &mut self.interner));
        }
        let mut aps: Vec<_> = resources.authorization_policies.iter().collect();
        aps.sort_by_cached_key(|p| ns_name(&p.metadata));
        let mut services: HashMap<&str, Vec<&Service>> = HashMap::new();
        for svc in &resources.services {
            let ns = svc.metadata.namespace_or_default();
            services.entry(ns).or_default().push(svc);
        }
        for ap in aps {
            let ns_name = ap.metadata.namespace_or_default();
            let ns = self.namespace_id(ns_name);
            let in_ns = services.get(ns_name).map_or(&[][..], Vec::as_slice);
            let compiled = CompiledAuthz::compile(ap, in_ns, &mut self.interner, &self.trust)?;
            self.authz_by_ns[ns as usize].push(self.authz.len() as ApId);
            self.authz.push(compiled);
        }
        Ok(())
    }

    fn compile_endpoints(&mut self, resources: &ResourceSet) -> Result<(), PolicyError> {
        let raws = resources
            .pods
            .iter()
            .map(|p| RawEndpoint {
                namespace: p.metadata.namespace_or_default(),
                name: &p.metadata.name,
                labels: &p.metadata.labels,
                service_account: p
                    .spec
                    .service_account_name
                    .as_deref()
                    .or(p.spec.service_account.as_deref())
                    .unwrap_or("default"),
                ips: p
                    .status
                    .pod_ip
                    .into_iter()
                    .chain(p.status.pod_ips.iter().map(|i| i.ip))
                    .collect(),
                ports: p
                    .spec
                    .containers
                    .iter()
                    .chain(&p.spec.init_containers)
                    .flat_map(|c| &c.ports)
                    .map(|cp| (cp.name.clone(), cp.container_port, cp.protocol))
                    .collect(),
            })
            .chain(resources.workloads.iter().map(|w| {
                RawEndpoint {
                    namespace: w.metadata.namespace_or_default(),
                    name: &w.metadata.name,
                    labels: &w.metadata.labels,
                    service_account: w.spec.service_account.as_deref().unwrap_or("default"),
                    ips: w.spec.address.into_iter().collect(),
                    ports: w
                        .spec
                        .ports
                        .iter()
                        .map(|p| (p.name.clone(), p.port, p.protocol))
                        .collect(),
                }
            }));
        for raw in raws.collect::<Vec<_>>() {
            self.add_endpoint(raw)?;
        }
        Ok(())
    }

    fn add_endpoint(&mut self, raw: RawEndpoint<'_>) -> Result<(), PolicyError> {
        let key = format!("{}/{}", raw.namespace, raw.name);
        let id = EndpointId(self.endpoints.len() as u32);
        if self.by_name.insert(key.clone(), id).is_some() {
            return Err(PolicyError::DuplicateEndpoint(key));
        }
        for ip in &raw.ips {
            self.by_ip.entry(*ip).or_insert(id);
        }
        let namespace = self.namespace_id(raw.namespace);
        let labels = self.interner.intern_labels(raw.labels);
        let (ingress, egress) = self.isolating(namespace, &labels);
        let root = self
            .namespace_ids
            .get(&self.options.root_namespace)
            .copied();
        let endpoint = Endpoint {
            principal: format!(
                "{}/ns/{}/sa/{}",
                self.trust.local(),
                raw.namespace,
                raw.service_account
            ),
            ip: raw.ips.first().copied(),
            ports: raw.ports,
            authz: self.applicable_authz(namespace, &labels, root),
            mtls: ResolvedMtls::resolve(&self.authn, namespace, &labels, root),
            ingress,
            egress,
            labels,
            namespace,
            key,
        };
        self.endpoints.push(endpoint);
        Ok(())
    }

    /// The NetworkPolicies that select a pod, split by the direction they isolate.
    pub(crate) fn isolating(&self, ns: u32, labels: &LabelSet) -> (Vec<NpId>, Vec<NpId>) {
        let mut ingress = Vec::new();
        let mut egress = Vec::new();
        for &id in &self.network_by_ns[ns as usize] {
            let np = &self.network[id as usize];
            if !np.selector.matches(labels) {
                continue;
            }
            if np.ingress.is_some() {
                ingress.push(id);
            }
            if np.egress.is_some() {
                egress.push(id);
            }
        }
        (ingress, egress)
    }

    fn applicable_authz(&self, ns: u32, labels: &LabelSet, root: Option<u32>) -> EndpointAuthz {
        let mut out = EndpointAuthz::default();
        let mut ids = self.authz_by_ns[ns as usize].clone();
        if let Some(root) = root.filter(|&r| r != ns) {
            ids.extend(&self.authz_by_ns[root as usize]);
        }
        // Ids follow the policies' `namespace/name` order, so each list comes out sorted.
        ids.sort_unstable();
        for i in ids {
            let ap = &self.authz[i as usize];
            if !ap.selects(labels) {
                continue;
            }
            let list = match (ap.dry_run, ap.action) {
                (true, _) => &mut out.dry_run,
                (false, Action::Deny) => &mut out.deny,
                (false, Action::Audit) => &mut out.audit,
                (false, _) => &mut out.allow,
            };
            list.push(i);
        }
        out
    }
}

fn ns_name(meta: &bulkhead_resources::ObjectMeta) -> (String, String) {
    (meta.namespace_or_default().to_owned(), meta.name.clone())
}
