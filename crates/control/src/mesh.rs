//! The mesh view: every stored resource and registration parsed and indexed once per
//! change, so that building one proxy's snapshot is a few lookups and copies
//! (docs/control-plane.md, "What a snapshot holds").
//!
//! The view has two halves. [`Resources`] depends only on the store revision and is
//! shared (through an `Arc`) by views that differ only in topology, so a proxy connecting
//! or going away never re-parses the resources. The registrations are re-read per view.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use bulkhead_api::proxy::Waf;
use bulkhead_resources::{
    Format, Labels, Loader, ObjectMeta, Pod, ResourceSet, ServicePort, WebApplicationFirewall,
    Workload,
};
use bulkhead_store::{NAMESPACE_KIND, ObjectKey, Registration, StoredObject};

use crate::ROOT_NAMESPACE;
use crate::error::ApiError;
use crate::proxyapi::snapshot::Prefix;
use crate::state::Shared;

/// Everything the snapshot builder reads, at one (revision, topology).
#[derive(Debug)]
pub struct MeshView {
    /// The store revision the view was built for.
    pub revision: u64,
    /// The topology counter the view was built for.
    pub topology: u64,
    resources: Arc<Resources>,
    /// Registrations by workload (`ns/name`), each list sorted by instance.
    registrations: HashMap<String, Vec<Registration>>,
}

/// A Workload or Pod, reduced to what endpoint resolution and authorization need.
#[derive(Debug)]
pub(crate) struct WorkloadInfo {
    /// `Workload` or `Pod`.
    pub(crate) kind: &'static str,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    /// `default` when the object names none.
    pub(crate) service_account: String,
    /// The fixed address (Workload `spec.address`, Pod IP), when it has one.
    pub(crate) address: Option<IpAddr>,
    /// Declared ports: name (for named target ports) and number.
    pub(crate) ports: Vec<(Option<String>, u16)>,
    /// The stored object as JSON.
    pub(crate) json: String,
}

impl WorkloadInfo {
    fn from_workload(w: &Workload, json: String) -> WorkloadInfo {
        WorkloadInfo {
            kind: "Workload",
            namespace: w.metadata.namespace_or_default().to_owned(),
            name: w.metadata.name.clone(),
            labels: w.metadata.labels.clone(),
            service_account: w.spec.service_account.clone().unwrap_or_else(default_sa),
            address: w.spec.address,
            ports: w
                .spec
                .ports
                .iter()
                .map(|p| (p.name.clone(), p.port))
                .collect(),
            json,
        }
    }

    fn from_pod(p: &Pod, json: String) -> WorkloadInfo {
        let spec = &p.spec;
        let sa = spec
            .service_account_name
            .as_ref()
            .or(spec.service_account.as_ref());
        let containers = spec.containers.iter().chain(&spec.init_containers);
        WorkloadInfo {
            kind: "Pod",
            namespace: p.metadata.namespace_or_default().to_owned(),
            name: p.metadata.name.clone(),
            labels: p.metadata.labels.clone(),
            service_account: sa.cloned().unwrap_or_else(default_sa),
            address: p
                .status
                .pod_ip
                .or_else(|| p.status.pod_ips.first().map(|i| i.ip)),
            ports: containers
                .flat_map(|c| &c.ports)
                .map(|cp| (cp.name.clone(), cp.container_port))
                .collect(),
            json,
        }
    }

    /// `ns/name`, the key registrations and proxies use.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The port number behind a named port.
    pub(crate) fn named_port(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, port)| *port)
    }
}

fn default_sa() -> String {
    "default".to_owned()
}

/// A Service: its ports and the Workloads and Pods it selects.
#[derive(Debug)]
pub(crate) struct ServiceInfo {
    pub(crate) ports: Vec<ServicePort>,
    /// Selected Workloads and Pods of the Service's namespace, sorted by key.
    pub(crate) selected: Vec<Arc<WorkloadInfo>>,
}

