//! Push latency: one policy change applied over the REST API, the clock started right
//! before the request is sent (on an already open connection), and for every proxy the
//! change concerns, the instant it received a snapshot newer than the one it had. Proxies
//! the change does not concern must receive nothing.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::control::Memory;
use crate::fleet::Fleet;
use crate::mesh::{self, Layout};
use crate::rest::Rest;
use crate::stats::Summary;

/// Silence on every stream before a change is applied (earlier pushes are done).
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// How long the fleet may take to fall silent.
pub(crate) const MAX_QUIET: Duration = Duration::from_secs(60);
/// How long every concerned proxy may take to receive the change.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Silence after the last concerned proxy received the change, during which anything a
/// proxy receives counts as extra (a late duplicate, or a push to an unconcerned proxy).
const SETTLE: Duration = Duration::from_secs(1);

/// One measured change.
#[derive(Debug)]
pub(crate) struct Push {
    /// `mesh` (root namespace) or `namespace`.
    pub(crate) scope: &'static str,
    pub(crate) round: usize,
    /// Store revision of the change.
    pub(crate) revision: u64,
    /// Time from sending the apply to its answer (validation, commit), ms.
    pub(crate) apply_ms: f64,
    /// Per concerned proxy that received it, ms from sending the apply.
    pub(crate) latencies_ms: Vec<f64>,
    /// Concerned proxies.
    pub(crate) targets: usize,
    /// Snapshots received by proxies the change does not concern.
    pub(crate) unconcerned_snapshots: u64,
    /// Snapshots beyond the one expected, received by concerned proxies.
    pub(crate) extra_snapshots: u64,
    /// The control plane's resident memory once the push settled, MiB.
    pub(crate) rss_mib_after: f64,
    /// The control plane's CPU time from before the apply to the push settled, s.
    pub(crate) cpu_s: f64,
}

impl Push {
    /// The JSON form: a summary, not every sample.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scope": self.scope,
            "round": self.round,
            "revision": self.revision,
            "apply_ms": self.apply_ms,
            "proxies_concerned": self.targets,
            "proxies_received": self.latencies_ms.len(),
            "latency_ms": Summary::of(&self.latencies_ms).to_json(),
            "snapshots_to_unconcerned_proxies": self.unconcerned_snapshots,
            "extra_snapshots_to_concerned_proxies": self.extra_snapshots,
            "control_plane_rss_mib_after": self.rss_mib_after,
            "control_plane_cpu_s": self.cpu_s,
        })
    }
}

/// `rounds` rounds of: a mesh-wide change (every proxy), then a change to one namespace
/// (its proxies only), each measured; `memory` reads the control plane's memory.
pub(crate) async fn rounds(
    fleet: &mut Fleet,
    rest: &Rest,
    layout: &Layout,
    rounds: usize,
    memory: &mut impl FnMut() -> Result<Memory>,
) -> Result<Vec<Push>> {
    let everyone: Vec<usize> = (0..layout.proxies).collect();
    let mut pushes = Vec::with_capacity(2 * rounds);
    for round in 1..=rounds {
        // A different namespace each round, spread over the mesh.
        let n = (round * 7) % layout.namespaces;
        let changes = [
            ("mesh", mesh::mesh_change(round)?, everyone.clone()),
            (
                "namespace",
                mesh::namespace_change(n, round)?,
                layout.proxies_of(n),
            ),
        ];
        for (scope, change, targets) in changes {
            let push = measure(fleet, rest, change, &targets, memory).await?;
            pushes.push(Push {
                scope,
                round,
                ..push
            });
        }
    }
    Ok(pushes)
}

/// Applies `yaml` and measures its arrival at `targets`.
async fn measure(
    fleet: &mut Fleet,
    rest: &Rest,
    yaml: String,
    targets: &[usize],
    memory: &mut impl FnMut() -> Result<Memory>,
) -> Result<Push> {
    fleet.quiesce(QUIET, MAX_QUIET).await?;
    let before = memory()?;
    let before_last = fleet.last.clone();
    let before_count = fleet.count.clone();
    let mut concerned = vec![false; fleet.last.len()];
    for &t in targets {
        concerned[t] = true;
    }
    let connection = rest.connect().await?;
    let t0 = Instant::now();
    let revision = connection.apply(yaml).await?;
    let apply_ms = ms(t0.elapsed());
    let mut received = vec![false; concerned.len()];
    let mut latencies_ms = Vec::with_capacity(targets.len());
    let deadline = t0 + PUSH_TIMEOUT;
    while latencies_ms.len() < targets.len() {
        let Some((proxy, version, at)) = fleet.next(deadline).await? else {
            break;
        };
        if concerned[proxy] && !received[proxy] && version > before_last[proxy] {
            received[proxy] = true;
            latencies_ms.push(ms(at.duration_since(t0)));
        }
    }
    if latencies_ms.len() < targets.len() {
        bail!(
            "revision {revision}: only {} of {} concerned proxies received it within {PUSH_TIMEOUT:?}",
            latencies_ms.len(),
            targets.len()
        );
    }
    fleet.quiesce(SETTLE, MAX_QUIET).await?;
    let after = memory()?;
    let new = |i: usize| fleet.count[i] - before_count[i];
    let unconcerned_snapshots = (0..concerned.len())
        .filter(|&i| !concerned[i])
        .map(new)
        .sum();
    let extra_snapshots = targets.iter().map(|&i| new(i).saturating_sub(1)).sum();
    Ok(Push {
        scope: "",
        round: 0,
        revision,
        apply_ms,
        latencies_ms,
        targets: targets.len(),
        unconcerned_snapshots,
        extra_snapshots,
        rss_mib_after: after.rss_mib,
        cpu_s: after.cpu_s - before.cpu_s,
    })
}

/// Milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
