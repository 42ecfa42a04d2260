//! Clocks and memory figures read from /proc (Linux), so the benchmark needs no unsafe code.

use std::time::{Duration, Instant};

/// CPU time this thread has used (ns), from /proc/thread-self/schedstat (its first field,
/// the scheduler's exact run time); None where that file does not exist.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// A field of /proc/self/status in KiB, e.g. "VmRSS" or "VmHWM".
pub(crate) fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Wall and CPU time of `f`.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<u64>) {
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let out = f();
    let wall = t0.elapsed();
    let cpu = cpu0.and_then(|c0| thread_cpu_ns().map(|c1| c1.saturating_sub(c0)));
    (out, wall, cpu)
}

/// Order statistics of a sample.
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) min: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Summary {
    /// Summarises `v` (sorted in place); None when empty.
    pub(crate) fn of(v: &mut [f64]) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            n: v.len(),
            min: v[0],
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        })
    }

    /// As a JSON object.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n, "min": self.min, "p50": self.p50, "p90": self.p90,
            "p99": self.p99, "max": self.max, "mean": self.mean,
        })
    }
}
