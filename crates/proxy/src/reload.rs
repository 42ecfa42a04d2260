//! The standalone configuration source: a `ProxyConfig` file, reloaded on SIGHUP and when
//! it or any file it references changes.
//!
//! The data path reads snapshots from a `watch` channel that [`ConfigSource`] owns. A new
//! snapshot is published only when the whole configuration (config file, certificate, key,
//! bundle, policy files) loads and compiles; otherwise the reason is logged, counted in
//! `bulkhead_proxy_config_reloads_total{result="rejected"}` and kept for `/config`, and the
//! old snapshot stays in force.
//!
//! Changes are found by polling (once a second by default): the modification time, size
//! and inode of every watched file are compared with those seen at the last attempt. That
//! works the same for editors, `cp`, atomic renames and Kubernetes' symlinked volume
//! mounts, needs no platform notification API, and costs a few `stat` calls per second.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::config::ProxyConfig;
use crate::load::{ConfigError, build_snapshot, config_dir, load_config};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

mod watch_files;

use watch_files::Fingerprint;

/// How often [`ConfigSource::run`] looks for changed files by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What happened to reload attempts so far (for `/config` and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Reload attempts after the initial load.
    pub attempts: u64,
    /// Attempts that were rejected.
    pub rejected: u64,
    /// Why the most recent attempt was rejected; `None` once one succeeds.
    pub last_error: Option<String>,
}

/// State changed only by a reload, under one lock so that reloads never interleave.
#[derive(Debug)]
struct Watched {
    config: Arc<ProxyConfig>,
    fingerprint: Fingerprint,
}

/// Owns the snapshot channel and keeps it in step with the config file.
#[derive(Debug)]
pub struct ConfigSource {
    path: PathBuf,
    base_dir: PathBuf,
    snapshots: watch::Sender<Arc<Snapshot>>,
    status: watch::Sender<ReloadStatus>,
    watched: Mutex<Watched>,
    metrics: Arc<Metrics>,
}

impl ConfigSource {
    /// Loads the config file at `path` and builds snapshot version 1; an error here is a
    /// startup failure.
    pub fn load(path: &Path, metrics: Arc<Metrics>) -> Result<ConfigSource, ConfigError> {
        let base_dir = config_dir(path);
        let fingerprint = Fingerprint::of(&[path.to_owned()]);
        let config = load_config(path)?;
        let snapshot = build_snapshot(&config, &base_dir, 1, None)?;
        let fingerprint = fingerprint.extended(&watch_files::referenced(&config, &base_dir));
        record(&metrics, &snapshot);
        let (snapshots, _) = watch::channel(Arc::new(snapshot));
        let (status, _) = watch::channel(ReloadStatus::default());
        Ok(ConfigSource {
            path: path.to_owned(),
            base_dir,
            snapshots,
            status,
            watched: Mutex::new(Watched {
                config: Arc::new(config),
                fingerprint,
            }),
            metrics,
        })
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A receiver of every published snapshot (the data path's input).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    /// A receiver of reload outcomes.
    pub fn subscribe_status(&self) -> watch::Receiver<ReloadStatus> {
        self.status.subscribe()
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// The configuration the snapshot in force was built from.
    pub fn config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&self.lock().config)
    }

    /// Reloads now, whether or not anything changed (what SIGHUP does). Returns the new
    /// version, or why the configuration was rejected (the old snapshot stays in force).
    pub fn reload(&self) -> Result<u64, ConfigError> {
        let mut watched = self.lock();
        self.reload_locked(&mut watched)
    }

    /// Reloads when a watched file changed since the last attempt; `None` when nothing did.
    pub fn poll(&self) -> Option<Result<u64, ConfigError>> {
        let mut watched = self.lock();
        if !watched.fingerprint.changed() {
            return None;
        }
        Some(self.reload_locked(&mut watched))
    }

    /// Polls every `interval` and reloads on SIGHUP until `shutdown` completes. Call it
    /// inside the tokio runtime that will drive the future: SIGHUP is subscribed to at the
    /// call, so a signal sent after `run` returns is never missed. File work runs on the
    /// blocking pool, so a slow disk never stalls the admin listener.
    pub fn run(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = ()> + Send {
        let mut hangup = Hangup::new();
        async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                let forced = tokio::select! {
                    () = &mut shutdown => return,
                    _ = ticks.tick() => false,
                    () = hangup.recv() => true,
                };
                let this = Arc::clone(&self);
                let work = tokio::task::spawn_blocking(move || this.attempt(forced));
                if let Err(e) = work.await {
                    tracing::error!(error = %e, "configuration reload task failed");
                }
            }
        }
    }

    /// One turn of [`ConfigSource::run`]: a forced reload (SIGHUP) or a poll.
    fn attempt(&self, forced: bool) {
        if forced {
            tracing::info!(config = %self.path.display(), "SIGHUP: reloading configuration");
            let _ = self.reload();
        } else {
            let _ = self.poll();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        // The guarded state is replaced whole, never left half-updated.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reload_locked(&self, watched: &mut Watched) -> Result<u64, ConfigError> {
        // Stamp what is watched before reading, so a change made while reading triggers
        // another attempt rather than going unnoticed.
        let before = Fingerprint::of(watched.fingerprint.roots());
        let previous = self.current();
        let config = match load_config(&self.path) {
            Ok(config) => config,
            Err(e) => return Err(self.reject(watched, before, &previous, e)),
        };
        let referenced = watch_files::referenced(&config, &self.base_dir);
        let version = previous.version + 1;
        match build_snapshot(&config, &self.base_dir, version, Some(&previous)) {
            Ok(snapshot) => {
                // Watch what the new config references, and stop watching what it dropped.
                let mut keep = referenced.clone();
                keep.push(self.path.clone());
                watched.fingerprint = before.retained(&keep).extended(&referenced);
                watched.config = Arc::new(config);
                self.publish(snapshot);
                Ok(version)
            }
            // Also watch the files the rejected config references, so that creating or
            // fixing any of them triggers the next attempt.
            Err(e) => Err(self.reject(watched, before.extended(&referenced), &previous, e)),
        }
    }

    fn publish(&self, snapshot: Snapshot) {
        let version = snapshot.version;
        record(&self.metrics, &snapshot);
        self.metrics.config_reload(true);
        // Status first: whoever sees the new snapshot also sees its status.
        self.status.send_modify(|s| {
            s.attempts += 1;
            s.last_error = None;
        });
        self.snapshots.send_replace(Arc::new(snapshot));
        tracing::info!(config = %self.path.display(), version, "configuration reloaded");
    }

    fn reject(
        &self,
        watched: &mut Watched,
        fingerprint: Fingerprint,
        previous: &Snapshot,
        e: ConfigError,
    ) -> ConfigError {
        watched.fingerprint = fingerprint;
        self.metrics.config_reload(false);
        self.status.send_modify(|s| {
            s.attempts += 1;
            s.rejected += 1;
            s.last_error = Some(e.to_string());
        });
        tracing::warn!(
            config = %self.path.display(),
            version = previous.version,
            error = %e,
            "configuration rejected; the previous snapshot stays in force"
        );
        e
    }
}

/// Exports a newly published snapshot's version and certificate expiry.
fn record(metrics: &Metrics, snapshot: &Snapshot) {
    metrics.set_config_version(snapshot.version);
    metrics.set_certificate_expiry(unix_seconds(snapshot.svid.expiry()));
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// SIGHUP as a stream; never fires where signals are unavailable.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
                })
                .ok();
            Hangup { signal }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests;
