//! The keep-alive clock of one [`super::WsIo`]: when the next ping is due, and when a peer
//! that has not answered is given up.
//!
//! The clock is lazy: receiving a frame only records the time, and the one timer is re-armed
//! when it fires, so a busy connection costs a clock read per frame, not a timer-wheel update.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

use crate::Keepalive;

/// What the clock asks of the connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// Nothing received for an interval: send a ping.
    Ping,
    /// A ping went unanswered past its deadline, and no blocked write moved either.
    Dead,
}

#[derive(Debug)]
pub(super) struct Liveness {
    config: Keepalive,
    /// Created on first poll rather than in the constructor, so wrapping a WebSocket needs no
    /// runtime; boxed because `Sleep` is not `Unpin` and `WsIo` must be.
    timer: Option<Pin<Box<Sleep>>>,
    last_heard: Instant,
    /// When the unanswered ping went out.
    ping_sent: Option<Instant>,
    /// When a write that had been blocked last moved on: proof the peer is reading even if
    /// our ping is still queued behind data it has not reached.
    write_progress: Option<Instant>,
}

impl Liveness {
    pub(super) fn new(config: Keepalive) -> Self {
        Self {
            config,
            timer: None,
            last_heard: Instant::now(),
            ping_sent: None,
            write_progress: None,
        }
    }

    pub(super) fn config(&self) -> Keepalive {
        self.config
    }

    /// Something (a pong, a ping, data, a close) arrived.
    pub(super) fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.ping_sent = None;
    }

    /// A write that had been waiting for the socket went through.
    pub(super) fn wrote(&mut self) {
        self.write_progress = Some(Instant::now());
    }

    fn deadline(&self) -> Instant {
        match self.ping_sent {
            None => self.last_heard + self.config.interval(),
            Some(sent) => {
                let alive = self.write_progress.map_or(sent, |p| p.max(sent));
                alive + self.config.timeout()
            }
        }
    }

    /// Ready when a ping is due or the peer is given up; registers `cx` otherwise.
    pub(super) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Due> {
        loop {
            let deadline = self.deadline();
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if deadline < timer.deadline() {
                // Moved earlier (a pong ended the wait for it, and the next ping is due
                // before the pong deadline would have been): re-arm now.
                timer.as_mut().reset(deadline);
            }
            ready!(timer.as_mut().poll(cx));
            if timer.deadline() < deadline {
                // Fired for a deadline that has since moved on (something was heard, or a
                // blocked write moved): wait for the new one.
                timer.as_mut().reset(deadline);
                continue;
            }
            return Poll::Ready(match self.ping_sent {
                Some(_) => Due::Dead,
                None => {
                    // From now, not from when the ping was due: a reader that was not polled
                    // for a while must still give the peer the whole timeout to answer.
                    self.ping_sent = Some(Instant::now());
                    Due::Ping
                }
            });
        }
    }
}
