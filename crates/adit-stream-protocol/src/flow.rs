//! Credit-based flow control of one connection, per direction.
//!
//! The receiver grants credit (the initial window, then WINDOW increments as its reader
//! consumes bytes); the sender never sends more than it holds. A slow reader therefore stalls
//! only its own connection: the others' credit is their own.

/// Largest credit a sender may hold, in bytes: 2^31 - 1, as HTTP/2 (RFC 9113 §6.9.1). A grant
/// past it is a protocol error.
pub const MAX_CREDIT: u64 = (1 << 31) - 1;

/// Why a flow-control event is refused. Each resets the connection with
/// [`crate::ResetCode::Protocol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The peer sent more bytes than it had credit for.
    #[error("the peer sent {got} bytes with {credit} bytes of credit")]
    Overrun {
        /// Bytes in the frame.
        got: u64,
        /// Credit it had.
        credit: u64,
    },
    /// The peer granted credit past [`MAX_CREDIT`].
    #[error("window increment takes the credit past {MAX_CREDIT} bytes")]
    CreditOverflow,
}

/// What this side may still send on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCredit {
    credit: u64,
}

impl SendCredit {
    /// Credit of a new connection: the peer's initial window.
    pub fn new(initial_window: u32) -> Self {
        Self {
            credit: u64::from(initial_window),
        }
    }

    /// Bytes this side may send now.
    pub fn available(&self) -> u64 {
        self.credit
    }

    /// Takes up to `want` bytes of credit; returns how many may be sent.
    pub fn take(&mut self, want: usize) -> usize {
        let n = self.credit.min(want as u64);
        self.credit -= n;
        // `n` <= `want`, which is a usize.
        usize::try_from(n).unwrap_or(want)
    }

    /// The peer sent WINDOW `increment`.
    ///
    /// # Errors
    /// [`FlowError::CreditOverflow`] past [`MAX_CREDIT`].
    pub fn grant(&mut self, increment: u32) -> Result<(), FlowError> {
        let credit = self.credit + u64::from(increment);
        if credit > MAX_CREDIT {
            return Err(FlowError::CreditOverflow);
        }
        self.credit = credit;
        Ok(())
    }
}

/// What this side has granted on a connection and how much of it its reader consumed.
///
/// The window may grow during the connection ([`RecvWindow::grow`], the adaptive window of
/// [`crate::bdp`]) but never shrinks; the overrun check stays exact: the peer may have at most
/// what was granted in total and not yet received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    window: u32,
    /// Credit the peer holds now: granted and not yet received.
    outstanding: u64,
    /// Received and consumed since the last WINDOW this side sent.
    consumed: u64,
}

impl RecvWindow {
    /// A connection whose receive window is `window` bytes (the HELLO's initial window).
    pub fn new(window: u32) -> Self {
        Self {
            window,
            outstanding: u64::from(window),
            consumed: 0,
        }
    }

    /// Bytes received and not yet consumed, plus the peer's credit: never over the window.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// The window, in bytes: what the peer may have sent and this side's reader not consumed.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Raises the window to `window` bytes. Returns the WINDOW increment (the difference) to
    /// send at once, so the peer may use the extra credit now rather than when the reader has
    /// consumed a quarter of the window (as RFC 9113 §6.9.2 does for a larger
    /// `SETTINGS_INITIAL_WINDOW_SIZE`); `None` when `window` is not larger: a window never
    /// shrinks.
    pub fn grow(&mut self, window: u32) -> Option<u32> {
        let increment = window.checked_sub(self.window).filter(|&i| i > 0)?;
        self.window = window;
        self.outstanding += u64::from(increment);
        Some(increment)
    }

    /// A DATA frame of `n` bytes arrived.
    ///
    /// # Errors
    /// [`FlowError::Overrun`] when the peer had less credit.
    pub fn received(&mut self, n: usize) -> Result<(), FlowError> {
        let got = n as u64;
        if got > self.outstanding {
            return Err(FlowError::Overrun {
                got,
                credit: self.outstanding,
            });
        }
        self.outstanding -= got;
        Ok(())
    }

