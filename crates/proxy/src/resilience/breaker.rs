//! Circuit breakers: per-upstream counters of connections, pending requests, requests
//! and retries, each capped by [`super::policy::Limits`]. A permit is an RAII guard, so
//! every exit path (errors, cancellation, dropped bodies) gives its slot back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// One of the four limits; its name is the metric label and the `x-bulkhead-overflow`
/// header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Open connections to the upstream.
    Connections,
    /// Requests waiting for a connection or stream.
    PendingRequests,
    /// Requests in flight.
    Requests,
    /// Retries in flight.
    Retries,
}

impl Limit {
    /// Every limit, in label order.
    pub const ALL: [Limit; 4] = [
        Limit::Connections,
        Limit::PendingRequests,
        Limit::Requests,
        Limit::Retries,
    ];

    /// The configuration field name: `max_connections`, `max_pending_requests`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::PendingRequests => "max_pending_requests",
            Limit::Requests => "max_requests",
            Limit::Retries => "max_retries",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The four counters of one upstream.
#[derive(Debug, Default)]
pub struct Breakers {
    counts: [AtomicU32; 4],
}

impl Breakers {
    /// A slot under `limit` if fewer than `max` are taken; `None` means overflow.
    pub fn try_acquire(self: &Arc<Self>, limit: Limit, max: u32) -> Option<Permit> {
        let count = &self.counts[limit.index()];
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit {
            breakers: Arc::clone(self),
            limit,
        })
    }

    /// Slots taken under `limit` now.
    pub fn current(&self, limit: Limit) -> u32 {
        self.counts[limit.index()].load(Ordering::Acquire)
    }
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    breakers: Arc<Breakers>,
    limit: Limit,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.breakers.counts[self.limit.index()].fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_breaker_trips_exactly_at_its_limit() {
        let b = Arc::new(Breakers::default());
        for (limit, max) in Limit::ALL.into_iter().zip([3u32, 1, 5, 0]) {
            let held: Vec<Permit> = (0..max)
                .map(|_| b.try_acquire(limit, max).expect("below the limit"))
                .collect();
            assert_eq!(b.current(limit), max);
            assert!(
                b.try_acquire(limit, max).is_none(),
                "{} trips at {max}",
                limit.as_str()
            );
            drop(held);
            assert_eq!(b.current(limit), 0);
            if max > 0 {
                assert!(
                    b.try_acquire(limit, max).is_some(),
                    "freed slots are reusable"
                );
            }
        }
    }
}
