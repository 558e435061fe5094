//! A fixed window of counted failures, on tokio's clock (so paused-time tests can reach its
//! boundaries exactly).

use std::time::Duration;

use tokio::time::Instant;

/// What a failure counted in a [`Window`] amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answer with the real refusal, and log and record it.
    Counted,
    /// Past the limit: answer "throttled" after the penalty. `attempts` numbers the throttled
    /// attempts of this window (1 for the first), so callers can log and record sparsely.
    Throttled {
        /// How many attempts this window has throttled, this one included.
        attempts: u32,
    },
}

/// Of the throttled attempts, every this many is logged and recorded (and the first).
pub const REPORT_EVERY: u32 = 100;

impl Verdict {
    /// True when the attempt is answered "throttled".
    pub fn is_throttled(self) -> bool {
        matches!(self, Self::Throttled { .. })
    }

    /// True for the attempts worth a log line and an Authentication record: every counted
    /// one, the first throttled one of a window and every [`REPORT_EVERY`]th after it. Every
    /// attempt is counted in the metrics whatever this says.
    pub fn is_reported(self) -> bool {
        match self {
            Self::Counted => true,
            Self::Throttled { attempts } => attempts == 1 || attempts % REPORT_EVERY == 0,
        }
    }
}

/// Failures counted from `start` for one window length; the next failure after it starts a
/// new window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            start: now,
            failures: 0,
        }
    }

    /// True until `length` has passed since the window started (over at exactly `length`).
    pub(super) fn is_live(&self, now: Instant, length: Duration) -> bool {
        now.saturating_duration_since(self.start) < length
    }

    /// True while the window is live and holds `limit` failures or more.
    pub(super) fn is_full(&self, now: Instant, length: Duration, limit: u32) -> bool {
        self.is_live(now, length) && self.failures >= limit
    }

    /// Counts one failure at `now` (in a new window if this one is over): the first `limit`
    /// are [`Verdict::Counted`], the rest [`Verdict::Throttled`].
    pub(super) fn fail(&mut self, now: Instant, length: Duration, limit: u32) -> Verdict {
        if !self.is_live(now, length) {
            *self = Self::new(now);
        }
        self.failures = self.failures.saturating_add(1);
        match self.failures.checked_sub(limit) {
            Some(attempts) if attempts > 0 => Verdict::Throttled { attempts },
            _ => Verdict::Counted,
        }
    }
}
