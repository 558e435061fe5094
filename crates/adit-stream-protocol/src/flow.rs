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
    /// least half the window has been consumed (fewer, larger updates), else `None`.
    pub fn consumed(&mut self, n: usize) -> Option<u32> {
        self.consumed += n as u64;
        if self.consumed * 2 < u64::from(self.window) {
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
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                (1usize..70_000).prop_map(Step::Send),
                (1usize..70_000).prop_map(Step::Read)
            ],
            0..200,
        )
    }

    proptest! {
        /// A sender that keeps to its credit never overruns the receiver, the receiver never
        /// holds more than its window unread, and every byte sent is eventually grantable
        /// again: nothing deadlocks once the reader reads.
        #[test]
        fn credit_and_window_agree(window in 1u32..300_000, steps in steps()) {
            let mut send = SendCredit::new(window);
            let mut recv = RecvWindow::new(window);
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
                }
                prop_assert!(unread + send.available() <= u64::from(window));
                prop_assert_eq!(send.available(), recv.outstanding());
            }
            // Reading everything always leaves the sender at least half a window: it can
            // always go on.
            if let Some(inc) = recv.consumed(unread as usize) {
                send.grant(inc).expect("no overflow");
            }
            prop_assert!(send.available() * 2 >= u64::from(window));
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
    fn a_window_update_is_sent_at_half_the_window_and_not_before() {
        let mut recv = RecvWindow::new(100);
        recv.received(100).expect("within");
        assert_eq!(recv.consumed(49), None);
        assert_eq!(recv.consumed(1), Some(50));
        assert_eq!(recv.outstanding(), 50);
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
