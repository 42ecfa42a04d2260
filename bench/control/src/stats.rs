//! Summaries of samples: nearest-rank percentiles.

use serde_json::{Value, json};

/// Count, mean, percentiles and extremes of a sample.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    pub(crate) min: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Summary {
    /// The summary of `values` (all zero when empty).
    pub(crate) fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Summary {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v[0],
            p50: percentile(&v, 0.50),
            p90: percentile(&v, 0.90),
            p99: percentile(&v, 0.99),
            max: v[v.len() - 1],
        }
    }

    /// The JSON form.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "n": self.n, "mean": self.mean, "min": self.min, "p50": self.p50,
            "p90": self.p90, "p99": self.p99, "max": self.max,
        })
    }
}

/// The nearest-rank percentile `q` (0 < q ≤ 1) of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let s = Summary::of(&v);
        assert_eq!((s.p50, s.p99, s.max, s.min), (500.0, 990.0, 1000.0, 1.0));
        assert_eq!(Summary::of(&[7.0]).p99, 7.0);
    }
}
