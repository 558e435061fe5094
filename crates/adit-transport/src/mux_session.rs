//! A multiplexed stream over one byte link (a gateway stream's [`crate::WsIo`]): the
//! [`adit_stream_protocol::Mux`] driven by one task, its connections handed out as
//! [`MuxStream`]s that read and write like sockets.
//!
//! Backpressure stays per connection: a writer may have at most [`WRITE_BUDGET`] bytes queued
//! and not yet on the link, and a reader holds at most the connection's window unread (the
//! peer cannot send more), so one slow socket never holds the others up.

mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use adit_stream_protocol::{Event, Mux, ResetCode, Role, Settings};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc, oneshot};

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
    Reset(u32),
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer broke the protocol.
    #[error(transparent)]
    Protocol(#[from] adit_stream_protocol::MuxError),
    /// The link failed.
    #[error("the link failed: {0}")]
    Link(String),
}

/// The task's end of one connection.
#[derive(Debug)]
struct Endpoint {
    to_reader: mpsc::UnboundedSender<Option<Bytes>>,
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
}

impl MuxSession {
    /// Runs a session over `link` on the current runtime; it ends when the link closes or
    /// fails, the peer breaks the protocol, or [`MuxSession::close`]. Dropping the handle
    /// leaves it running for its streams: what they queued still goes out.
    pub fn start<T>(link: T, role: Role, settings: Settings) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (ended_tx, ended) = oneshot::channel();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = Task {
            mux: Mux::new(role, settings),
            endpoints: HashMap::new(),
            commands: commands.clone(),
            incoming: incoming_tx,
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
        }
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
        MuxStream::new(conn, self.commands.clone(), from_mux, budget)
    }

    async fn run<T>(
        mut self,
        link: T,
        mut commands: mpsc::UnboundedReceiver<Command>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), SessionError>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(link);
        // The link's writer runs apart, so a link that is slow to take bytes never stops
        // this task from reading (which is what gives the peer its credit back).
        let (to_link, mut link_rx) = mpsc::channel::<Bytes>(1);
        let write_task = tokio::spawn(async move {
            while let Some(chunk) = link_rx.recv().await {
                writer.write_all(&chunk).await?;
                writer.flush().await?;
            }
            writer.shutdown().await
        });
        let mut inbound = BytesMut::with_capacity(LINK_CHUNK);
        let mut outbound: Option<Bytes> = None;
        let result = loop {
            if outbound.is_none() {
                let mut out = BytesMut::new();
                while out.len() < LINK_CHUNK && self.mux.poll_transmit(&mut out) {}
                self.return_budget();
                if !out.is_empty() {
                    outbound = Some(out.freeze());
                }
            }
            tokio::select! {
                permit = to_link.reserve(), if outbound.is_some() => {
                    let Ok(permit) = permit else {
                        break Err(SessionError::Link("the link's writer stopped".into()));
                    };
                    if let Some(chunk) = outbound.take() {
                        permit.send(chunk);
                    }
                }
                read = reader.read_buf(&mut inbound) => match read {
                    Ok(0) => break Ok(()),
                    Ok(_) => {
                        let events = match self.mux.receive(&mut inbound) {
                            Ok(events) => events,
                            Err(e) => break Err(e.into()),
                        };
                        for e in events {
                            self.dispatch(e);
                        }
                    }
                    Err(e) => break Err(SessionError::Link(e.to_string())),
                },
                () = stop.cancelled() => break Ok(()),
                command = commands.recv() => match command {
                    // Every handle is gone (the task holds a sender too, so only at the end).
                    None => break Ok(()),
                    Some(c) => self.command(c),
                },
            }
        };
        // Readers learn that their connections are over.
        self.endpoints.clear();
        drop(to_link);
        let _ = write_task.await;
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
            Command::Reset(conn) => {
                self.mux
                    .reset(conn, ResetCode::Shutdown, "the local side closed");
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
                    && e.to_reader.send(Some(bytes)).is_err()
                {
                    self.mux
                        .reset(conn, ResetCode::Shutdown, "the local side closed");
                    self.endpoints.remove(&conn);
                }
            }
            Event::Fin(conn) => {
                if let Some(e) = self.endpoints.get(&conn) {
                    let _ = e.to_reader.send(None);
                }
            }
            Event::Reset { conn, .. } => {
                // Dropping the sender ends the reader with an error.
                self.endpoints.remove(&conn);
            }
        }
    }
}

#[cfg(test)]
mod tests;
