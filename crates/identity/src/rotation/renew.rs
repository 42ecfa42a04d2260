//! The renewal schedule and the task that follows it.

use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokio::time::{Instant, sleep, sleep_until};

use super::{Current, RotationError, Signer, SvidSource, SvidState};
use crate::x509::rfc3339 as format_time;

/// When to renew and how to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RenewalConfig {
    /// Fraction of the lifetime after notBefore at which renewal starts (default 0.5).
    pub renew_at: f64,
    /// Largest random shift of that point, as a fraction of the lifetime, either way
    /// (default 0.1: renewal between 40 % and 60 %).
    pub jitter: f64,
    /// Delay before the first retry after a failed attempt (default 1 s).
    pub initial_backoff: Duration,
    /// Longest delay between retries (default 60 s): short enough that a CA coming back
    /// is noticed within a minute, long enough that a fleet does not hammer a struggling CA.
    pub max_backoff: Duration,
    /// Fraction of the lifetime left from which warnings are logged (default 0.2).
    pub warn_remaining: f64,
}

impl Default for RenewalConfig {
    fn default() -> Self {
        RenewalConfig {
            renew_at: 0.5,
            jitter: 0.1,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            warn_remaining: 0.2,
        }
    }
}

impl RenewalConfig {
    /// Delay after notBefore for a certificate of `lifetime`, given `unit` drawn uniformly
    /// from [0, 1): `lifetime × (renew_at ± jitter)`, kept within the lifetime.
    pub fn renewal_delay(&self, lifetime: Duration, unit: f64) -> Duration {
        let shift = self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        lifetime.mul_f64((self.renew_at + shift).clamp(0.0, 1.0))
    }

    /// Delay before retry number `attempt` (0 for the first retry): doubling from
    /// `initial_backoff`, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// A uniform draw from [0, 1) for the jitter, from the system's secure generator.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    // The system generator failing is not worth stopping renewal for: fall back to the
    // middle of the window, i.e. no jitter.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits fill an f64's mantissa exactly.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The renewal task: wait for the renewal point of the current certificate, renew (with
/// retries), repeat. A certificate installed by someone else restarts the wait.
pub(super) async fn run(source: &SvidSource, signer: &dyn Signer, config: &RenewalConfig) {
    let mut changes = source.subscribe();
    loop {
        changes.mark_unchanged();
        let current = source.current();
        let renew_at = current.starts_at + config.renewal_delay(current.lifetime, random_unit());
        tracing::debug!(
            spiffe_id = %source.id,
            not_after = %format_time(current.info.not_after),
            renew_in_secs = renew_at.saturating_duration_since(Instant::now()).as_secs(),
            "SVID renewal scheduled"
        );
        tokio::select! {
            () = wait_until(&current, renew_at, config, source) => {}
            // Installed from elsewhere (e.g. a reloaded file): schedule for the new one.
            _ = changes.changed() => continue,
        }
        renew_with_retries(source, signer, config).await;
    }
}

/// Sleeps until `renew_at`, warning on the way if the warning point comes first.
async fn wait_until(
    current: &Current,
    renew_at: Instant,
    config: &RenewalConfig,
    source: &SvidSource,
) {
    let warn_at = current.warn_at(config);
    if warn_at < renew_at {
        sleep_until(warn_at).await;
        tracing::warn!(
            spiffe_id = %source.id,
            not_after = %format_time(current.info.not_after),
            remaining_secs = current.remaining().as_secs(),
            "SVID expires soon and renewal has not started yet"
        );
    }
    sleep_until(renew_at).await;
}

/// Attempts renewal until it succeeds, backing off between failures.
async fn renew_with_retries(source: &SvidSource, signer: &dyn Signer, config: &RenewalConfig) {
    let mut attempt: u32 = 0;
    loop {
        match source.renew_once(signer).await {
            Ok(info) => {
                tracing::info!(
                    spiffe_id = %info.id,
                    serial = %info.serial,
                    not_after = %format_time(info.not_after),
                    attempts = attempt + 1,
                    "SVID renewed"
                );
                return;
            }
            Err(error) => {
                let delay = config.backoff(attempt);
                log_failure(source, config, &error, attempt, delay);
                attempt = attempt.saturating_add(1);
                sleep(delay).await;
            }
        }
    }
}

/// Logs a failed attempt at a level that grows with the urgency.
fn log_failure(
    source: &SvidSource,
    config: &RenewalConfig,
    error: &RotationError,
    attempt: u32,
    retry_in: Duration,
) {
    let current = source.current();
    let not_after = format_time(current.info.not_after);
    let remaining_secs = current.remaining().as_secs();
    let retry_in_secs = retry_in.as_secs_f64();
    match current.state(config) {
        SvidState::Expired => tracing::error!(
            spiffe_id = %source.id, %not_after, attempt, retry_in_secs, %error,
            "SVID renewal failed and the SVID has expired: peers refuse this workload"
        ),
        SvidState::ExpiringSoon => tracing::warn!(
            spiffe_id = %source.id, %not_after, remaining_secs, attempt, retry_in_secs, %error,
            "SVID renewal failed; the SVID expires soon"
        ),
        SvidState::Valid => tracing::info!(
            spiffe_id = %source.id, %not_after, remaining_secs, attempt, retry_in_secs, %error,
            "SVID renewal failed; will retry"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
