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

    /// The next delay: uniformly random in [min, min * 2^(attempt + 1)], capped at max. The
    /// first delay is random too (in [min, 2 min]): a fleet that lost its hub at the same
    /// instant would otherwise all come back exactly `min` later, together.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << (self.attempt.min(16) + 1))
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
            let ceiling = min.saturating_mul(1 << (attempt.min(16) + 1)).min(max);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        b.reset();
        assert!(b.next_delay() <= min * 2);
    }

    #[test]
    fn a_fleet_that_lost_its_hub_together_does_not_retry_together() {
        // 1,000 devices see the hub go at the same instant: their first retries spread over
        // [min, 2 min] (they were all exactly `min` before).
        let min = Duration::from_millis(500);
        let firsts: Vec<Duration> = (0..1000)
            .map(|_| Backoff::new(min, Duration::from_secs(30)).next_delay())
            .collect();
        assert!(firsts.iter().all(|d| *d >= min && *d <= min * 2));
        let (lo, hi) = (firsts.iter().min(), firsts.iter().max());
        let spread = hi.zip(lo).map(|(h, l)| *h - *l).unwrap_or_default();
        assert!(
            spread >= min * 9 / 10,
            "first retries within {spread:?} of each other"
        );
        let in_first_tenth = firsts.iter().filter(|d| **d < min + min / 10).count();
        assert!(
            in_first_tenth < 200,
            "{in_first_tenth} of 1000 in the first tenth"
        );
    }
}
