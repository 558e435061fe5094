//! What the traffic did, counted as it happens and read by the sampler and the report.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every traffic task.
#[derive(Debug, Default)]
pub struct Tally {
    /// Streams opened (the hub answered and both halves joined).
    pub opened: AtomicU64,
    /// Streams that failed to open, or failed or mismatched after opening.
    pub failed: AtomicU64,
    /// Streams that ended with every byte echoed back identical.
    pub verified: AtomicU64,
    /// Interactive (64-byte echo) streams opened.
    pub interactive: AtomicU64,
    /// Bulk streams opened.
    pub bulk: AtomicU64,
    /// Payload bytes sent by the service side.
    pub sent: AtomicU64,
    /// Payload bytes that came back identical.
    pub echoed: AtomicU64,
    /// Bytes sent that never came back identical (lost, cut short or corrupted).
    pub lost: AtomicU64,
    /// Device disconnect-and-reconnect cycles completed.
    pub flaps: AtomicU64,
    /// Flapping devices that failed to reconnect within their deadline.
    pub flap_failures: AtomicU64,
}

impl Tally {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The value of `counter` now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records a stream that sent `sent` bytes of which `echoed` came back identical, and
    /// whether it failed (`why`, logged once).
    pub fn stream_done(&self, kind: &str, sent: u64, echoed: u64, why: Option<String>) {
        Self::add(&self.sent, sent);
        Self::add(&self.echoed, echoed);
        Self::add(&self.lost, sent.saturating_sub(echoed));
        match why {
            None => Self::add(&self.verified, 1),
            Some(why) => {
                Self::add(&self.failed, 1);
                eprintln!("soak: {kind} stream failed: {why}");
            }
        }
    }
}
