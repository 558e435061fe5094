//! WebSocket keep-alive settings: how long a connection may stay silent before it is pinged,
//! and how long the peer then has to show it is alive.
//!
//! Load balancers and NAT boxes drop TCP connections idle for 60 s or more (nginx, AWS ALB);
//! a ping every 20 s of silence keeps an idle stream open through them, and the pong deadline
//! turns a peer that vanished without a FIN (power loss, cable pulled, NAT entry gone) into a
//! prompt error instead of a connection that hangs until TCP gives up minutes later.

use std::time::Duration;

/// Longest interval or deadline accepted: a day. Bounding it keeps every `Instant + Duration`
/// far from overflow.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(24 * 3600);

/// When to ping a WebSocket that has received nothing, and how long to wait for an answer.
///
/// Default: ping after 20 s of silence, fail 20 s after the ping if nothing (a pong or any
/// other frame) has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
}

/// Why a [`Keepalive`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepaliveError {
    /// The ping interval is zero or longer than [`MAX_KEEPALIVE`].
    #[error("ping interval must be more than 0 and at most {} s", MAX_KEEPALIVE.as_secs())]
    Interval,
    /// The pong deadline is zero or longer than [`MAX_KEEPALIVE`].
    #[error("pong timeout must be more than 0 and at most {} s", MAX_KEEPALIVE.as_secs())]
    Timeout,
}

impl Keepalive {
    /// Ping after `interval` without receiving anything; fail if nothing arrives within
    /// `timeout` of the ping. Both must be more than zero and at most [`MAX_KEEPALIVE`].
    pub fn new(interval: Duration, timeout: Duration) -> Result<Self, KeepaliveError> {
        let valid = |d: Duration| !d.is_zero() && d <= MAX_KEEPALIVE;
        if !valid(interval) {
            return Err(KeepaliveError::Interval);
        }
        if !valid(timeout) {
            return Err(KeepaliveError::Timeout);
        }
        Ok(Self { interval, timeout })
    }

    /// Silence (nothing received) after which a ping is sent.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long after a ping something must arrive before the connection is declared dead.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        let s = Duration::from_secs(1);
        assert_eq!(
            Keepalive::new(Duration::ZERO, s),
            Err(KeepaliveError::Interval)
        );
        assert_eq!(
            Keepalive::new(s, Duration::ZERO),
            Err(KeepaliveError::Timeout)
        );
        assert_eq!(
            Keepalive::new(MAX_KEEPALIVE + Duration::from_nanos(1), s),
            Err(KeepaliveError::Interval)
        );
        let k = Keepalive::new(MAX_KEEPALIVE, s).expect("a day is allowed");
        assert_eq!((k.interval(), k.timeout()), (MAX_KEEPALIVE, s));
    }

    #[test]
    fn default_pings_under_a_60_s_idle_timeout() {
        let k = Keepalive::default();
        assert_eq!(k.interval(), Duration::from_secs(20));
        assert_eq!(k.timeout(), Duration::from_secs(20));
    }
}
