//! A multiplexed stream over one byte link (a gateway stream's [`crate::WsIo`]): the
//! [`adit_stream_protocol::Mux`] driven by one task, its connections handed out as
//! [`MuxStream`]s that read and write like sockets.
//!
//! Backpressure stays per connection: a writer may have at most [`WRITE_BUDGET`] bytes queued
//! and not yet on the link, and a reader holds at most the connection's window unread (the
//! peer cannot send more), so one slow socket never holds the others up.
//!
//! Under the mux, the link layer (`link`, driven by the same task) makes the stream survive a
//! dropped link, as `docs/stream-protocol.md` ("Resumption") says: it keeps what was sent
//! until the peer's ACK, and, given a [`Reattach`] ([`MuxSession::start_resumable`]), regains
//! a failed link and replays what the peer missed. Every session acknowledges and answers the
//! peer's RESUME, so either side may be the one that reattaches.
//!
//! Each connection's receive window adapts to the path (`docs/stream-protocol.md`, "Flow
//! control"): the link measures it with PING and PONG while DATA arrives, and the task grows
//! every connection's window as the estimate grows ([`SessionStats::window`]), unless the
//! [`Settings`] fix it.

mod link;
mod reattach;
mod stats;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use adit_stream_protocol::{BdpEstimator, Event, Mux, ReplayError, ResetCode, Role, Settings};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, oneshot};

use link::{Link, LinkEvent};
pub use reattach::{DEFAULT_GRACE, Reattach, ReattachError, ResumeOptions};
pub use stats::SessionStats;
use stream::Delivery;
pub use stream::MuxStream;

/// Bytes a connection's writer may have queued before it waits for the link.
pub const WRITE_BUDGET: usize = 256 * 1024;

/// Bytes gathered for the link at once: one DATA frame. With at most one chunk waiting for
/// the link's writer, a small write queued now leaves behind at most two bulk frames.
const LINK_CHUNK: usize = adit_stream_protocol::frame::MAX_DATA;

/// What a [`MuxStream`] or the [`MuxSession`] asks of the task.
#[derive(Debug)]
enum Command {
    Open {
        target: Bytes,
        reply: oneshot::Sender<MuxStream>,
    },
    Data(u32, Bytes),
    Consumed(u32, usize),
    Fin(u32),
    /// The connection is given up: the peer reads `code` and the reason.
    Reset(u32, ResetCode, String),
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer broke the protocol (WebSocket 1002 territory).
    #[error(transparent)]
    Protocol(#[from] adit_stream_protocol::MuxError),
    /// The link failed and the session had no [`Reattach`].
    #[error("the link failed: {0}")]
    Link(String),
    /// A position from the peer (ACK or RESUME) is past what this side sent or before what it
    /// still keeps: the two sides disagree about the stream, which cannot go on (WebSocket
    /// 1011 territory). The error names both positions.
    #[error("the stream is broken: {0}")]
    Broken(#[from] ReplayError),
    /// The link failed and was not regained, or the peer did not answer RESUME on the new one,
    /// within the resume grace since the failure.
    #[error(
        "the stream could not be resumed within the {} s resume grace: {why}",
        grace.as_secs_f64()
    )]
    GraceExpired {
        /// The grace ([`ResumeOptions::grace`]).
        grace: Duration,
        /// The failure, and what stood in the way of resuming.
        why: String,
    },
    /// The hub says the stream is over ([`ReattachError::Gone`]).
    #[error("the stream is gone: {0}")]
    Gone(String),
    /// The link was closed on purpose with a code other than 1000 (the hub ended the stream,
    /// for example because the other side did not come back within the grace): the text has
    /// the code and the reason. Not a failure to recover from: the session ends.
    #[error("{0}")]
    Closed(String),
}

/// The task's end of one connection.
#[derive(Debug)]
struct Endpoint {
    to_reader: mpsc::UnboundedSender<Delivery>,
    budget: Arc<Semaphore>,
    /// Bytes of this connection queued in the Mux when last looked at.
    queued: usize,
}

/// One side of a multiplexed stream; the service side opens connections with
/// [`MuxSession::open`], the device side takes them from [`MuxSession::accept`].
#[derive(Debug)]
pub struct MuxSession {
    commands: mpsc::UnboundedSender<Command>,
    stop: tokio_util::sync::CancellationToken,
    incoming: mpsc::UnboundedReceiver<(MuxStream, Bytes)>,
    ended: Option<oneshot::Receiver<Result<(), SessionError>>>,
    counters: Arc<stats::Counters>,
}

