//! Authentication layer: the effective PeerAuthentication mode per workload and port.
//!
//! Resolved once per endpoint at compile time, so evaluation is a short scan of the
//! endpoint's port overrides.

use bulkhead_resources::{MtlsMode, PeerAuthentication};

use crate::labels::{Interner, LabelSet, Selector};

/// One compiled PeerAuthentication.
#[derive(Debug)]
pub(crate) struct CompiledPeerAuthn {
    pub(crate) name: String,
    pub(crate) namespace: u32,
    /// `None` for namespace-wide (or mesh-wide) policies.
    selector: Option<Selector>,
    mode: MtlsMode,
    ports: Vec<(u16, MtlsMode)>,
}

impl CompiledPeerAuthn {
    /// Compiles `pa`, whose namespace has index `namespace`.
    pub(crate) fn compile(
        pa: &PeerAuthentication,
        namespace: u32,
        interner: &mut Interner,
    ) -> Self {
        CompiledPeerAuthn {
            name: format!(
                "PeerAuthentication/{}/{}",
                pa.metadata.namespace_or_default(),
                pa.metadata.name
            ),
            namespace,
            selector: pa
                .spec
                .selector
                .as_ref()
                .map(|s| Selector::compile_workload(s, interner)),
            mode: pa.spec.mtls.map(|m| m.mode).unwrap_or_default(),
            ports: pa
                .spec
                .port_level_mtls
                .iter()
                .map(|(p, m)| (*p, m.mode))
                .collect(),
        }
    }
}

/// The mode in force for one endpoint: a default and per-port overrides, each with the
/// policy that set it (`None` = built-in PERMISSIVE).
#[derive(Debug, Clone)]
pub(crate) struct ResolvedMtls {
    default: (MtlsMode, Option<u32>),
    ports: Vec<(u16, MtlsMode, u32)>,
}

impl ResolvedMtls {
    /// Resolves the mode for an endpoint in namespace `ns` with `labels`. `policies` must be
    /// sorted by name so that "first" is stable; `root` is the root namespace index.
    pub(crate) fn resolve(
        policies: &[CompiledPeerAuthn],
        ns: u32,
        labels: &LabelSet,
        root: Option<u32>,
    ) -> Self {
        let find = |pred: &dyn Fn(&CompiledPeerAuthn) -> bool| {
            policies
                .iter()
                .enumerate()
                .find(|(_, p)| pred(p))
                .map(|(i, p)| (i as u32, p))
        };
        let workload =
            find(&|p| p.namespace == ns && p.selector.as_ref().is_some_and(|s| s.matches(labels)));
        let namespace = find(&|p| p.namespace == ns && p.selector.is_none());
        let mesh = root.and_then(|r| find(&|p| p.namespace == r && p.selector.is_none()));
        let default = [workload, namespace, mesh]
            .into_iter()
            .flatten()
            .find(|(_, p)| p.mode != MtlsMode::Unset)
            .map(|(i, p)| (p.mode, Some(i)))
            .unwrap_or((MtlsMode::Permissive, None));
        let ports = workload
            .map(|(i, p)| {
                p.ports
                    .iter()
                    .filter(|(_, m)| *m != MtlsMode::Unset)
                    .map(|(port, m)| (*port, *m, i))
                    .collect()
            })
            .unwrap_or_default();
        ResolvedMtls { default, ports }
    }

    /// The mode on `port` and the index of the policy that set it.
    pub(crate) fn mode(&self, port: u16) -> (MtlsMode, Option<u32>) {
        self.ports
            .iter()
            .find(|(p, _, _)| *p == port)
            .map(|(_, m, i)| (*m, Some(*i)))
            .unwrap_or(self.default)
    }
}
