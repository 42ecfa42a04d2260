//! Outlier ejection: an endpoint that fails `N` times in a row (5xx responses, resets and
//! per-try timeouts count as 5xx; connect failures have their own counter) is taken out
//! of the balancer for `base * 2^k` (capped at `max`), where `k` counts its earlier
//! ejections. At most `max_ejected_percent` of the endpoints are out at once (at least
//! one of two or more, never the last), so ejection cannot turn a partial outage into a
//! total one.

use std::time::Duration;

use super::policy::Outlier;

/// One try's result as the detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer below 500.
    Success,
    /// A 5xx answer, a reset or a per-try timeout.
    Failure,
    /// The connection could not be established.
    ConnectFailure,
}

/// Why an endpoint was ejected; the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `consecutive_5xx` reached.
    Consecutive5xx,
    /// `consecutive_connect_failures` reached.
    ConsecutiveConnectFailures,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 2] = [Reason::Consecutive5xx, Reason::ConsecutiveConnectFailures];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Consecutive5xx => "consecutive_5xx",
            Reason::ConsecutiveConnectFailures => "consecutive_connect_failures",
        }
    }
}

/// An ejection that took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Why.
    pub reason: Reason,
    /// For how long.
    pub duration: Duration,
    /// The endpoint's ejections so far, this one included.
    pub ejections: u32,
}

/// Updates the consecutive counters; returns the reason when a threshold is reached
/// (a threshold of 0 disables that check).
pub(super) fn count(
    consecutive_5xx: &mut u32,
    consecutive_connect: &mut u32,
    outcome: Outcome,
    policy: &Outlier,
) -> Option<Reason> {
    match outcome {
        Outcome::Success => {
            *consecutive_5xx = 0;
            *consecutive_connect = 0;
            None
        }
        Outcome::Failure => {
            *consecutive_5xx = consecutive_5xx.saturating_add(1);
            (policy.consecutive_5xx > 0 && *consecutive_5xx >= policy.consecutive_5xx)
                .then_some(Reason::Consecutive5xx)
        }
        Outcome::ConnectFailure => {
            *consecutive_connect = consecutive_connect.saturating_add(1);
            let limit = policy.consecutive_connect_failures;
            (limit > 0 && *consecutive_connect >= limit)
                .then_some(Reason::ConsecutiveConnectFailures)
        }
    }
}

/// The length of an endpoint's ejection after `earlier` ejections.
pub fn ejection_time(earlier: u32, policy: &Outlier) -> Duration {
    let factor = 1u32 << earlier.min(31);
    policy
        .base_ejection
        .saturating_mul(factor)
        .min(policy.max_ejection)
}

/// How many of `endpoints` may be ejected at once.
pub fn max_ejected(endpoints: usize, percent: u8) -> usize {
    if endpoints < 2 || percent == 0 {
        return 0;
    }
    let by_percent = endpoints * usize::from(percent.min(100)) / 100;
    by_percent.max(1).min(endpoints - 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ejection_time_grows_exponentially_up_to_the_maximum() {
        let p = Outlier::default();
        let secs: Vec<u64> = (0..6).map(|k| ejection_time(k, &p).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
        assert_eq!(ejection_time(200, &p), p.max_ejection);
    }

    #[test]
    fn thresholds_count_consecutive_failures_only() {
        let p = Outlier {
            consecutive_5xx: 3,
            ..Outlier::default()
        };
        let (mut f, mut c) = (0, 0);
        assert_eq!(count(&mut f, &mut c, Outcome::Failure, &p), None);
        assert_eq!(count(&mut f, &mut c, Outcome::Failure, &p), None);
        assert_eq!(count(&mut f, &mut c, Outcome::Success, &p), None);
        assert_eq!(count(&mut f, &mut c, Outcome::Failure, &p), None);
        assert_eq!(count(&mut f, &mut c, Outcome::Failure, &p), None);
        assert_eq!(
            count(&mut f, &mut c, Outcome::Failure, &p),
            Some(Reason::Consecutive5xx)
        );
    }

    #[test]
    fn at_least_one_of_two_never_the_last() {
        assert_eq!(max_ejected(1, 100), 0);
        assert_eq!(max_ejected(2, 10), 1);
        assert_eq!(max_ejected(3, 50), 1);
        assert_eq!(max_ejected(10, 50), 5);
        assert_eq!(max_ejected(4, 100), 3);
        assert_eq!(max_ejected(4, 0), 0);
    }

    proptest! {
        #[test]
        fn ejection_bounds_hold(n in 0usize..500, pct in 0u8..=255) {
            let m = max_ejected(n, pct);
            prop_assert!(n == 0 || m < n, "never all endpoints");
            prop_assert!(m * 100 <= n * usize::from(pct.min(100)) || m == 1);
            if n >= 2 && pct > 0 { prop_assert!(m >= 1) }
        }
    }
}
