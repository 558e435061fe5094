//! What a stream's relay has carried each way, readable while it runs: the bytes so far and
//! the rate of late, for the console's list of open streams (`docs/console.md`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Role;

/// Shortest span a rate is measured over: readings closer together than this repeat the last
/// rate, so two pages polling at once do not each see a rate over a few milliseconds.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// A stream's byte counters, shared by its relay (which adds) and whoever reads them. Cheap to
/// clone; every clone counts into the same totals.
#[derive(Debug, Clone)]
pub struct Traffic {
    inner: Arc<Counters>,
}

#[derive(Debug)]
struct Counters {
    /// Payload bytes handed on from each half, by [`Role::index`]: from the device (device to
    /// service) and from the service.
    bytes: [AtomicU64; 2],
    // std Mutex: a few loads and stores, never held across an await.
    window: Mutex<Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the current window started, and the totals then.
    at: Instant,
    bytes: [u64; 2],
    /// The rate over the last complete window, bytes per second; `None` before one completed.
    rate: Option<[u64; 2]>,
}

/// One reading of a stream's [`Traffic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficReading {
    /// Payload bytes the hub carried from the device to the service so far.
    pub device_to_service: u64,
    /// Payload bytes the hub carried from the service to the device so far.
    pub service_to_device: u64,
    /// Bytes per second device to service: over the span since the previous reading at
    /// least [`RATE_WINDOW`] before this one, or, until one such span has passed, since the
    /// stream was opened.
    pub rate_device_to_service: u64,
    /// Bytes per second service to device, measured as `rate_device_to_service`.
    pub rate_service_to_device: u64,
}

impl Traffic {
    /// Counters at zero, as of now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Counters {
                bytes: Default::default(),
                window: Mutex::new(Window {
                    at: Instant::now(),
                    bytes: [0, 0],
                    rate: None,
                }),
            }),
        }
    }

    /// Counts `n` payload bytes handed on from `from`'s half.
    pub fn add(&self, from: Role, n: u64) {
        self.inner.bytes[from.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// The bytes handed on from `from`'s half so far.
    pub fn total(&self, from: Role) -> u64 {
        self.inner.bytes[from.index()].load(Ordering::Relaxed)
    }

    /// The totals, and the rates (see [`TrafficReading`]).
    pub fn read(&self) -> TrafficReading {
        let now = Instant::now();
        let totals = [self.total(Role::Device), self.total(Role::Service)];
        let mut w = self.inner.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(w.at);
        let per_second = |from: usize| match u64::try_from(elapsed.as_millis()) {
            Ok(0) => 0,
            Ok(ms) => {
                totals[from]
                    .saturating_sub(w.bytes[from])
                    .saturating_mul(1000)
                    / ms
            }
            Err(_) => 0,
        };
        let rate = if elapsed >= RATE_WINDOW {
            let rate = [per_second(0), per_second(1)];
            *w = Window {
                at: now,
                bytes: totals,
                rate: Some(rate),
            };
            rate
        } else {
            w.rate.unwrap_or_else(|| [per_second(0), per_second(1)])
        };
        TrafficReading {
            device_to_service: totals[0],
            service_to_device: totals[1],
            rate_device_to_service: rate[0],
            rate_service_to_device: rate[1],
        }
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(r: TrafficReading) -> (u64, u64) {
        (r.rate_device_to_service, r.rate_service_to_device)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_is_measured_over_at_least_the_window_and_held_between() {
        let t = Traffic::new();
        t.add(Role::Device, 1000);
        tokio::time::advance(Duration::from_secs(1)).await;
        // No window has passed yet: the average since the stream opened.
        assert_eq!(rates(t.read()), (1000, 0));

        t.add(Role::Device, 3000);
        t.add(Role::Service, 500);
        tokio::time::advance(RATE_WINDOW - Duration::from_secs(1)).await;
        // At the window's end exactly: 4000 bytes over 2 s, 500 over 2 s.
        let r = t.read();
        assert_eq!(rates(r), (2000, 250));
        assert_eq!((r.device_to_service, r.service_to_device), (4000, 500));

        // Just short of the next window the last rate holds, whatever arrived since.
        t.add(Role::Device, 10_000);
        tokio::time::advance(RATE_WINDOW - Duration::from_millis(1)).await;
        assert_eq!(rates(t.read()), (2000, 250));

        // At it, the new window: 10 000 bytes over 2 s, and nothing the other way.
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(rates(t.read()), (5000, 0));
        assert_eq!(t.read().device_to_service, 14_000, "totals keep counting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_at_the_opening_instant_is_zero_not_a_division_by_zero() {
        let t = Traffic::new();
        t.add(Role::Service, 7);
        assert_eq!(
            rates(t.read()),
            (0, 0),
            "no time has passed to measure over"
        );
        let idle = Traffic::new();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(idle.read(), TrafficReading::default());
    }

    #[test]
    fn clones_count_into_the_same_totals() {
        let t = Traffic::new();
        let relay = t.clone();
        relay.add(Role::Device, 5);
        relay.add(Role::Service, 2);
        assert_eq!((t.total(Role::Device), t.total(Role::Service)), (5, 2));
    }
}