impl MuxSession {
    /// Runs a session over `link` on the current runtime; it ends when the peer ends it (the
    /// link reads end of input), the link fails, the peer breaks the protocol, or
    /// [`MuxSession::close`]. Dropping the handle leaves it running for its streams: what they
    /// queued still goes out. It keeps up to [`ResumeOptions::default`]'s replay capacity
    /// unacknowledged, and acknowledges and answers RESUME, so the peer may reattach; a
    /// failure of its own link ends it with [`SessionError::Link`].
    pub fn start<T>(link: T, role: Role, settings: Settings) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::launch(
            link,
            None::<reattach::NoReattach<T>>,
            role,
            settings,
            ResumeOptions::default(),
        )
    }

    /// As [`MuxSession::start`], but a link that fails (a read or write error; end of input is
    /// the peer ending the session) is regained through `reattach` within `options.grace`,
    /// and the stream resumes where each side stands, losing, repeating and reordering
    /// nothing. The session ends with [`SessionError::GraceExpired`] when the grace passes,
    /// [`SessionError::Gone`] when `reattach` says so, and [`SessionError::Broken`] when the
    /// peer's position does not fit what was sent. While detached, connections wait; none is
    /// reset.
    pub fn start_resumable<R: Reattach>(
        link: R::Link,
        reattach: R,
        role: Role,
        settings: Settings,
        options: ResumeOptions,
    ) -> Self {
        Self::launch(link, Some(reattach), role, settings, options)
    }

    fn launch<R: Reattach>(
        link: R::Link,
        reattach: Option<R>,
        role: Role,
        settings: Settings,
        options: ResumeOptions,
    ) -> Self {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (ended_tx, ended) = oneshot::channel();
        let stop = tokio_util::sync::CancellationToken::new();
        let counters = Arc::new(stats::Counters::default());
        let max_data = usize::try_from(settings.max_data).unwrap_or(usize::MAX);
        let bdp = BdpEstimator::new(settings.initial_window, settings.max_window);
        let link = Link::new(link, reattach, options, max_data, bdp, counters.clone());
        let task = Task {
            mux: Mux::new(role, settings),
            endpoints: HashMap::new(),
            commands: commands.clone(),
            incoming: incoming_tx,
            why_ended: Arc::default(),
        };
        let cancelled = stop.clone();
        tokio::spawn(async move {
            let result = task.run(link, commands_rx, cancelled).await;
            let _ = ended_tx.send(result);
        });
        Self {
            commands,
            stop,
            incoming,
            ended: Some(ended),
            counters,
        }
    }

    /// Resumptions so far, time spent detached and the receive window ([`SessionStats`]);
    /// cheap, never waits.
    pub fn stats(&self) -> SessionStats {
        self.counters.snapshot()
    }

    /// (Service side) opens a connection to `target` (empty: the stream's own). `None` once
    /// the session ended.
    pub async fn open(&self, target: Bytes) -> Option<MuxStream> {
        let (reply, stream) = oneshot::channel();
        self.commands.send(Command::Open { target, reply }).ok()?;
        stream.await.ok()
    }

    /// (Device side) the next connection the peer opened, with its target name; `None` once
    /// the session ended.
    pub async fn accept(&mut self) -> Option<(MuxStream, Bytes)> {
        self.incoming.recv().await
    }

    /// Ends the session now: the link is shut down, every stream reads a reset.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Waits for the session to end and says why (`Ok` when the link closed cleanly).
    pub async fn ended(&mut self) -> Result<(), SessionError> {
        match self.ended.take() {
            Some(rx) => rx
                .await
                .unwrap_or(Err(SessionError::Link("session task gone".into()))),
            None => Ok(()),
        }
    }
}

struct Task {
    mux: Mux,
    endpoints: HashMap<u32, Endpoint>,
    commands: mpsc::UnboundedSender<Command>,
    incoming: mpsc::UnboundedSender<(MuxStream, Bytes)>,
    /// Why the session failed, for the errors its connections read.
    why_ended: Arc<std::sync::OnceLock<String>>,
}

