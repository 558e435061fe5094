//! Reconnect delays: exponential with full jitter, so a fleet that lost its hub at once does
//! not come back at once.

use std::time::Duration;

use rand::Rng as _;

/// Successive delays between `min` and `max`.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// After a successful connection: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: uniformly random in [min, min * 2^attempt], capped at max.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max)
            .max(self.min);
        self.attempt = self.attempt.saturating_add(1);
        let span = ceiling.saturating_sub(self.min).as_millis() as u64;
        self.min + Duration::from_millis(rand::rng().random_range(0..=span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::new(min, max);
        for attempt in 0..20 {
            let d = b.next_delay();
            assert!(d >= min && d <= max, "attempt {attempt}: {d:?}");
            let ceiling = min.saturating_mul(1 << attempt.min(16)).min(max);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
