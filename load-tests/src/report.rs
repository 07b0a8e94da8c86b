//! Latency histograms and the printed report.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in microseconds, 1 µs to 1 min, 3 significant digits.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let micros = (d.as_micros() as u64).clamp(1, 60_000_000);
        self.0.record(micros).expect("clamped into bounds");
    }

    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    fn ms_at(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest sample, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    /// `{p50, p90, p99, p99_9, max}` in milliseconds (null without samples).
    pub fn to_json(&self) -> serde_json::Value {
        if self.count() == 0 {
            return serde_json::Value::Null;
        }
        serde_json::json!({
            "p50": self.ms_at(0.5),
            "p90": self.ms_at(0.9),
            "p99": self.ms_at(0.99),
            "p99_9": self.ms_at(0.999),
            "max": self.0.max() as f64 / 1000.0,
            "samples": self.count(),
        })
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Latency({self})")
    }
}

impl fmt::Display for Latency {
    /// `p50 p90 p99 p99.9 max` in milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count() == 0 {
            return write!(f, "no samples");
        }
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} samples)",
            self.ms_at(0.5),
            self.ms_at(0.9),
            self.ms_at(0.99),
            self.ms_at(0.999),
            self.0.max() as f64 / 1000.0,
            self.count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut l = Latency::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert!((l.ms_at(0.5) - 50.0).abs() < 0.1);
        assert!((l.ms_at(0.99) - 99.0).abs() < 0.1);
        let mut m = Latency::default();
        m.merge(&l);
        assert_eq!(m.count(), 100);
        assert!(m.to_string().starts_with("p50 50.0"));
    }
}
