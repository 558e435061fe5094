//! How many streams may run, and how fast they may start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Stream limits. Defaults are far above Azure's (50 concurrent, 5 new per second per hub).
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Streams in progress (handshake or data phase) per hub.
    pub max_streams: usize,
    /// Streams in progress per device.
    pub max_streams_per_device: usize,
    /// New streams per second per hub (a token bucket of this size, refilled continuously).
    pub initiations_per_second: u32,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_streams: 10_000,
            max_streams_per_device: 200,
            initiations_per_second: 1_000,
        }
    }
}

/// A limit that refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    /// Too many new streams per second.
    #[error("stream initiation rate exceeded ({0} per second)")]
    Rate(u32),
    /// Too many streams on this hub.
    #[error("too many concurrent streams on this hub (limit {0})")]
    Hub(usize),
    /// Too many streams to this device.
    #[error("too many concurrent streams to this device (limit {0})")]
    Device(usize),
}

#[derive(Debug)]
struct State {
    active: usize,
    per_device: HashMap<String, usize>,
    tokens: f64,
    refilled: Instant,
}

/// Counts streams in progress; a [`Slot`] is held for a stream's whole life.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: StreamLimits,
    // std Mutex: arithmetic only, never held across an await.
    state: Arc<Mutex<State>>,
}

/// One admitted stream; releases its place when dropped.
#[derive(Debug)]
pub struct Slot {
    state: Arc<Mutex<State>>,
    device: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.active = s.active.saturating_sub(1);
        if let Some(n) = s.per_device.get_mut(&self.device) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_device.remove(&self.device);
            }
        }
    }
}

impl Admission {
    /// Admission with these limits.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            limits,
            state: Arc::new(Mutex::new(State {
                active: 0,
                per_device: HashMap::new(),
                tokens: f64::from(limits.initiations_per_second),
                refilled: Instant::now(),
            })),
        }
    }

    /// Streams admitted and not yet ended.
    pub fn active(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).active
    }

    /// Admits a new stream to `device`, or says which limit refused it.
    pub fn admit(&self, device: &str) -> Result<Slot, Throttled> {
        let l = self.limits;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let rate = f64::from(l.initiations_per_second);
        s.tokens = (s.tokens + now.duration_since(s.refilled).as_secs_f64() * rate).min(rate);
        s.refilled = now;
        if s.tokens < 1.0 {
            return Err(Throttled::Rate(l.initiations_per_second));
        }
        if s.active >= l.max_streams {
            return Err(Throttled::Hub(l.max_streams));
        }
        if s.per_device.get(device).copied().unwrap_or(0) >= l.max_streams_per_device {
            return Err(Throttled::Device(l.max_streams_per_device));
        }
        s.tokens -= 1.0;
        s.active += 1;
        *s.per_device.entry(device.to_string()).or_insert(0) += 1;
        Ok(Slot {
            state: Arc::clone(&self.state),
            device: device.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_device_and_hub_limits_release_on_drop() {
        let a = Admission::new(StreamLimits {
            max_streams: 3,
            max_streams_per_device: 2,
            initiations_per_second: 100,
        });
        let s1 = a.admit("d").expect("first");
        let _s2 = a.admit("d").expect("second");
        assert_eq!(a.admit("d").err(), Some(Throttled::Device(2)));
        let _s3 = a.admit("e").expect("other device");
        assert_eq!(a.admit("f").err(), Some(Throttled::Hub(3)));
        drop(s1);
        assert!(a.admit("d").is_ok());
    }

    #[test]
    fn rate_is_a_token_bucket() {
        let a = Admission::new(StreamLimits {
            max_streams: 100,
            max_streams_per_device: 100,
            initiations_per_second: 2,
        });
        let _a = a.admit("d").expect("1");
        let _b = a.admit("d").expect("2");
        assert_eq!(a.admit("d").err(), Some(Throttled::Rate(2)));
    }
}
