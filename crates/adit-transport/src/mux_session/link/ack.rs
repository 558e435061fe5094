//! When this side tells the peer how much of the stream it has (ACK), so the peer can forget
//! it: every [`ACK_EVERY`] bytes received, and [`ACK_QUIET`] after the last receipt not yet
//! acknowledged when nothing more comes.

use std::time::Duration;

use tokio::time::Instant;

/// Bytes received since the last ACK that call for one at once. Well under the 1 MiB replay
/// buffer, so a bulk sender never waits for an ACK.
pub(in crate::mux_session) const ACK_EVERY: u64 = 64 * 1024;

/// Quiet after the last receipt that calls for an ACK of what is left: a sender that paused
/// learns soon what it may forget.
pub(in crate::mux_session) const ACK_QUIET: Duration = Duration::from_millis(250);

/// The received position and what of it was acknowledged.
#[derive(Debug, Default)]
pub(super) struct AckClock {
    /// Bytes of the stream received (whole data frames), from its start.
    received: u64,
    /// Position in the last ACK sent.
    acked: u64,
    /// When quiet calls for an ACK, while bytes are unacknowledged.
    quiet_at: Option<Instant>,
    /// An ACK should go out as soon as the link can take it.
    due: bool,
}

impl AckClock {
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// `n` more bytes of the stream arrived.
    pub(super) fn got(&mut self, n: usize) {
        self.received += n as u64;
        if self.received - self.acked >= ACK_EVERY {
            self.due = true;
            self.quiet_at = None;
        } else {
            self.quiet_at = Some(Instant::now() + ACK_QUIET);
        }
    }

    /// When the link going quiet calls for an ACK, if it would.
    pub(super) fn quiet_at(&self) -> Option<Instant> {
        self.quiet_at
    }

    /// The quiet time has passed.
    pub(super) fn went_quiet(&mut self) {
        self.quiet_at = None;
        self.due = self.received > self.acked;
    }

    /// The position to acknowledge now, if an ACK is due; it counts as sent.
    pub(super) fn take_due(&mut self) -> Option<u64> {
        if !std::mem::take(&mut self.due) || self.received == self.acked {
            return None;
        }
        self.acked = self.received;
        self.quiet_at = None;
        Some(self.received)
    }
}