    /// The reader consumed `n` received bytes. Returns the WINDOW increment to send once at
    /// least a quarter of the window has been consumed, else `None`: updates are batched, but
    /// a sender limited by the window still keeps at least three quarters of it in flight.
    /// (With half, it would send its window in two bursts a round trip apart and carry as
    /// little as half a window per round trip, which the adaptive window's samples,
    /// [`crate::bdp`], would take for a path that does not need more.)
    pub fn consumed(&mut self, n: usize) -> Option<u32> {
        self.consumed += n as u64;
        if self.consumed * 4 < u64::from(self.window) {
            return None;
        }
        let increment = u32::try_from(self.consumed).unwrap_or(u32::MAX);
        self.consumed -= u64::from(increment);
        self.outstanding += u64::from(increment);
        Some(increment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// The sender wants to send this many bytes.
        Send(usize),
        /// The reader consumes this many of the bytes waiting for it.
        Read(usize),
        /// The receiver raises its window to this many bytes (if larger).
        Grow(u32),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                (1usize..70_000).prop_map(Step::Send),
                (1usize..70_000).prop_map(Step::Read),
                (1u32..600_000).prop_map(Step::Grow)
            ],
            0..200,
        )
    }

    proptest! {
        /// A sender that keeps to its credit never overruns the receiver, the receiver never
        /// holds more than its window unread (however it grew), and every byte sent is
        /// eventually grantable again: nothing deadlocks once the reader reads.
        #[test]
        fn credit_and_window_agree(initial in 1u32..300_000, steps in steps()) {
            let mut send = SendCredit::new(initial);
            let mut recv = RecvWindow::new(initial);
            let mut window = initial;
            let mut unread = 0u64;
            for step in steps {
                match step {
                    Step::Send(want) => {
                        let n = send.take(want);
                        recv.received(n).expect("within credit");
                        unread += n as u64;
                    }
                    Step::Read(n) => {
                        let n = (n as u64).min(unread);
                        unread -= n;
                        if let Some(inc) = recv.consumed(n as usize) {
                            send.grant(inc).expect("no overflow");
                        }
                    }
                    Step::Grow(to) => {
                        match recv.grow(to) {
                            Some(inc) => {
                                prop_assert_eq!(u64::from(inc), u64::from(to) - u64::from(window));
                                send.grant(inc).expect("no overflow");
                                window = to;
                            }
                            None => prop_assert!(to <= window, "never shrinks"),
                        }
                        prop_assert_eq!(recv.window(), window);
                    }
                }
                prop_assert!(unread + send.available() <= u64::from(window));
                prop_assert_eq!(send.available(), recv.outstanding());
            }
            // Reading everything always leaves the sender at least three quarters of the
            // window: it can always go on.
            if let Some(inc) = recv.consumed(unread as usize) {
                send.grant(inc).expect("no overflow");
            }
            prop_assert!(send.available() * 4 >= u64::from(window) * 3);
        }
    }

    #[test]
    fn one_byte_past_the_credit_is_an_overrun() {
        let mut recv = RecvWindow::new(10);
        recv.received(10).expect("at the credit");
        assert_eq!(
            recv.received(1),
            Err(FlowError::Overrun { got: 1, credit: 0 })
        );
    }

    #[test]
    fn a_window_update_is_sent_at_a_quarter_of_the_window_and_not_before() {
        let mut recv = RecvWindow::new(100);
        recv.received(100).expect("within");
        assert_eq!(recv.consumed(24), None);
        assert_eq!(recv.consumed(1), Some(25));
        assert_eq!(recv.outstanding(), 25);
    }

    #[test]
    fn a_grown_window_is_granted_at_once_and_still_checked_exactly() {
        let mut recv = RecvWindow::new(100);
        recv.received(100).expect("the whole initial window");
        assert_eq!(recv.grow(50), None, "never shrinks");
        assert_eq!(recv.grow(100), None, "the same window: nothing to grant");
        assert_eq!(recv.grow(300), Some(200), "the difference, at once");
        assert_eq!(recv.window(), 300);
        recv.received(200).expect("the new credit");
        assert_eq!(
            recv.received(1),
            Err(FlowError::Overrun { got: 1, credit: 0 }),
            "one byte past everything granted"
        );
        // WINDOW updates now come at a quarter of the larger window.
        assert_eq!(recv.consumed(74), None);
        assert_eq!(recv.consumed(1), Some(75));
    }

    #[test]
    fn credit_may_reach_the_maximum_but_not_pass_it() {
        let mut send = SendCredit::new(u32::MAX >> 1);
        assert_eq!(send.available(), MAX_CREDIT);
        assert_eq!(send.grant(1), Err(FlowError::CreditOverflow));
        assert_eq!(send.take(10), 10);
        send.grant(10).expect("back to the maximum");
    }
}
