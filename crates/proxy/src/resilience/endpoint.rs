//! What is known about one endpoint across requests and snapshots: in-flight requests,
//! the peak-EWMA latency estimate and the outlier detector's counters.
//!
//! Times are nanoseconds since the owning upstream's epoch (see
//! [`super::upstream::Upstream::now_ns`]), so the logic here is pure and tests drive it
//! with plain numbers.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::outlier::{self, Ejection, Outcome};
use super::policy::Outlier;
use crate::snapshot::Endpoint;

/// The RTT assumed for an endpoint that has not answered yet: high enough that a
/// measured fast endpoint wins, low enough that new endpoints get traffic (linkerd's
/// default).
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// How fast old latency observations fade (the time constant of the EWMA).
pub const DECAY: Duration = Duration::from_secs(10);

/// Small mutable state, behind one short-lived lock.
#[derive(Debug, Default)]
struct Health {
    /// Peak-EWMA RTT estimate in nanoseconds; `None` until the first observation.
    rtt_ns: Option<f64>,
    updated_ns: u64,
    consecutive_5xx: u32,
    consecutive_connect: u32,
    /// Ejections so far (the next one lasts `base * 2^ejections`).
    ejections: u32,
}

/// One endpoint's runtime state.
#[derive(Debug)]
pub struct EndpointState {
    /// The endpoint as the snapshot lists it.
    pub endpoint: Endpoint,
    in_flight: AtomicU32,
    /// Until when it is ejected (nanoseconds since the epoch); 0 when it is not.
    ejected_until_ns: AtomicU64,
    health: Mutex<Health>,
}

/// An in-flight request; dropping it ends the request for the balancer.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What `/config` shows for an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointView {
    /// The EWMA latency in milliseconds (decayed to now); `None` before any answer.
    pub ewma_ms: Option<f64>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Consecutive 5xx responses, resets and per-try timeouts.
    pub consecutive_5xx: u32,
    /// Consecutive connect failures.
    pub consecutive_connect_failures: u32,
    /// Remaining ejection; `None` when it takes traffic.
    pub ejected_for: Option<Duration>,
    /// Ejections so far.
    pub ejections: u32,
}

impl EndpointState {
    /// Fresh state for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Arc<EndpointState> {
        Arc::new(EndpointState {
            endpoint,
            in_flight: AtomicU32::new(0),
            ejected_until_ns: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether it is ejected at `now_ns`.
    pub fn is_ejected(&self, now_ns: u64) -> bool {
        now_ns < self.ejected_until_ns.load(Ordering::Acquire)
    }

    /// The peak-EWMA cost at `now_ns`: the latency estimate (decayed towards zero for
    /// the time since it was last updated, as tower's `PeakEwma`, so an idle slow
    /// endpoint is eventually probed again) times in-flight requests plus one.
    pub fn cost(&self, now_ns: u64) -> f64 {
        let rtt = {
            let mut h = self.lock();
            match h.rtt_ns {
                Some(_) => decay_to(&mut h, now_ns, 0.0),
                None => DEFAULT_RTT.as_nanos() as f64,
            }
        };
        rtt * f64::from(self.in_flight() + 1)
    }

    /// Records a latency sample: a higher one replaces the estimate at once (peak
    /// sensitivity), a lower one is blended in by how long ago the last update was.
    pub fn observe(&self, now_ns: u64, rtt: Duration) {
        let sample = rtt.as_nanos() as f64;
        let mut h = self.lock();
        match h.rtt_ns {
            Some(current) if sample <= current => {
                decay_to(&mut h, now_ns, sample);
            }
            _ => {
                h.rtt_ns = Some(sample);
                h.updated_ns = now_ns;
            }
        }
    }

    /// Feeds one outcome to the outlier detector. When it crosses a threshold the
    /// caller asks [`super::upstream::Upstream`] whether the ejection fits under the
    /// maximum percentage, then calls [`EndpointState::eject`].
    pub fn record(&self, outcome: Outcome, policy: &Outlier) -> Option<outlier::Reason> {
        let mut guard = self.lock();
        let h = &mut *guard;
        outlier::count(
            &mut h.consecutive_5xx,
            &mut h.consecutive_connect,
            outcome,
            policy,
        )
    }

    /// Ejects the endpoint from `now_ns` for its exponentially growing period.
    pub fn eject(&self, now_ns: u64, reason: outlier::Reason, policy: &Outlier) -> Ejection {
        let mut h = self.lock();
        let previous_end = self.ejected_until_ns.load(Ordering::Acquire);
        // Back and healthy for longer than the longest ejection: start over at `base`.
        if previous_end > 0 && now_ns.saturating_sub(previous_end) > nanos(policy.max_ejection) {
            h.ejections = 0;
        }
        let duration = outlier::ejection_time(h.ejections, policy);
        h.ejections = h.ejections.saturating_add(1);
        h.consecutive_5xx = 0;
        h.consecutive_connect = 0;
        let until = now_ns.saturating_add(nanos(duration)).max(1);
        self.ejected_until_ns.store(until, Ordering::Release);
        Ejection {
            reason,
            duration,
            ejections: h.ejections,
        }
    }

    /// The state `/config` shows, at `now_ns`.
    pub fn view(&self, now_ns: u64) -> EndpointView {
        let mut h = self.lock();
        let ewma_ms = h.rtt_ns.map(|_| decay_to(&mut h, now_ns, 0.0) / 1e6);
        let until = self.ejected_until_ns.load(Ordering::Acquire);
        EndpointView {
            ewma_ms,
            in_flight: self.in_flight(),
            consecutive_5xx: h.consecutive_5xx,
            consecutive_connect_failures: h.consecutive_connect,
            ejected_for: (now_ns < until).then(|| Duration::from_nanos(until - now_ns)),
            ejections: h.ejections,
        }
    }
}

/// Blends `sample` into the estimate with weight `1 - e^(-elapsed/DECAY)`.
fn decay_to(h: &mut Health, now_ns: u64, sample: f64) -> f64 {
    let current = h.rtt_ns.unwrap_or(sample);
    let elapsed = now_ns.saturating_sub(h.updated_ns) as f64;
    let keep = (-elapsed / DECAY.as_nanos() as f64).exp();
    let next = current * keep + sample * (1.0 - keep);
    h.rtt_ns = Some(next);
    h.updated_ns = h.updated_ns.max(now_ns);
    next
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