/// A WebApplicationFirewall and the message that ships it.
#[derive(Debug)]
struct WafEntry {
    waf: WebApplicationFirewall,
    message: Waf,
}

/// The resource half of the view: depends only on the store revision.
#[derive(Debug)]
struct Resources {
    /// The store revision the objects were read at.
    revision: u64,
    /// Declared Namespaces (JSON), sorted by name.
    namespaces: Vec<String>,
    /// Per namespace: its NetworkPolicies, AuthorizationPolicies, PeerAuthentications
    /// and Services (JSON), sorted by key.
    policies: HashMap<String, Vec<String>>,
    /// Workloads and Pods by `ns/name` (Workload first when both exist).
    workloads: HashMap<String, Vec<Arc<WorkloadInfo>>>,
    /// Workloads and Pods with a fixed address (JSON), sorted by key.
    addressed: Vec<String>,
    /// Namespaces holding a NetworkPolicy: only their proxies need the addressed
    /// workloads (NetworkPolicy peers are matched by address on the inbound path).
    netpol_namespaces: HashSet<String>,
    /// Services by `name.namespace`.
    services: HashMap<String, ServiceInfo>,
    /// The spec of each Service's TrafficPolicy (JSON, without `service`), by the
    /// Service's `name.namespace`.
    traffic_policies: HashMap<String, String>,
    /// WebApplicationFirewalls by namespace, each with its spec as shipped.
    wafs: HashMap<String, Vec<WafEntry>>,
    /// Per namespace, the digest of the part of a snapshot every proxy of the namespace
    /// shares; filled by the first proxy of the namespace that needs it.
    prefixes: HashMap<String, OnceLock<Arc<Prefix>>>,
}

impl MeshView {
    /// Builds the view from the store for the change `(revision, topology)`.
    pub fn build(shared: &Shared, revision: u64, topology: u64) -> Result<MeshView, ApiError> {
        MeshView::rebuild(shared, revision, topology, None)
    }

    /// [`MeshView::build`], reusing the parsed resources of `previous` when the store
    /// revision did not change (a topology-only change re-reads only registrations).
    pub fn rebuild(
        shared: &Shared,
        revision: u64,
        topology: u64,
        previous: Option<&MeshView>,
    ) -> Result<MeshView, ApiError> {
        let resources = match previous {
            Some(p) if p.resources.revision == revision => Arc::clone(&p.resources),
            _ => {
                let (read_at, objects) = shared.store.list(None, None)?;
                Arc::new(Resources::load(read_at, objects)?)
            }
        };
        let registrations = shared.store.registrations()?;
        Ok(MeshView::assemble(
            revision,
            topology,
            resources,
            registrations,
        ))
    }

    /// A view of the given objects and registrations (tests, tools).
    pub fn from_objects(
        revision: u64,
        topology: u64,
        objects: Vec<StoredObject>,
        registrations: Vec<Registration>,
    ) -> Result<MeshView, ApiError> {
        let resources = Arc::new(Resources::load(revision, objects)?);
        Ok(MeshView::assemble(
            revision,
            topology,
            resources,
            registrations,
        ))
    }

    fn assemble(
        revision: u64,
        topology: u64,
        resources: Arc<Resources>,
        registrations: Vec<Registration>,
    ) -> MeshView {
        let mut by_workload: HashMap<String, Vec<Registration>> = HashMap::new();
        for reg in registrations {
            by_workload
                .entry(reg.workload.clone())
                .or_default()
                .push(reg);
        }
        for regs in by_workload.values_mut() {
            regs.sort_by(|a, b| a.instance.cmp(&b.instance));
        }
        MeshView {
            revision,
            topology,
            resources,
            registrations: by_workload,
        }
    }

    /// The Workloads and Pods named `ns/name` (usually one, none when undeclared).
    pub(crate) fn workloads(&self, key: &str) -> &[Arc<WorkloadInfo>] {
        self.resources.workloads.get(key).map_or(&[], Vec::as_slice)
    }

