//! Reconnection delays: exponential, capped, jittered (docs/control-plane.md: 0.5 s
//! doubling to 30 s), so that a fleet of proxies that lost the control plane together does
//! not come back in lockstep.

use std::time::Duration;

/// How reconnection delays grow.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The first delay (default 0.5 s).
    pub initial: Duration,
    /// The longest delay (default 30 s).
    pub max: Duration,
    /// Largest random change of a delay, as a fraction of it, either way (default 0.2).
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl BackoffConfig {
    /// Delay number `attempt` (from 0), given `unit` drawn uniformly from [0, 1):
    /// `initial × 2^attempt`, capped at `max`, moved by up to `jitter` of itself.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        let base = self
            .initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max);
        let shift = self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(1.0 + shift)
    }
}

/// The delays of one run of failures.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Backoff {
        Backoff { config, attempt: 0 }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.config.delay(self.attempt, random_unit());
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Starts over from the initial delay (after a healthy stream).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniform draw from [0, 1) from the system's secure generator.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    // Without randomness the delays are merely unjittered: not worth failing over.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits fill an f64's mantissa exactly.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_from_half_a_second_to_thirty() {
        let config = BackoffConfig::default();
        let delays: Vec<f64> = (0..9).map(|a| config.delay(a, 0.5).as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(config.delay(u32::MAX, 0.5), Duration::from_secs(30));
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        });
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }

    proptest! {
        #[test]
        fn jitter_stays_within_bounds(attempt in 0u32..64, unit in 0.0f64..1.0) {
            let config = BackoffConfig::default();
            let delay = config.delay(attempt, unit).as_secs_f64();
            let base = config.delay(attempt, 0.5).as_secs_f64();
            prop_assert!(delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9);
            prop_assert!(delay <= 36.0 + 1e-9);
        }
    }
}
