//! Endpoint selection for an upstream service. Round-robin for now; the seam is kept
//! small so that power-of-two-choices over peak-EWMA latency (DESIGN.md §5) can replace
//! it: it will need `pick` plus a report of each request's latency and outcome.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::snapshot::Endpoint;

/// The balancer of one outbound listener.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    next: AtomicUsize,
}

impl Balancer {
    /// Up to `attempts` distinct endpoints in the order to try them (the first is the
    /// pick; the others are the fallbacks when connecting fails).
    pub(crate) fn candidates<'e>(
        &self,
        endpoints: &'e [Endpoint],
        attempts: usize,
    ) -> impl Iterator<Item = &'e Endpoint> + use<'e> {
        let len = endpoints.len();
        let first = if len == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % len
        };
        (0..attempts.min(len)).map(move |i| &endpoints[(first + i) % len])
    }
}
