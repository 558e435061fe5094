//! Which connection's bytes go on the link next.
//!
//! Two classes. A connection with little waiting (at most [`INTERACTIVE_MAX`] bytes: a
//! keystroke, a prompt, a small request) is **interactive** and goes first, in arrival order.
//! The others are **bulk** and share the link by deficit round robin (Shreedhar and Varghese,
//! 1996): each turn a connection may send up to its deficit, refilled by a quantum of one DATA
//! frame, so every bulk connection gets an equal share whatever its frame sizes, and an SSH
//! keystroke never waits behind more than the one frame already on the link.
//!
//! The scheduler holds connection ids only; the caller owns the bytes and the credit, and says
//! how many bytes each connection could send now.

use std::collections::{HashMap, VecDeque};

/// Waiting bytes at or under which a connection counts as interactive.
pub const INTERACTIVE_MAX: usize = 1024;

/// The fair scheduler of one stream.
#[derive(Debug)]
pub struct Scheduler {
    quantum: usize,
    /// Connections with something to send, in round-robin order.
    ready: VecDeque<u32>,
    deficit: HashMap<u32, usize>,
    /// The bulk connection at the front that has had its quantum for this visit.
    credited: Option<u32>,
}

impl Scheduler {
    /// A scheduler whose bulk quantum is `quantum` bytes (one DATA frame: the peer's
    /// `max_data`).
    pub fn new(quantum: usize) -> Self {
        Self {
            quantum: quantum.max(1),
            ready: VecDeque::new(),
            deficit: HashMap::new(),
            credited: None,
        }
    }

    /// `conn` has bytes to send and credit to send them (call again whenever that becomes
    /// true; a connection already waiting keeps its place).
    pub fn ready(&mut self, conn: u32) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.deficit.entry(conn) {
            e.insert(0);
            self.ready.push_back(conn);
        }
    }

    /// `conn` is gone (closed or reset): it leaves the queue.
    pub fn remove(&mut self, conn: u32) {
        if self.deficit.contains_key(&conn) {
            self.ready.retain(|c| *c != conn);
            self.forget(conn);
        }
    }

    /// Drops what the scheduler knows of `conn` once it left the queue: it starts afresh
    /// (no saved deficit) when it is ready again, as DRR does for a flow whose queue emptied.
    fn forget(&mut self, conn: u32) {
        self.deficit.remove(&conn);
        if self.credited == Some(conn) {
            self.credited = None;
        }
    }

    /// Whether any connection waits.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// The next frame to send: `(connection, at most this many bytes)`. `sendable(conn)` is
    /// what `conn` could send now (its waiting bytes, capped by its credit and by one DATA
    /// frame); a connection that can send nothing leaves the queue until `ready` again.
    pub fn next(&mut self, mut sendable: impl FnMut(u32) -> usize) -> Option<(u32, usize)> {
        // Interactive first: the first waiting connection with little to send.
        let mut i = 0;
        while i < self.ready.len() {
            let conn = self.ready[i];
            let n = sendable(conn);
            if n == 0 || n <= INTERACTIVE_MAX {
                self.ready.remove(i);
                self.forget(conn);
                if n == 0 {
                    continue;
                }
                return Some((conn, n));
            }
            i += 1;
        }
        // Bulk: deficit round robin. The front connection gets one quantum per visit and
        // sends frames while its deficit covers them, then the next one's turn comes. Every
        // connection left has more than INTERACTIVE_MAX to send, and a frame is at most a
        // quantum, so a freshly credited connection always sends.
        loop {
            let conn = *self.ready.front()?;
            let n = sendable(conn);
            if n == 0 {
                self.ready.pop_front();
                self.forget(conn);
                continue;
            }
            let deficit = self.deficit.entry(conn).or_insert(0);
            if self.credited != Some(conn) {
                *deficit += self.quantum;
                self.credited = Some(conn);
            }
            if *deficit >= n {
                *deficit -= n;
                return Some((conn, n));
            }
            // Its share of this round is spent: the rest waits for its next visit.
            self.ready.rotate_left(1);
            self.credited = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_keystroke_goes_before_a_bulk_transfer_already_waiting() {
        let mut s = Scheduler::new(16 * 1024);
        let mut waiting: HashMap<u32, usize> = HashMap::from([(1, 10 << 20), (3, 1)]);
        s.ready(1);
        s.ready(3);
        let take = |s: &mut Scheduler, w: &mut HashMap<u32, usize>| {
            let (c, n) = s.next(|c| w[&c].min(16 * 1024)).expect("something waits");
            *w.get_mut(&c).expect("known") -= n;
            if w[&c] > 0 {
                s.ready(c);
            }
            (c, n)
        };
        assert_eq!(take(&mut s, &mut waiting), (3, 1), "the keystroke first");
        assert_eq!(take(&mut s, &mut waiting), (1, 16 * 1024));
        // A keystroke arriving now waits for at most the frame in flight.
        waiting.insert(5, 3);
        s.ready(5);
        assert_eq!(take(&mut s, &mut waiting), (5, 3));
    }

    proptest! {
        /// Bulk connections that always have more to send than a frame get equal shares of
        /// the link, within one quantum, over any number of turns.
        #[test]
        fn bulk_connections_share_the_link_equally(
            conns in 2usize..8,
            frame in 2_000usize..16_384,
            turns in 50usize..400,
        ) {
            let mut s = Scheduler::new(16_384);
            for c in 0..conns {
                s.ready(c as u32);
            }
            let mut sent = vec![0usize; conns];
            for _ in 0..turns {
                // Each connection's frames are its own size: fairness is in bytes.
                let (c, n) = s
                    .next(|c| (frame * (c as usize + 1) / conns).clamp(INTERACTIVE_MAX + 1, 16_384))
                    .expect("always ready");
                sent[c as usize] += n;
                s.ready(c);
            }
            let (min, max) = (sent.iter().min().copied().unwrap_or(0), sent.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 2 * 16_384, "shares {:?}", sent);
        }

        /// Whatever the mix, every byte a connection asks to send is scheduled, no connection
        /// is served more than it could send, and a connection with nothing to send leaves.
        #[test]
        fn everything_waiting_is_sent_exactly(
            wants in proptest::collection::vec(1usize..100_000, 1..10),
        ) {
            let mut s = Scheduler::new(16_384);
            let mut left = wants.clone();
            for c in 0..left.len() {
                s.ready(c as u32);
            }
            let mut rounds = 0;
            while let Some((c, n)) = s.next(|c| left[c as usize].min(16_384)) {
                prop_assert!(n >= 1 && n <= left[c as usize].min(16_384));
                left[c as usize] -= n;
                if left[c as usize] > 0 {
                    s.ready(c);
                }
                rounds += 1;
                prop_assert!(rounds < 10_000);
            }
            prop_assert!(left.iter().all(|l| *l == 0));
            prop_assert!(s.is_empty());
        }
    }
}
