//! The state of one upstream that outlives snapshots: its endpoints' health (keyed by
//! address and expected identity, so a new snapshot listing the same endpoint keeps its
//! EWMA, in-flight count and ejection), the balancer, the retry budget and the circuit
//! breakers. Endpoints gone from the set are forgotten at once; requests still in flight
//! to them hold their own reference until they finish.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::time::Instant;

use super::balancer::Balancer;
use super::breaker::{Breakers, Limit, Permit};
use super::budget::RetryBudget;
use super::endpoint::{EndpointState, EndpointView};
use super::outlier::{self, Ejection, Outcome};
use super::policy::Outlier;
use super::rng::Rng;
use crate::snapshot::Endpoint;

/// The endpoints of one snapshot version.
#[derive(Debug, Default)]
pub struct EndpointSet {
    /// The snapshot it was built from (weak: only its identity matters, and the weak
    /// reference keeps the allocation from being reused by a later snapshot).
    source: Option<Weak<dyn Any + Send + Sync>>,
    /// The endpoints, in snapshot order.
    pub endpoints: Vec<Arc<EndpointState>>,
}

/// One upstream (outbound listener).
#[derive(Debug)]
pub struct Upstream {
    epoch: Instant,
    set: Mutex<Arc<EndpointSet>>,
    /// Endpoint selection.
    pub balancer: Balancer,
    /// The retry budget.
    pub budget: RetryBudget,
    /// The circuit breakers.
    pub breakers: Arc<Breakers>,
    /// Serialises ejection decisions so that two endpoints failing at once cannot both
    /// pass the maximum-percentage check.
    ejecting: Mutex<()>,
}

impl Upstream {
    /// A fresh upstream drawing randomness from `rng`.
    pub fn new(rng: Rng) -> Upstream {
        Upstream {
            epoch: Instant::now(),
            set: Mutex::new(Arc::default()),
            balancer: Balancer::new(rng),
            budget: RetryBudget::default(),
            breakers: Arc::default(),
            ejecting: Mutex::new(()),
        }
    }

    /// Nanoseconds since this upstream was created: the clock of its state (tokio's, so
    /// paused-time tests control it).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The endpoint set of `source` (the snapshot the `endpoints` come from), reusing
    /// the state of endpoints already known. Cheap for the source seen last (one lock,
    /// one `Arc` clone, no comparison of endpoints).
    pub fn endpoints<T: Send + Sync + 'static>(
        &self,
        source: &Arc<T>,
        endpoints: &[Endpoint],
    ) -> Arc<EndpointSet> {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        let same = set
            .source
            .as_ref()
            .is_some_and(|w| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(source)));
        if same {
            return Arc::clone(&set);
        }
        let endpoints = endpoints.iter().map(|e| {
            let known = set
                .endpoints
                .iter()
                .find(|s| s.endpoint.address == e.address && s.endpoint.identity == e.identity);
            known.map_or_else(|| EndpointState::new(e.clone()), Arc::clone)
        });
        *set = Arc::new(EndpointSet {
            source: Some(Arc::downgrade(source) as Weak<dyn Any + Send + Sync>),
            endpoints: endpoints.collect(),
        });
        Arc::clone(&set)
    }

    /// A circuit-breaker slot, or `None` on overflow.
    pub fn acquire(&self, limit: Limit, max: u32) -> Option<Permit> {
        self.breakers.try_acquire(limit, max)
    }

    /// Feeds one try's outcome on `set.endpoints[index]` to the outlier detector; returns
    /// the ejection it caused, if any.
    pub fn record(
        &self,
        set: &EndpointSet,
        index: usize,
        outcome: Outcome,
        policy: &Outlier,
    ) -> Option<Ejection> {
        let endpoint = set.endpoints.get(index)?;
        let reason = endpoint.record(outcome, policy)?;
        let _serial = self.ejecting.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.now_ns();
        if endpoint.is_ejected(now) {
            return None;
        }
        let ejected = set.endpoints.iter().filter(|e| e.is_ejected(now)).count();
        if ejected >= outlier::max_ejected(set.endpoints.len(), policy.max_ejected_percent) {
            return None;
        }
        Some(endpoint.eject(now, reason, policy))
    }

    /// Each current endpoint's address and state, for `/config`.
    pub fn views(&self) -> Vec<(SocketAddr, EndpointView)> {
        let set = Arc::clone(&self.set.lock().unwrap_or_else(PoisonError::into_inner));
        let now = self.now_ns();
        set.endpoints
            .iter()
            .map(|e| (e.endpoint.address, e.view(now)))
            .collect()
    }
}

/// Which outbound listener an upstream belongs to: its configured address and, for
/// duplicates of one address (port 0 in tests), its position among them.
pub type UpstreamKey = (SocketAddr, usize);

/// Every live upstream, so that `/config` can show endpoint health. Holds weak
/// references: an upstream lives as long as its listener.
#[derive(Debug, Default)]
pub struct Registry {
    upstreams: Mutex<Vec<(UpstreamKey, Weak<Upstream>)>>,
}

impl Registry {
    /// The upstream of `key`, created when there is none.
    pub fn upstream(&self, key: UpstreamKey) -> Arc<Upstream> {
        let mut all = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|(_, w)| w.strong_count() > 0);
        if let Some(up) = all
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return up;
        }
        let up = Arc::new(Upstream::new(Rng::from_entropy()));
        all.push((key, Arc::downgrade(&up)));
        up
    }

    /// The upstream of `key`, if its listener runs.
    pub fn get(&self, key: UpstreamKey) -> Option<Arc<Upstream>> {
        let all = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
    }
}

#[cfg(test)]
mod tests;
