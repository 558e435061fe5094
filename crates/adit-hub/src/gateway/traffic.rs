//! What a stream's relay has carried each way, readable while it runs: the bytes so far and
//! the rate of late, for the console's list of open streams (`docs/console.md`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Role;

/// Shortest span a rate is measured over: a reading less than this after the one that last
/// measured repeats its rate, so two pages polling at once do not each see a rate over a few
/// milliseconds (the console polls every 2 s, so its rate is over the last 2 s).
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

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
    /// The rate over the last completed window, bytes per second (0 before one completed).
    rate: [u64; 2],
}

/// One reading of a stream's [`Traffic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficReading {
    /// Payload bytes the hub carried from the device to the service so far.
    pub device_to_service: u64,
    /// Payload bytes the hub carried from the service to the device so far.
    pub service_to_device: u64,
    /// Bytes per second device to service, over the last completed window: the span between
    /// two readings at least [`RATE_WINDOW`] apart (the first from when the stream was
    /// opened); 0 until one has completed.
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
                    rate: [0, 0],
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
        if elapsed >= RATE_WINDOW {
            // At least a second: no division by zero, and no overflow before 18 PB carried.
            let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            let per_second = |from: usize| {
                totals[from]
                    .saturating_sub(w.bytes[from])
                    .saturating_mul(1000)
                    / ms
            };
            *w = Window {
                at: now,
                bytes: totals,
                rate: [per_second(0), per_second(1)],
            };
        }
        let rate = w.rate;
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
        tokio::time::advance(RATE_WINDOW - Duration::from_millis(1)).await;
        // No window has completed: no rate yet, though the bytes count.
        let r = t.read();
        assert_eq!((rates(r), r.device_to_service), ((0, 0), 1000));

        t.add(Role::Device, 3000);
        t.add(Role::Service, 500);
        tokio::time::advance(Duration::from_millis(1)).await;
        // At the window's end exactly: the first window runs from the opening.
        let r = t.read();
        assert_eq!(rates(r), (4000, 500));
        assert_eq!((r.device_to_service, r.service_to_device), (4000, 500));

        // Just short of the next window the last rate holds, whatever arrived since.
        t.add(Role::Device, 10_000);
        tokio::time::advance(RATE_WINDOW - Duration::from_millis(1)).await;
        assert_eq!(rates(t.read()), (4000, 500));

        // Two windows' time after the last (a poll every 2 s): 10 000 bytes over 2 s.
        tokio::time::advance(RATE_WINDOW + Duration::from_millis(1)).await;
        assert_eq!(rates(t.read()), (5000, 0));
        assert_eq!(t.read().device_to_service, 14_000, "totals keep counting");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_reads_zero() {
        let idle = Traffic::new();
        assert_eq!(idle.read(), TrafficReading::default());
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
