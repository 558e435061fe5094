//! What makes a stream survive a reattach: each side keeps the bytes it sent until the peer
//! acknowledges them (ACK), and after a reattach replays from the position the peer says it
//! received (RESUME). Positions count the stream's bytes in one direction from its start.
//!
//! The buffer is bounded: a sender holds at most `capacity` unacknowledged bytes and waits for
//! ACKs past that ([`ReplayBuffer::room`]), so a long outage stalls the sender instead of
//! losing bytes. A RESUME outside what is kept means the two sides disagree about the stream:
//! [`ReplayError`], and the stream ends with that error.

use std::collections::VecDeque;

use bytes::Bytes;

/// Default capacity, in bytes per direction per stream.
pub const DEFAULT_CAPACITY: usize = 1024 * 1024;

/// Why a position from the peer cannot be honoured. The stream ends with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The peer claims bytes this side never sent.
    #[error("the peer says it received {position} bytes, but only {sent} were sent")]
    Ahead {
        /// The peer's position.
        position: u64,
        /// Bytes sent.
        sent: u64,
    },
    /// The peer asks for bytes already forgotten (it acknowledged them before).
    #[error("the peer asked to resume at {position}, before the kept bytes start at {kept_from}")]
    Forgotten {
        /// The peer's position.
        position: u64,
        /// First position still kept.
        kept_from: u64,
    },
}

/// Sent bytes not yet acknowledged, for one direction of one stream.
#[derive(Debug)]
pub struct ReplayBuffer {
    capacity: usize,
    /// Position of the first kept byte.
    start: u64,
    /// Kept chunks, in order, as they were sent.
    chunks: VecDeque<Bytes>,
    kept: usize,
}

impl ReplayBuffer {
    /// An empty buffer keeping at most `capacity` unacknowledged bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            start: 0,
            chunks: VecDeque::new(),
            kept: 0,
        }
    }

    /// Bytes sent so far (the position of the next byte).
    pub fn position(&self) -> u64 {
        self.start + self.kept as u64
    }

    /// Bytes kept, waiting for their ACK.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// How many more bytes may be sent before an ACK must come.
    pub fn room(&self) -> usize {
        self.capacity - self.kept.min(self.capacity)
    }

    /// Keeps `bytes`, just sent. The caller sends at most [`ReplayBuffer::room`]; more is kept
    /// anyway (nothing is dropped) and only delays the next send.
    pub fn sent(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.kept += bytes.len();
        self.chunks.push_back(bytes);
    }

    /// The peer received everything before `position`: forget it.
    ///
    /// # Errors
    /// [`ReplayError::Ahead`] when `position` is past what was sent. An old position (an ACK
    /// overtaken by a later one) is ignored.
    pub fn acknowledged(&mut self, position: u64) -> Result<(), ReplayError> {
        let sent = self.position();
        if position > sent {
            return Err(ReplayError::Ahead { position, sent });
        }
        let mut drop = usize::try_from(position.saturating_sub(self.start)).unwrap_or(usize::MAX);
        while drop > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= drop {
                drop -= front.len();
                self.kept -= front.len();
                self.start += front.len() as u64;
                self.chunks.pop_front();
            } else {
                let _ = front.split_to(drop);
                self.kept -= drop;
                self.start += drop as u64;
                drop = 0;
            }
        }
        Ok(())
    }

    /// After a reattach: forgets what the peer has (`position`) and returns what it lacks, in
    /// order, to send again before anything new.
    ///
    /// # Errors
    /// [`ReplayError::Ahead`] past what was sent; [`ReplayError::Forgotten`] before what is
    /// kept (the peer acknowledged those bytes already: it is confused or lying).
    pub fn resume_from(&mut self, position: u64) -> Result<Vec<Bytes>, ReplayError> {
        if position < self.start {
            return Err(ReplayError::Forgotten {
                position,
                kept_from: self.start,
            });
        }
        self.acknowledged(position)?;
        Ok(self.chunks.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A stream cut at any moment and resumed from what the receiver got delivers every
        /// byte exactly once, in order, whatever the chunking and the ACKs that made it.
        #[test]
        fn a_resumed_stream_is_exact(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..500), 1..60),
            delivered_frac in 0.0f64..=1.0,
            acked_frac in 0.0f64..=1.0,
        ) {
            let all: Vec<u8> = chunks.concat();
            let mut buf = ReplayBuffer::new(1 << 20);
            for c in &chunks {
                buf.sent(Bytes::from(c.clone()));
            }
            prop_assert_eq!(buf.position(), all.len() as u64);
            // The receiver got a prefix; it acknowledged part of it before the cut.
            let delivered = (all.len() as f64 * delivered_frac) as usize;
            let acked = (delivered as f64 * acked_frac) as usize;
            buf.acknowledged(acked as u64).expect("within");
            prop_assert_eq!(buf.kept(), all.len() - acked);
            let replay = buf.resume_from(delivered as u64).expect("within");
            let mut got = all[..delivered].to_vec();
            for r in replay {
                got.extend_from_slice(&r);
            }
            prop_assert_eq!(got, all);
        }
    }

    #[test]
    fn positions_outside_what_is_kept_are_errors() {
        let mut buf = ReplayBuffer::new(100);
        buf.sent(Bytes::from_static(b"0123456789"));
        assert_eq!(
            buf.acknowledged(11),
            Err(ReplayError::Ahead {
                position: 11,
                sent: 10
            })
        );
        buf.acknowledged(4).expect("within");
        assert_eq!(
            buf.resume_from(3),
            Err(ReplayError::Forgotten {
                position: 3,
                kept_from: 4
            })
        );
        assert_eq!(
            buf.resume_from(4).expect("at the start"),
            vec![Bytes::from_static(b"456789")]
        );
        buf.acknowledged(2).expect("an old ACK is ignored");
        assert_eq!(buf.kept(), 6);
    }

    #[test]
    fn room_runs_out_at_the_capacity_and_comes_back_with_acks() {
        let mut buf = ReplayBuffer::new(8);
        buf.sent(Bytes::from_static(b"12345678"));
        assert_eq!(buf.room(), 0, "at the capacity: wait for an ACK");
        buf.sent(Bytes::from_static(b"9"));
        assert_eq!(buf.room(), 0, "past it: nothing dropped, still waiting");
        buf.acknowledged(5).expect("within");
        assert_eq!(buf.room(), 4);
    }
}
