//! The retry budget: over a sliding window, retries are allowed while
//! `retries <= ratio * requests + min_per_second * window_secs`. During an outage every
//! request fails, so without a budget each would be sent `1 + attempts` times; the budget
//! keeps the extra load at `ratio` (plus a floor so that low traffic can still retry).
//!
//! The window is ten buckets of `window / 10`; a bucket is cleared when time moves past
//! it, so the count lags the true sliding window by at most one bucket.

use std::sync::{Mutex, PoisonError};

use super::policy::Budget;

const BUCKETS: usize = 10;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    retries: u64,
}

#[derive(Debug, Default)]
struct Window {
    slot_ns: u64,
    /// The absolute slot number (`now_ns / slot_ns`) of the newest bucket.
    slot: u64,
    buckets: [Counts; BUCKETS],
}

impl Window {
    /// Moves the window to `now_ns`, clearing buckets time has left behind; a changed
    /// window length starts afresh.
    fn advance(&mut self, now_ns: u64, budget: &Budget) {
        let slot_ns = u64::try_from(budget.window.as_nanos() / BUCKETS as u128)
            .unwrap_or(u64::MAX)
            .max(1);
        if slot_ns != self.slot_ns {
            *self = Window {
                slot_ns,
                slot: now_ns / slot_ns,
                ..Window::default()
            };
            return;
        }
        let slot = now_ns / slot_ns;
        let stale = slot.saturating_sub(self.slot).min(BUCKETS as u64);
        for i in 1..=stale {
            self.buckets[((self.slot + i) % BUCKETS as u64) as usize] = Counts::default();
        }
        self.slot = self.slot.max(slot);
    }

    fn current(&mut self) -> &mut Counts {
        &mut self.buckets[(self.slot % BUCKETS as u64) as usize]
    }

    fn totals(&self) -> Counts {
        self.buckets.iter().fold(Counts::default(), |a, c| Counts {
            requests: a.requests + c.requests,
            retries: a.retries + c.retries,
        })
    }
}

/// One upstream's retry budget.
#[derive(Debug, Default)]
pub struct RetryBudget {
    window: Mutex<Window>,
}

impl RetryBudget {
    /// Counts one original request (not a retry) at `now_ns`.
    pub fn record_request(&self, now_ns: u64, budget: &Budget) {
        let mut w = self.lock();
        w.advance(now_ns, budget);
        w.current().requests += 1;
    }

    /// Takes one retry from the budget at `now_ns`; false when it is spent.
    pub fn try_retry(&self, now_ns: u64, budget: &Budget) -> bool {
        let mut w = self.lock();
        w.advance(now_ns, budget);
        let t = w.totals();
        let floor = f64::from(budget.min_per_second) * budget.window.as_secs_f64();
        let allowed = budget.ratio.max(0.0) * t.requests as f64 + floor;
        if (t.retries + 1) as f64 > allowed {
            return false;
        }
        w.current().retries += 1;
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn budget(ratio: f64, min_per_second: u32, window_secs: u64) -> Budget {
        Budget {
            ratio,
            min_per_second,
            window: Duration::from_secs(window_secs),
        }
    }

    #[test]
    fn a_total_outage_retries_only_ratio_plus_floor() {
        let b = budget(0.2, 10, 10);
        let budget = RetryBudget::default();
        let mut retries = 0;
        // 1000 requests within one second, each wanting two retries.
        for i in 0..1000u64 {
            let now = i * 1_000_000;
            budget.record_request(now, &b);
            retries += (0..2).filter(|_| budget.try_retry(now, &b)).count();
        }
        assert!(retries <= 200 + 100, "{retries}");
        assert!(retries >= 290, "the budget is used, not starved: {retries}");
    }

    #[test]
    fn the_window_slides() {
        let b = budget(0.0, 1, 10);
        let budget = RetryBudget::default();
        let taken = (0..20).filter(|_| budget.try_retry(0, &b)).count();
        assert_eq!(taken, 10, "floor = 1/s x 10 s");
        assert!(
            !budget.try_retry(5_000_000_000, &b),
            "still inside the window"
        );
        assert!(
            budget.try_retry(11_000_000_000, &b),
            "old retries have expired"
        );
    }

    proptest! {
        /// Whatever the traffic pattern, at the moment a retry is admitted the retries in
        /// the window (it included) are within `ratio * requests + floor`.
        #[test]
        fn retries_never_exceed_the_budget(
            ratio in 0.0f64..1.0,
            floor in 0u32..5,
            steps in prop::collection::vec((0u64..300, 0u8..4), 1..300),
        ) {
            let b = budget(ratio, floor, 1);
            let slot = 100_000_000u64;
            let budget = RetryBudget::default();
            let mut now = 0u64;
            let mut log: Vec<(u64, bool)> = Vec::new();
            for (advance_ms, wants) in steps {
                now += advance_ms * 1_000_000;
                budget.record_request(now, &b);
                log.push((now, false));
                for _ in 0..wants {
                    if !budget.try_retry(now, &b) {
                        continue;
                    }
                    log.push((now, true));
                    // The same ten buckets the budget keeps.
                    let first = (now / slot).saturating_sub(9) * slot;
                    let (mut req, mut ret) = (0u64, 0u64);
                    for (_, retry) in log.iter().filter(|(t, _)| *t >= first) {
                        if *retry { ret += 1 } else { req += 1 }
                    }
                    prop_assert!(ret as f64 <= ratio * req as f64 + f64::from(floor) + 1e-9,
                        "{ret} retries for {req} requests");
                }
            }
        }
    }
}
