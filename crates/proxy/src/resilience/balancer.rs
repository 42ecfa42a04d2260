//! Endpoint selection. The default is power of two choices over peak-EWMA cost
//! (latency estimate times in-flight requests plus one): two distinct random endpoints,
//! the cheaper wins. Random pairs keep load spread (no herding onto the single best
//! endpoint), while the cost steers away from slow or busy ones (Mitzenmacher; linkerd).
//!
//! Ejected endpoints are skipped, as is `avoid` (the endpoint a retry just failed on),
//! while anything else is left; when nothing is left everything is eligible again, since
//! a possibly failing endpoint beats refusing the request. Selection scans the slice
//! (no allocation): endpoint sets are small.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::endpoint::EndpointState;
use super::policy::LoadBalancer;
use super::rng::Rng;

/// The per-upstream selection state.
#[derive(Debug)]
pub struct Balancer {
    rng: Rng,
    next: AtomicUsize,
}

impl Balancer {
    /// A balancer drawing from `rng`.
    pub fn new(rng: Rng) -> Balancer {
        Balancer {
            rng,
            next: AtomicUsize::new(0),
        }
    }

    /// The shared random stream (also used for backoff jitter).
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// The index of the endpoint to send to, at `now_ns`; `None` when `endpoints` is empty.
    pub fn pick(
        &self,
        endpoints: &[Arc<EndpointState>],
        algorithm: LoadBalancer,
        avoid: Option<usize>,
        now_ns: u64,
    ) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let healthy = |i: usize, e: &EndpointState| Some(i) != avoid && !e.is_ejected(now_ns);
        // Nothing healthy besides `avoid`: ejection is ignored, and with a single endpoint
        // so is `avoid`.
        let strict = endpoints.iter().enumerate().any(|(i, e)| healthy(i, e));
        let avoid = avoid.filter(|_| strict || endpoints.len() > 1);
        let mut eligible =
            |i: usize, e: &EndpointState| Some(i) != avoid && (!strict || !e.is_ejected(now_ns));
        let count = count(endpoints, &mut eligible);
        if count == 0 {
            return Some(0);
        }
        let mut pick_nth = |k: usize| nth(endpoints, &mut eligible, k);
        match algorithm {
            LoadBalancer::RoundRobin => pick_nth(self.next.fetch_add(1, Ordering::Relaxed) % count),
            LoadBalancer::PeakEwma | LoadBalancer::LeastRequest if count == 1 => pick_nth(0),
            LoadBalancer::PeakEwma | LoadBalancer::LeastRequest => {
                let a = self.rng.below(count as u64) as usize;
                let mut b = self.rng.below(count as u64 - 1) as usize;
                if b >= a {
                    b += 1;
                }
                let (a, b) = (pick_nth(a)?, pick_nth(b)?);
                let cost = |i: usize| match algorithm {
                    LoadBalancer::LeastRequest => f64::from(endpoints[i].in_flight()),
                    _ => endpoints[i].cost(now_ns),
                };
                Some(if cost(b) < cost(a) { b } else { a })
            }
        }
    }
}

fn count(
    endpoints: &[Arc<EndpointState>],
    eligible: &mut impl FnMut(usize, &EndpointState) -> bool,
) -> usize {
    endpoints
        .iter()
        .enumerate()
        .filter(|(i, e)| eligible(*i, e))
        .count()
}

fn nth(
    endpoints: &[Arc<EndpointState>],
    eligible: &mut impl FnMut(usize, &EndpointState) -> bool,
    k: usize,
) -> Option<usize> {
    endpoints
        .iter()
        .enumerate()
        .filter(|(i, e)| eligible(*i, e))
        .nth(k)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests;
