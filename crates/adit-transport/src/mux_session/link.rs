//! The link under a session's multiplexer, driven by the mux task through [`Link::next`].
//!
//! It hands the mux task's chunks to the link's writer as data messages and keeps each in the
//! [`ReplayBuffer`] until the peer acknowledges it; it takes what arrives apart into whole
//! frames, returns the mux's (HELLO to RESET) unchanged and handles the link frames (ACK,
//! RESUME, PING, PONG) itself. Positions count the bytes of the mux's frames only, at
//! whole-frame granularity.
//!
//! It also measures the path for the adaptive receive window: while DATA arrives it sends
//! PINGs as the session's [`BdpEstimator`] asks and feeds it the DATA and the PONGs; the mux
//! task reads the window it arrives at ([`Link::window`]). The peer's PINGs are answered at
//! once, ahead of replay and data.
//!
//! When the link fails it regains one through the session's [`Reattach`] (if any), sends
//! RESUME with its reattach number and received position and drops what arrives until the
//! peer's RESUMED answering that number, then replays from the peer's position. A RESUME
//! arriving means the peer reattached: this side answers with RESUMED, then replays.
//! Meanwhile the mux goes on; its connections only wait.

mod ack;
mod attached;
mod writer;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adit_stream_protocol::{BdpEstimator, ReplayBuffer};
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::SessionError;
use super::reattach::{Outage, Reattach, ResumeOptions, regain};
use super::stats::Counters;
use ack::AckClock;
use attached::{Attached, Turn};

#[cfg(test)]
pub(super) use ack::{ACK_EVERY, ACK_QUIET};
#[cfg(test)]
pub(super) use attached::FINISH_TIMEOUT;

/// What the link has for the mux task.
#[derive(Debug)]
pub(super) enum LinkEvent {
    /// Whole mux frames received, in order (possibly none, when only the window grew: see
    /// [`Link::window`]).
    Frames(BytesMut),
    /// The chunk the mux task offered went to the link's writer: gather the next.
    Taken,
    /// The session is over on the link's side (the peer ended it, or it cannot go on); call
    /// [`Link::finish`].
    Ended(Result<(), SessionError>),
}

/// The link of one session, across reattaches.
pub(super) struct Link<R: Reattach> {
    core: Core,
    /// The way back after a failure: `None` for sessions without one, and while an attempt
    /// holds it.
    reattach: Option<R>,
    state: State<R>,
}

/// What outlives any one link: positions, the replay buffer, the counters.
struct Core {
    max_data: usize,
    grace: Duration,
    counters: Arc<Counters>,
    /// Data messages sent and not yet acknowledged.
    replay: ReplayBuffer,
    acks: AckClock,
    /// The adaptive receive window, across links (a PING in flight is forgotten at a failure
    /// and at the peer's RESUME).
    bdp: BdpEstimator,
    /// A PING is due while the link is still idle, to measure its own round trip: at the
    /// session's start and after each resume.
    idle_ping: bool,
    /// This side's reattaches so far: the number its latest RESUME carries.
    attach: u32,
    /// The peer's latest RESUME answered: an older or repeated one is stale.
    answered: u32,
}

/// An attempt to regain a link, owning the [`Reattach`] and giving it back.
type Regaining<R> =
    Pin<Box<dyn Future<Output = (R, Outage, Result<<R as Reattach>::Link, SessionError>)> + Send>>;

enum State<R: Reattach> {
    /// A link is in use (it may still be waiting for the peer's RESUME).
    Attached(Attached<R::Link>),
    /// The link failed at `since` and another is being sought.
    Detached {
        since: Instant,
        regaining: Regaining<R>,
    },
    /// The link is gone for good.
    Over,
}

impl<R: Reattach> Link<R> {
    /// The link of a new session; `max_data` is this side's HELLO limit, checked on every
    /// frame header before the payload is read; `bdp` estimates the receive window (fixed
    /// windows never ask for a PING).
    pub(super) fn new(
        link: R::Link,
        reattach: Option<R>,
        options: ResumeOptions,
        max_data: usize,
        bdp: BdpEstimator,
        counters: Arc<Counters>,
    ) -> Self {
        counters.set_window(bdp.window());
        let core = Core {
            max_data,
            grace: options.grace,
            counters,
            replay: ReplayBuffer::new(options.replay_capacity),
            acks: AckClock::default(),
            bdp,
            idle_ping: true,
            attach: 0,
            answered: 0,
        };
        let mut core = core;
        let attached = Attached::new(link, None, &mut core);
        Self {
            core,
            reattach,
            state: State::Attached(attached),
        }
    }

    /// The receive window every connection should grant now, in bytes. It only grows; the
    /// mux task reads it after each [`LinkEvent::Frames`].
    pub(super) fn window(&self) -> u32 {
        self.core.bdp.window()
    }

    /// Does the link's work until there is something for the mux task. `outbound` is the
    /// chunk the mux task gathered, if any: it is taken when the link can send it (attached,
    /// the peer in step, room in the replay buffer). Cancel-safe: the mux task's other work
    /// may interrupt it at any await.
    pub(super) async fn next(&mut self, outbound: &mut Option<Bytes>) -> LinkEvent {
        loop {
            let turn = match &mut self.state {
                State::Attached(a) => a.turn(&mut self.core, outbound).await,
                State::Detached { regaining, .. } => {
                    let (reattach, lost, regained) = regaining.as_mut().await;
                    self.reattach = Some(reattach);
                    match regained {
                        Ok(link) => {
                            let attached = Attached::new(link, Some(lost), &mut self.core);
                            self.state = State::Attached(attached);
                            Turn::Again
                        }
                        Err(e) => {
                            self.core.counters.detached_for(lost.since.elapsed());
                            self.state = State::Over;
                            Turn::Event(LinkEvent::Ended(Err(e)))
                        }
                    }
                }
                State::Over => return std::future::pending().await,
            };
            match turn {
                Turn::Event(e) => return e,
                Turn::Again => {}
                Turn::Failed(why) => {
                    if let Some(end) = self.fail(why) {
                        return end;
                    }
                }
            }
        }
    }

    /// The link failed: regain one, or end.
    fn fail(&mut self, why: String) -> Option<LinkEvent> {
        let State::Attached(a) = std::mem::replace(&mut self.state, State::Over) else {
            return None;
        };
        let outage = a.abandon();
        // The PING in flight went with the link, and what was counted for it would span the
        // outage.
        self.core.bdp.forget();
        let Some(mut reattach) = self.reattach.take() else {
            return Some(LinkEvent::Ended(Err(SessionError::Link(why))));
        };
        // A link that fails while the peer's RESUME is awaited is still the same outage,
        // with the same deadline.
        let lost = outage.unwrap_or_else(|| Outage::new(self.core.grace, why));
        self.state = State::Detached {
            since: lost.since,
            regaining: Box::pin(async move {
                let regained = regain(&mut reattach, &lost).await;
                (reattach, lost, regained)
            }),
        };
        None
    }

    /// Ends this side's use of the link. With `everything` (this side ended the session),
    /// what is queued goes out first; otherwise only what the writer already holds. Then the
    /// end of input (a zero-length message on a WebSocket), so the peer reads the session's
    /// end rather than a failure. A link that fails now only ends it sooner.
    pub(super) async fn finish(self, everything: bool) {
        match self.state {
            State::Attached(a) => a.finish(everything, &self.core.counters).await,
            State::Detached { since, .. } => self.core.counters.detached_for(since.elapsed()),
            State::Over => {}
        }
    }
}
