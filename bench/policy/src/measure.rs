//! Timing and memory primitives: wall-clock medians, single-thread throughput, and a
//! per-decision latency distribution with the timer's own cost measured and removed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `VmRSS` and `VmHWM` of this process, in KiB (0 when `/proc` is unavailable).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

impl Memory {
    pub(crate) fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }
}

/// Runs `f` `n` times and returns each wall time with the last result.
pub(crate) fn timed_runs<T>(n: usize, mut f: impl FnMut() -> T) -> (Vec<Duration>, T) {
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        let out = f();
        times.push(start.elapsed());
        last = Some(black_box(out));
    }
    (times, last.expect("n > 0"))
}

pub(crate) fn median(d: &[Duration]) -> Duration {
    let mut v = d.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Decisions per second over several full passes of `items` on this thread.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) per_pass: Vec<f64>,
    pub(crate) decisions: usize,
}

impl Throughput {
    pub(crate) fn median(&self) -> f64 {
        let mut v = self.per_pass.clone();
        v.sort_unstable_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub(crate) fn best(&self) -> f64 {
        self.per_pass.iter().copied().fold(0.0, f64::max)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "decisions_per_pass": self.decisions,
            "passes": self.per_pass.len(),
            "median_per_s": self.median().round(),
            "best_per_s": self.best().round(),
            "per_pass_per_s": self.per_pass.iter().map(|r| r.round()).collect::<Vec<_>>(),
        })
    }
}

/// One warm-up pass, then `passes` timed passes of `f` over `items`.
pub(crate) fn throughput<T, R>(items: &[T], passes: usize, f: impl Fn(&T) -> R) -> Throughput {
    for item in items {
        black_box(f(black_box(item)));
    }
    let per_pass = (0..passes)
        .map(|_| {
            let start = Instant::now();
            for item in items {
                black_box(f(black_box(item)));
            }
            items.len() as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    Throughput {
        per_pass,
        decisions: items.len(),
    }
}

/// Percentiles of individually timed calls, in nanoseconds, after subtracting the
/// measured cost of an empty timed region.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    pub(crate) samples: usize,
    pub(crate) timer_overhead_ns: f64,
    pub(crate) mean_ns: f64,
    pub(crate) p50_ns: f64,
    pub(crate) p90_ns: f64,
    pub(crate) p99_ns: f64,
    pub(crate) p999_ns: f64,
    pub(crate) max_ns: f64,
}

impl Latency {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "samples": self.samples,
            "timer_overhead_ns_subtracted": round1(self.timer_overhead_ns),
            "mean_ns": round1(self.mean_ns),
            "p50_ns": round1(self.p50_ns),
            "p90_ns": round1(self.p90_ns),
            "p99_ns": round1(self.p99_ns),
            "p999_ns": round1(self.p999_ns),
            "max_ns": round1(self.max_ns),
        })
    }
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The median cost of `Instant::now()` + `elapsed()` around nothing, in ns.
pub(crate) fn timer_overhead() -> f64 {
    let mut v: Vec<u64> = (0..200_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// Times each call of `f` on the first `sample` items (cycling when there are fewer),
/// after one untimed warm-up over the same items; returns the times in item order, in ns,
/// with `overhead` subtracted. The result of each call is dropped inside its timed region.
pub(crate) fn time_each<T, R>(
    items: &[T],
    sample: usize,
    overhead: f64,
    f: impl Fn(&T) -> R,
) -> Vec<f64> {
    for item in items.iter().cycle().take(sample) {
        black_box(f(black_box(item)));
    }
    let mut ns: Vec<f64> = Vec::with_capacity(sample);
    for item in items.iter().cycle().take(sample) {
        let t = Instant::now();
        black_box(f(black_box(item)));
        let raw = t.elapsed().as_nanos() as f64;
        ns.push((raw - overhead).max(0.0));
    }
    ns
}

impl Latency {
    /// The distribution of `samples` (ns, overhead already subtracted).
    pub(crate) fn from_samples(mut ns: Vec<f64>, overhead: f64) -> Latency {
        ns.sort_unstable_by(f64::total_cmp);
        let len = ns.len().max(1);
        let pct = |p: f64| {
            let idx = ((p * len as f64).ceil() as usize).clamp(1, len) - 1;
            ns.get(idx).copied().unwrap_or(f64::NAN)
        };
        Latency {
            samples: ns.len(),
            timer_overhead_ns: overhead,
            mean_ns: ns.iter().sum::<f64>() / len as f64,
            p50_ns: pct(0.50),
            p90_ns: pct(0.90),
            p99_ns: pct(0.99),
            p999_ns: pct(0.999),
            max_ns: ns.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// [`time_each`] summarized.
pub(crate) fn latency<T, R>(
    items: &[T],
    sample: usize,
    overhead: f64,
    f: impl Fn(&T) -> R,
) -> Latency {
    Latency::from_samples(time_each(items, sample, overhead, f), overhead)
}
