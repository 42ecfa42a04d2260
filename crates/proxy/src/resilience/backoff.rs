//! Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
//! Jitter"): the n-th retry waits a uniformly random time below
//! `min(max, base * 2^(n-1))`, so synchronised clients spread out instead of retrying in
//! lockstep.

use std::time::Duration;

use super::rng::Rng;

/// The wait before retry number `retry` (1 for the first retry).
pub fn backoff(retry: u32, base: Duration, max: Duration, rng: &Rng) -> Duration {
    let shift = retry.saturating_sub(1).min(32);
    let ceiling = base.saturating_mul(1u32 << shift.min(31)).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.below(nanos + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_maximum() {
        let rng = Rng::seeded(7);
        let base = Duration::from_millis(25);
        let max = Duration::from_millis(250);
        for retry in 1..=10 {
            let ceiling = (base * (1 << (retry - 1))).min(max);
            for _ in 0..200 {
                assert!(backoff(retry, base, max, &rng) <= ceiling);
            }
        }
    }

    #[test]
    fn jitter_spreads_waits_and_is_reproducible() {
        let base = Duration::from_millis(100);
        let a: Vec<_> = (0..50)
            .map(|_| Rng::seeded(1))
            .zip(1..)
            .map(|(r, _)| backoff(1, base, base, &r))
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed, same wait");
        let rng = Rng::seeded(1);
        let waits: Vec<_> = (0..100).map(|_| backoff(1, base, base, &rng)).collect();
        let short = waits.iter().filter(|w| **w < base / 2).count();
        assert!((20..80).contains(&short), "full jitter is uniform: {short}");
    }

    #[test]
    fn zero_base_means_no_wait() {
        let rng = Rng::seeded(3);
        assert_eq!(
            backoff(3, Duration::ZERO, Duration::ZERO, &rng),
            Duration::ZERO
        );
    }
}
