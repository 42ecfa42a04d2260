//! The control plane's own view, from `GET /metrics` (Prometheus text): the push-latency,
//! snapshot-build and view-build histograms, and a few counters. Histograms are read
//! before and after a phase and subtracted, so each phase is reported on its own.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::rest::Rest;

const PREFIX: &str = "bulkhead_control_";
/// The histograms reported, without prefix and suffix.
pub(crate) const HISTOGRAMS: [&str; 3] = ["push_latency", "snapshot_build", "view_build"];

/// One scrape of `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Scrape {
    text: String,
}

/// A histogram: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram {
    pub(crate) buckets: Vec<(f64, u64)>,
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

/// Reads `/metrics`.
pub(crate) async fn scrape(rest: &Rest) -> Result<Scrape> {
    Ok(Scrape {
        text: rest.get_text("/metrics").await?,
    })
}

impl Scrape {
    /// The value of the sample line `name` (full name with labels, as printed).
    fn sample(&self, name: &str) -> Option<f64> {
        self.text.lines().find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
    }

    /// A counter or gauge without labels (0 when absent).
    pub(crate) fn value(&self, name: &str) -> f64 {
        self.sample(&format!("{PREFIX}{name}")).unwrap_or(0.0)
    }

    /// The histogram `bulkhead_control_<name>_seconds`.
    pub(crate) fn histogram(&self, name: &str) -> Result<Histogram> {
        let base = format!("{PREFIX}{name}_seconds");
        let bucket = format!("{base}_bucket{{le=\"");
        let mut buckets = Vec::new();
        for line in self.text.lines() {
            let Some(rest) = line.strip_prefix(&bucket) else {
                continue;
            };
            let (le, count) = rest.split_once("\"} ").context("a malformed bucket line")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse()?
            };
            buckets.push((le, count.trim().parse::<f64>()? as u64));
        }
        anyhow::ensure!(!buckets.is_empty(), "no histogram {base} in /metrics");
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Histogram {
            buckets,
            sum: self.sample(&format!("{base}_sum")).unwrap_or(0.0),
            count: self.sample(&format!("{base}_count")).unwrap_or(0.0) as u64,
        })
    }
}

impl Histogram {
    /// What was observed between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|b| b.0 == le)
                    .map_or(0, |b| b.1);
                (le, n.saturating_sub(before))
            })
            .collect();
        Histogram {
            buckets,
            sum: self.sum - earlier.sum,
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// The mean observation (0 when empty).
    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The `q` quantile estimated as Prometheus' `histogram_quantile` does: linear within
    /// the bucket holding the rank. In the `+Inf` bucket it is the largest finite bound
    /// (a lower bound of the true value). 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = q * self.count as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                if le.is_infinite() {
                    return lower;
                }
                let inside = (cumulative - below) as f64;
                let share = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                return lower + (le - lower) * share;
            }
            (lower, below) = (le, cumulative);
        }
        lower
    }

    /// Count, mean and estimated p50/p99, in milliseconds.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_ms": self.mean() * 1000.0,
            "p50_ms_estimated": self.quantile(0.5) * 1000.0,
            "p99_ms_estimated": self.quantile(0.99) * 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_estimates() {
        let text = "# TYPE bulkhead_control_view_build_seconds histogram\n\
            bulkhead_control_view_build_seconds_sum 1.5\n\
            bulkhead_control_view_build_seconds_count 10\n\
            bulkhead_control_view_build_seconds_bucket{le=\"0.1\"} 0\n\
            bulkhead_control_view_build_seconds_bucket{le=\"0.2\"} 10\n\
            bulkhead_control_view_build_seconds_bucket{le=\"+Inf\"} 10\n\
            bulkhead_control_snapshots_sent_total 42\n";
        let scrape = Scrape {
            text: text.to_owned(),
        };
        let h = scrape.histogram("view_build").unwrap();
        assert_eq!(h.count, 10);
        assert!((h.mean() - 0.15).abs() < 1e-9);
        assert!((h.quantile(0.5) - 0.15).abs() < 1e-9);
        assert!((h.quantile(0.99) - 0.199).abs() < 1e-9);
        assert_eq!(scrape.value("snapshots_sent_total"), 42.0);
        assert_eq!(h.since(&h).count, 0);
    }
}
