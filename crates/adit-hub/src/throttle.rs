//! Per-source throttling of failed authentication.
//!
//! A source address that fails authentication too often in a window is refused (429) until
//! the window ends, so keys cannot be brute-forced and a misconfigured client cannot flood the
//! registry. Successful requests are never counted. Memory is bounded: past `MAX_SOURCES`
//! tracked addresses, expired entries are dropped, and if all are live the oldest window wins
//! (the map is cleared), which errs towards letting traffic through rather than growing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_SOURCES: usize = 100_000;

/// Limits for [`AuthThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures allowed per source per window.
    pub max_failures: u32,
    /// The window.
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 100,
            window: Duration::from_secs(60),
        }
    }
}

/// Counts authentication failures per source address.
#[derive(Debug, Clone)]
pub struct AuthThrottle {
    config: ThrottleConfig,
    // std Mutex: the critical section is a hash lookup, never held across an await.
    failures: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl AuthThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            failures: Arc::default(),
        }
    }

    /// True when `source` has used up its failures for the current window.
    pub fn is_blocked(&self, source: IpAddr) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&source).is_some_and(|(start, count)| {
            start.elapsed() < self.config.window && *count >= self.config.max_failures
        })
    }

    /// Records one failure from `source`.
    pub fn record_failure(&self, source: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SOURCES {
            let window = self.config.window;
            map.retain(|_, (start, _)| start.elapsed() < window);
            if map.len() >= MAX_SOURCES {
                map.clear();
            }
        }
        let entry = map.entry(source).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.config.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_only_that_source() {
        let t = AuthThrottle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(!t.is_blocked(a));
            t.record_failure(a);
        }
        assert!(t.is_blocked(a));
        assert!(!t.is_blocked(b));
    }

    #[test]
    fn window_expiry_unblocks() {
        let t = AuthThrottle::new(ThrottleConfig {
            max_failures: 1,
            window: Duration::from_millis(1),
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        t.record_failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!t.is_blocked(a));
    }
}