    /// The Service `name.namespace`.
    pub(crate) fn service(&self, fqdn: &str) -> Option<&ServiceInfo> {
        self.resources.services.get(fqdn)
    }

    /// The TrafficPolicy spec (JSON) of the Service `name.namespace`, when it has one.
    pub(crate) fn traffic_policy(&self, fqdn: &str) -> Option<&str> {
        self.resources
            .traffic_policies
            .get(fqdn)
            .map(String::as_str)
    }

    /// The WebApplicationFirewall for a workload of `namespace` with `labels`, as a proxy
    /// snapshot carries it (`bulkhead_resources::waf::select` decides which).
    pub(crate) fn waf(&self, namespace: &str, labels: &Labels) -> Option<Waf> {
        let wafs = &self.resources.wafs;
        let of = |ns: &str| wafs.get(ns).map_or(&[][..], Vec::as_slice);
        let own = of(namespace);
        let root = if namespace == ROOT_NAMESPACE {
            &[][..]
        } else {
            of(ROOT_NAMESPACE)
        };
        let candidates = own.iter().chain(root);
        let chosen = bulkhead_resources::waf::select(
            candidates.clone().map(|e| &e.waf),
            namespace,
            labels,
            ROOT_NAMESPACE,
        )
        .chosen?;
        candidates
            .clone()
            .find(|e| std::ptr::eq(&e.waf, chosen))
            .map(|e| e.message.clone())
    }

    /// The registrations of workload `ns/name`, sorted by instance.
    pub(crate) fn registrations(&self, workload: &str) -> &[Registration] {
        self.registrations.get(workload).map_or(&[], Vec::as_slice)
    }

    /// One registration by instance.
    pub(crate) fn registration(&self, workload: &str, instance: &str) -> Option<&Registration> {
        self.registrations(workload)
            .iter()
            .find(|r| r.instance == instance)
    }

    /// The resources every proxy of `namespace` gets, in snapshot order: Namespaces, the
    /// root namespace's policies and Services, the namespace's, then addressed workloads.
    pub(crate) fn shared_resources<'a>(
        &'a self,
        namespace: &str,
    ) -> impl Iterator<Item = &'a str> + use<'a> {
        let r = &*self.resources;
        let of = |ns: &str| r.policies.get(ns).map_or(&[][..], Vec::as_slice);
        let own = if namespace == ROOT_NAMESPACE {
            &[][..]
        } else {
            of(namespace)
        };
        let peers = if r.netpol_namespaces.contains(namespace) {
            &r.addressed[..]
        } else {
            &[][..]
        };
        r.namespaces
            .iter()
            .chain(of(ROOT_NAMESPACE))
            .chain(own)
            .chain(peers)
            .map(String::as_str)
    }

    /// Whether proxies of `namespace` get the addressed Workloads and Pods (only when a
    /// NetworkPolicy there may need them as peers).
    pub(crate) fn ships_addressed(&self, namespace: &str) -> bool {
        self.resources.netpol_namespaces.contains(namespace)
    }

    /// The cache slot of `namespace`'s shared digest; `None` for a namespace nothing in
    /// the store mentions (such proxies digest everything themselves).
    pub(crate) fn prefix_slot(&self, namespace: &str) -> Option<&OnceLock<Arc<Prefix>>> {
        self.resources.prefixes.get(namespace)
    }
}

impl Resources {
    /// Parses and indexes the stored objects, read at store revision `revision`.
    fn load(revision: u64, objects: Vec<StoredObject>) -> Result<Resources, ApiError> {
        let mut loader = Loader::new();
        let mut texts: HashMap<ObjectKey, String> = HashMap::with_capacity(objects.len());
        for obj in objects {
            let text = serde_json::to_string(&obj.object)
                .map_err(|e| ApiError::Internal(format!("{}: cannot encode: {e}", obj.key)))?;
            // Errors are collected by `finish`, which reports them all at once.
            let _ = loader.add_str(&text, &format!("store: {}", obj.key), Format::Json);
            texts.insert(obj.key, text);
        }
        let set = loader.finish().map_err(|e| {
            ApiError::Internal(format!(
                "the stored resources do not load, although the API validated them: {e}"
            ))
        })?;
        Ok(Resources::index(revision, set, texts))
    }