impl Task {
    fn endpoint(&mut self, conn: u32) -> MuxStream {
        let (to_reader, from_mux) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(WRITE_BUDGET));
        self.endpoints.insert(
            conn,
            Endpoint {
                to_reader,
                budget: budget.clone(),
                queued: 0,
            },
        );
        MuxStream::new(
            conn,
            self.commands.clone(),
            from_mux,
            budget,
            self.why_ended.clone(),
        )
    }

    async fn run<R: Reattach>(
        mut self,
        mut link: Link<R>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), SessionError> {
        // One chunk gathered at a time, held until the link takes it: with the one the link's
        // writer holds and the one it is writing, a small write queued now waits behind at
        // most two bulk frames.
        let mut outbound: Option<Bytes> = None;
        // Whether this side ended the session (what the link has queued still goes out).
        let (result, ours) = loop {
            if outbound.is_none() {
                let mut out = BytesMut::new();
                while out.len() < LINK_CHUNK && self.mux.poll_transmit(&mut out) {}
                self.return_budget();
                if !out.is_empty() {
                    outbound = Some(out.freeze());
                }
            }
            tokio::select! {
                event = link.next(&mut outbound) => match event {
                    LinkEvent::Taken => {}
                    // Whole frames only: the link hands nothing partial up.
                    LinkEvent::Frames(mut frames) => {
                        let events = match self.mux.receive(&mut frames) {
                            Ok(events) => events,
                            Err(e) => break (Err(e.into()), false),
                        };
                        for e in events {
                            self.dispatch(e);
                        }
                        // The PONGs among these frames may have grown the window: every
                        // connection gets the extra credit now.
                        self.mux.grow_window(link.window());
                    }
                    LinkEvent::Ended(result) => break (result, false),
                },
                () = stop.cancelled() => break (Ok(()), true),
                command = commands.recv() => match command {
                    // Every handle is gone (the task holds a sender too, so only at the end).
                    None => break (Ok(()), true),
                    Some(c) => self.command(c),
                },
            }
        };
        // Readers learn that their connections are over, and why: a clean end too, so a
        // connection cut by it never reads a bare "reset".
        let why = match (&result, ours) {
            (Err(e), _) => e.to_string(),
            (Ok(()), true) => "this side closed the session".to_string(),
            (Ok(()), false) => "the peer ended the session".to_string(),
        };
        let _ = self.why_ended.set(why);
        self.endpoints.clear();
        link.finish(ours).await;
        result
    }

    /// Gives each writer back the budget of the bytes that left for the link.
    fn return_budget(&mut self) {
        for (conn, e) in &mut self.endpoints {
            let now = self.mux.pending(*conn);
            if now < e.queued {
                e.budget.add_permits(e.queued - now);
            }
            e.queued = now;
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Open { target, reply } => {
                let conn = self.mux.open(target);
                let stream = self.endpoint(conn);
                let _ = reply.send(stream);
            }
            Command::Data(conn, bytes) => {
                self.mux.send(conn, bytes);
                if let Some(e) = self.endpoints.get_mut(&conn) {
                    e.queued = self.mux.pending(conn);
                }
            }
            Command::Consumed(conn, n) => self.mux.consumed(conn, n),
            Command::Fin(conn) => self.mux.fin(conn),
            Command::Reset(conn, code, reason) => {
                self.mux.reset(conn, code, &reason);
                self.endpoints.remove(&conn);
            }
        }
    }

    fn dispatch(&mut self, e: Event) {
        match e {
            Event::Open { conn, target } => {
                // The device side connects the target; here the stream is handed over and
                // accepted at once, the target's own refusal arriving as a reset.
                let stream = self.endpoint(conn);
                self.mux.accept(conn);
                if self.incoming.send((stream, target)).is_err() {
                    self.mux
                        .reset(conn, ResetCode::Refused, "nobody accepts connections");
                    self.endpoints.remove(&conn);
                }
            }
            Event::Opened(_) => {}
            Event::Data(conn, bytes) => {
                if let Some(e) = self.endpoints.get(&conn)
                    && e.to_reader.send(Delivery::Data(bytes)).is_err()
                {
                    self.mux
                        .reset(conn, ResetCode::Shutdown, "the local side closed");
                    self.endpoints.remove(&conn);
                }
            }
            Event::Fin(conn) => {
                if let Some(e) = self.endpoints.get(&conn) {
                    let _ = e.to_reader.send(Delivery::Fin);
                }
            }
            Event::Reset { conn, code, reason } => {
                if let Some(e) = self.endpoints.remove(&conn) {
                    let _ = e.to_reader.send(Delivery::Reset(code, reason));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
