//! Percentiles of a set of durations.

use std::time::Duration;

/// Sorted durations, for percentiles.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts `values`.
    pub fn new(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Self(values)
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q`-quantile (0.0..=1.0) by nearest rank, in milliseconds; `None` when empty.
    pub fn ms(&self, q: f64) -> Option<f64> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.0[rank - 1].as_secs_f64() * 1000.0)
    }

    /// The time by which a fraction `q` of the values had happened (same as [`Self::ms`], in
    /// seconds).
    pub fn secs(&self, q: f64) -> Option<f64> {
        self.ms(q).map(|ms| ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.ms(0.5), Some(50.0));
        assert_eq!(l.ms(0.99), Some(99.0));
        assert_eq!(l.ms(1.0), Some(100.0));
        assert_eq!(Latencies::default().ms(0.5), None);
    }
}
