//! Counters of what a session's link went through, written by its link task and read through
//! [`super::MuxSession::stats`] without waiting for it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What a session's link went through so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Times the stream resumed on this side: after this side reattached, or when it answered
    /// the peer's RESUME after the peer did.
    pub resumptions: u64,
    /// Total time this side's link was down: from each failure until the peer's RESUME came on
    /// the new link (or the session ended). An outage still going on is not counted yet.
    pub detached: Duration,
    /// Receive window each of this side's connections grants now, in bytes: the settings'
    /// `initial_window`, then what the adaptive window grew it to (it never shrinks).
    pub window: u32,
}

/// The shared atomics behind [`SessionStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    resumptions: AtomicU64,
    detached_nanos: AtomicU64,
    window: AtomicU32,
}

impl Counters {
    pub(super) fn resumed(&self) {
        self.resumptions.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn detached_for(&self, outage: Duration) {
        let nanos = u64::try_from(outage.as_nanos()).unwrap_or(u64::MAX);
        self.detached_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn set_window(&self, window: u32) {
        self.window.store(window, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> SessionStats {
        SessionStats {
            resumptions: self.resumptions.load(Ordering::Relaxed),
            detached: Duration::from_nanos(self.detached_nanos.load(Ordering::Relaxed)),
            window: self.window.load(Ordering::Relaxed),
        }
    }
}