    fn index(revision: u64, set: ResourceSet, texts: HashMap<ObjectKey, String>) -> Resources {
        let mut texts = Texts(texts);
        let namespaces = index_namespaces(&set, &mut texts);
        let policies = index_policies(&set, &mut texts);
        let infos = index_workloads(&set, &mut texts);
        let services = index_services(&set, &infos);
        let traffic_policies = index_traffic_policies(&set);
        let wafs = index_wafs(&set);
        let addressed = infos
            .iter()
            .filter(|w| w.address.is_some())
            .map(|w| w.json.clone())
            .collect();
        let netpol_namespaces = set
            .network_policies
            .iter()
            .map(|p| p.metadata.namespace_or_default().to_owned())
            .collect();
        let mut workloads: HashMap<String, Vec<Arc<WorkloadInfo>>> = HashMap::new();
        for info in &infos {
            let entry = workloads.entry(info.key()).or_default();
            entry.push(Arc::clone(info));
        }
        let names = set.namespaces.iter().map(|n| n.metadata.name.clone());
        let prefixes = names
            .chain([ROOT_NAMESPACE.to_owned()])
            .map(|ns| (ns, OnceLock::new()))
            .collect();
        Resources {
            revision,
            namespaces,
            policies,
            workloads,
            addressed,
            netpol_namespaces,
            services,
            traffic_policies,
            wafs,
            prefixes,
        }
    }
}

/// The JSON texts of the stored objects, handed out once each as their typed resources
/// are indexed.
struct Texts(HashMap<ObjectKey, String>);

impl Texts {
    fn take(&mut self, kind: &str, meta: &ObjectMeta) -> String {
        let namespace = (kind != NAMESPACE_KIND).then(|| meta.namespace_or_default());
        let key = ObjectKey::new(kind, namespace, meta.name.clone());
        self.0.remove(&key).unwrap_or_default()
    }
}

/// Declared Namespaces (JSON), sorted by name. Implicit ones have no stored object; the
/// proxy's loader recreates them.
fn index_namespaces(set: &ResourceSet, texts: &mut Texts) -> Vec<String> {
    let mut namespaces: Vec<(String, String)> = Vec::new();
    for ns in &set.namespaces {
        let json = texts.take(NAMESPACE_KIND, &ns.metadata);
        if !json.is_empty() {
            namespaces.push((ns.metadata.name.clone(), json));
        }
    }
    namespaces.sort();
    namespaces.into_iter().map(|(_, json)| json).collect()
}

/// Per namespace, its policies and Services (JSON), sorted by key.
fn index_policies(set: &ResourceSet, texts: &mut Texts) -> HashMap<String, Vec<String>> {
    let metas = set
        .network_policies
        .iter()
        .map(|p| ("NetworkPolicy", &p.metadata))
        .chain(
            set.authorization_policies
                .iter()
                .map(|p| ("AuthorizationPolicy", &p.metadata)),
        )
        .chain(
            set.peer_authentications
                .iter()
                .map(|p| ("PeerAuthentication", &p.metadata)),
        )
        .chain(set.services.iter().map(|s| ("Service", &s.metadata)));
    let mut policies: HashMap<String, Vec<(ObjectKey, String)>> = HashMap::new();
    for (kind, meta) in metas {
        let ns = meta.namespace_or_default();
        let key = ObjectKey::new(kind, Some(ns), meta.name.clone());
        let json = texts.take(kind, meta);
        policies.entry(ns.to_owned()).or_default().push((key, json));
    }
    policies
        .into_iter()
        .map(|(ns, mut list)| {
            list.sort_by(|a, b| a.0.cmp(&b.0));
            (ns, list.into_iter().map(|(_, json)| json).collect())
        })
        .collect()
}

