//! One connection of a multiplexed stream, read and written like a socket.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::PollSemaphore;

use adit_stream_protocol::ResetCode;

use super::{Command, WRITE_BUDGET};

/// Largest write taken at once, in bytes (one DATA frame).
const WRITE_CHUNK: usize = adit_stream_protocol::frame::MAX_DATA;

/// What the mux task hands a connection's reader.
#[derive(Debug)]
pub(super) enum Delivery {
    /// Bytes the peer sent.
    Data(Bytes),
    /// The peer's FIN: end of file.
    Fin,
    /// The peer's RESET, with its code and reason.
    Reset(ResetCode, String),
}

/// One connection of a [`super::MuxSession`]. Reading returns what the peer sent, then end of
/// file after its FIN; after the peer's RESET, `ConnectionRefused` (code 1) or
/// `ConnectionReset` with the code and the peer's reason; when the whole session ended,
/// `ConnectionReset` saying why. Shutting down the write side sends FIN; dropping the stream
/// before both sides finished resets the connection.
#[derive(Debug)]
pub struct MuxStream {
    conn: u32,
    commands: mpsc::UnboundedSender<Command>,
    from_mux: mpsc::UnboundedReceiver<Delivery>,
    unread: Bytes,
    read_done: bool,
    budget: PollSemaphore,
    write_done: bool,
    why_ended: Arc<OnceLock<String>>,
}

impl MuxStream {
    pub(super) fn new(
        conn: u32,
        commands: mpsc::UnboundedSender<Command>,
        from_mux: mpsc::UnboundedReceiver<Delivery>,
        budget: Arc<Semaphore>,
        why_ended: Arc<OnceLock<String>>,
    ) -> Self {
        Self {
            conn,
            commands,
            from_mux,
            unread: Bytes::new(),
            read_done: false,
            budget: PollSemaphore::new(budget),
            write_done: false,
            why_ended,
        }
    }

    /// The connection's id in the stream.
    pub fn id(&self) -> u32 {
        self.conn
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() && !self.read_done {
            match ready!(self.from_mux.poll_recv(cx)) {
                Some(Delivery::Data(bytes)) => self.unread = bytes,
                Some(Delivery::Fin) => self.read_done = true,
                Some(Delivery::Reset(code, reason)) => {
                    self.read_done = true;
                    let kind = match code {
                        ResetCode::Refused => io::ErrorKind::ConnectionRefused,
                        _ => io::ErrorKind::ConnectionReset,
                    };
                    let why = format!("the peer reset the connection, {code}: {reason}");
                    return Poll::Ready(Err(io::Error::new(kind, why)));
                }
                None => {
                    let why = match self.why_ended.get() {
                        Some(why) => format!("the session ended: {why}"),
                        None => "the connection was reset".to_string(),
                    };
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, why)));
                }
            }
        }
        let n = self.unread.len().min(buf.remaining());
        if n > 0 {
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            // Credit goes back to the peer as the reader takes bytes.
            let _ = self.commands.send(Command::Consumed(self.conn, n));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the write side was shut down",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(WRITE_CHUNK).min(WRITE_BUDGET);
        let permits = u32::try_from(n).unwrap_or(u32::MAX);
        let Some(permit) = ready!(self.budget.poll_acquire_many(cx, permits)) else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream ended",
            )));
        };
        // The budget comes back when these bytes leave for the link.
        permit.forget();
        let sent = self
            .commands
            .send(Command::Data(self.conn, Bytes::copy_from_slice(&buf[..n])));
        if sent.is_err() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream ended",
            )));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_done {
            self.write_done = true;
            let _ = self.commands.send(Command::Fin(self.conn));
        }
        Poll::Ready(Ok(()))
    }
}

impl MuxStream {
    /// Gives the connection up with `code` and `reason` (at most 256 bytes are sent): what
    /// the peer's reader reads, for example [`ResetCode::Refused`] with the target that
    /// refused.
    pub fn reset(mut self, code: ResetCode, reason: &str) {
        let mut end = reason.len().min(adit_stream_protocol::frame::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self
            .commands
            .send(Command::Reset(self.conn, code, reason[..end].to_string()));
        // Sent: dropping it must not reset it a second time.
        self.write_done = true;
        self.read_done = true;
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        if !(self.write_done && self.read_done) {
            let _ = self.commands.send(Command::Reset(
                self.conn,
                ResetCode::Shutdown,
                "the local side closed".to_string(),
            ));
        }
    }
}