/// Workloads and Pods, sorted by key (kind, namespace, name): the order addressed objects
/// take in snapshots.
fn index_workloads(set: &ResourceSet, texts: &mut Texts) -> Vec<Arc<WorkloadInfo>> {
    let mut infos: Vec<WorkloadInfo> = Vec::new();
    for w in &set.workloads {
        let json = texts.take("Workload", &w.metadata);
        infos.push(WorkloadInfo::from_workload(w, json));
    }
    for p in &set.pods {
        infos.push(WorkloadInfo::from_pod(p, texts.take("Pod", &p.metadata)));
    }
    infos.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    infos.into_iter().map(Arc::new).collect()
}

/// Services by `name.namespace`, each with the workloads it selects.
fn index_services(set: &ResourceSet, infos: &[Arc<WorkloadInfo>]) -> HashMap<String, ServiceInfo> {
    // Candidates by one (namespace, label, value): a Service's first selector pair narrows
    // the search, so indexing is linear in labels rather than services × workloads.
    let mut by_label: HashMap<(&str, &str, &str), Vec<&Arc<WorkloadInfo>>> = HashMap::new();
    for info in infos {
        for (k, v) in &info.labels {
            by_label
                .entry((info.namespace.as_str(), k.as_str(), v.as_str()))
                .or_default()
                .push(info);
        }
    }
    let mut services = HashMap::with_capacity(set.services.len());
    for svc in &set.services {
        let ns = svc.metadata.namespace_or_default();
        let selector = &svc.spec.selector;
        // As in Kubernetes, a Service without a selector gets no endpoints of its own.
        let selected = match selector.iter().next() {
            None => Vec::new(),
            Some((k, v)) => by_label
                .get(&(ns, k.as_str(), v.as_str()))
                .into_iter()
                .flatten()
                .filter(|w| selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
                .map(|w| Arc::clone(w))
                .collect(),
        };
        let info = ServiceInfo {
            ports: svc.spec.ports.clone(),
            selected,
        };
        services.insert(format!("{}.{ns}", svc.metadata.name), info);
    }
    services
}

/// TrafficPolicy specs (JSON, without `service`) by the `name.namespace` of their Service;
/// the loader has made sure a Service has at most one.
fn index_traffic_policies(set: &ResourceSet) -> HashMap<String, String> {
    let mut policies = HashMap::with_capacity(set.traffic_policies.len());
    for tp in &set.traffic_policies {
        let ns = tp.metadata.namespace_or_default();
        // Plain data with string keys: encoding cannot fail.
        let json = serde_json::to_string(&tp.spec.policy()).unwrap_or_default();
        policies.insert(format!("{}.{ns}", tp.spec.service), json);
    }
    policies
}

/// WebApplicationFirewalls by namespace, each with the message that ships it; logs the
/// workloads that more than one selects alike (the first by name applies to them).
fn index_wafs(set: &ResourceSet) -> HashMap<String, Vec<WafEntry>> {
    for warning in bulkhead_resources::waf::conflicts(set, ROOT_NAMESPACE) {
        tracing::warn!(%warning, "WebApplicationFirewalls overlap");
    }
    let mut wafs: HashMap<String, Vec<WafEntry>> = HashMap::new();
    for waf in &set.web_application_firewalls {
        let ns = waf.metadata.namespace_or_default().to_owned();
        // Plain data with string keys: encoding cannot fail.
        let spec_json = serde_json::to_string(&waf.spec.waf()).unwrap_or_default();
        let message = Waf {
            name: bulkhead_resources::waf::waf_name(waf),
            spec_json,
        };
        let entry = WafEntry {
            waf: waf.clone(),
            message,
        };
        wafs.entry(ns).or_default().push(entry);
    }
    wafs
}
