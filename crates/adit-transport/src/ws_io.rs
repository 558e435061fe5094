//! A WebSocket carrying binary messages, seen as a byte stream.
//!
//! MQTT over WebSocket and Azure's device streams both put an ordered byte stream into
//! binary messages whose boundaries mean nothing. [`WsIo`] turns a
//! `tokio_websockets::WebSocketStream` into `AsyncRead + AsyncWrite` so the code above it
//! (the MQTT session, a TCP proxy) is the same whatever the transport.
//!
//! Reading yields the payloads of data messages in order (text is treated as bytes, as
//! Azure's SDKs ignore the frame type). A zero-length data frame or a Close message is EOF.
//! The connection ending without a Close (RFC 6455 §7.1.5: 1006, abnormal closure), even
//! cleanly at TCP and TLS level as a load balancer's idle timeout ends it, is an
//! `UnexpectedEof` error: nobody ended the stream, something cut it. Each non-empty write sends
//! one binary message.
//!
//! Half-close: Azure's protocol has no way to end one direction only, yet TCP does, and
//! request/response protocols rely on it. Adit uses the frame Azure's C# samples already send
//! at end of input: `poll_shutdown` sends one zero-length binary frame, and reading one is EOF.
//! The WebSocket stays open for the other direction; [`WsIo::close`] ends both.
//!
//! A Close with code 1000 reads as EOF; any other close code reads as a `ConnectionAborted`
//! error naming the code, so an aborted stream is never mistaken for a finished one.
//!
//! Keep-alive ([`WsIo::with_keepalive`]): after an interval in which nothing was received, a
//! Ping goes out; if nothing at all (a pong or any other frame) arrives within the timeout
//! after it, reads and writes fail with `TimedOut`, and a write blocked on the socket is woken
//! to fail too. The clock runs inside `poll_read`, so it needs a read pending, which a byte
//! pump always has while that direction is open: pings go out while the reader waits, and
//! only a reader can see the pong. A write that was blocked and then moves on counts as a sign
//! of life, because our ping may sit behind data a slow (but reading) peer has not reached.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf as _, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use crate::Keepalive;
use liveness::{Due, Liveness};

mod liveness;
#[cfg(test)]
mod tests;

/// `AsyncRead + AsyncWrite` over a WebSocket.
#[derive(Debug)]
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
    read_closed: bool,
    write_closed: bool,
    close: Option<(CloseCode, String)>,
    liveness: Option<Liveness>,
    /// Why keep-alive gave the peer up; every later read and write fails with it.
    dead: Option<String>,
    /// A write returned `Pending` and has not gone through since.
    write_blocked: bool,
    /// The task of that write, woken when keep-alive gives up so it fails at once.
    write_waker: Option<Waker>,
    /// The peer was told it broke the rules (1009, 1002) and may still be sending.
    violated: bool,
}

fn to_io(e: tokio_websockets::Error) -> io::Error {
    match e {
        // rustls says "peer closed connection without sending TLS close_notify" with a link to
        // its manual; what a user needs to know is that the other end vanished.
        tokio_websockets::Error::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection cut without a WebSocket Close (the peer or the network went away)",
            )
        }
        tokio_websockets::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<S> WsIo<S> {
    /// Wraps an established WebSocket, without keep-alive.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
            read_closed: false,
            write_closed: false,
            close: None,
            liveness: None,
            dead: None,
            write_blocked: false,
            write_waker: None,
            violated: false,
        }
    }

    /// Wraps an established WebSocket and pings it as `keepalive` says (see the module docs).
    /// The clock starts now.
    pub fn with_keepalive(ws: WebSocketStream<S>, keepalive: Keepalive) -> Self {
        let mut io = Self::new(ws);
        io.liveness = Some(Liveness::new(keepalive));
        io
    }

    /// The keep-alive in force, if any.
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.liveness.as_ref().map(Liveness::config)
    }

    /// The close code and reason the peer sent, once its Close has been read.
    pub fn peer_close(&self) -> Option<&(CloseCode, String)> {
        self.close.as_ref()
    }

    /// The WebSocket, for sending a Close with a chosen code.
    pub fn get_mut(&mut self) -> &mut WebSocketStream<S> {
        &mut self.ws
    }

    /// The error every operation returns once keep-alive has given the peer up.
    fn dead_error(&self) -> Option<io::Error> {
        self.dead
            .as_ref()
            .map(|why| io::Error::new(io::ErrorKind::TimedOut, why.clone()))
    }

    /// A write is waiting for the socket: remember whom to wake if the peer is given up.
    fn write_pending(&mut self, cx: &Context<'_>) {
        self.write_blocked = true;
        if self.liveness.is_some()
            && !self
                .write_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.write_waker = Some(cx.waker().clone());
        }
    }

    /// A write went through; if it had been blocked, the peer is reading.
    fn write_done(&mut self) {
        if std::mem::take(&mut self.write_blocked) {
            self.write_waker = None;
            if let Some(l) = &mut self.liveness {
                l.wrote();
            }
        }
    }

    /// Maps a write-side poll result, tracking whether the write is blocked.
    fn track_write<T>(
        &mut self,
        cx: &Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match &poll {
            Poll::Pending => self.write_pending(cx),
            Poll::Ready(_) => self.write_done(),
        }
        poll
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// Call before dropping a connection: when the peer was told it broke the rules (see
    /// `answer_violation`), flushes that Close and lingers
    /// ([`crate::lingering_close::lingering_close`]) so a peer still sending reads it instead
    /// of a reset. Otherwise returns at once.
    pub async fn linger_if_refused(&mut self) {
        if !self.violated {
            return;
        }
        let _ = tokio::time::timeout(
            crate::lingering_close::LINGER_TIME,
            futures_util::SinkExt::flush(&mut self.ws),
        )
        .await;
        crate::lingering_close::lingering_close(self.ws.get_mut()).await;
    }

    /// Ends both directions: a Close frame (1000), then the connection. Waits for the peer's
    /// Close in answer, so callers facing an unknown peer should bound it with a timeout.
    pub async fn close(&mut self) -> io::Result<()> {
        self.close_with(CloseCode::NORMAL_CLOSURE, "").await
    }

    /// Ends both directions with a Close of `code` (1011 for a failure on this side, say) and
    /// `reason`, cut to the 123 bytes a Close frame carries. Reserved codes (1005, 1006, ...)
    /// become 1011.
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        use futures_util::SinkExt as _;
        if let Some(e) = self.dead_error() {
            return Err(e);
        }
        // After the peer's Close, tokio-websockets has queued the answer itself; closing the
        // sink flushes it.
        if self.close.is_none() {
            let code = if code.is_reserved() {
                CloseCode::INTERNAL_SERVER_ERROR
            } else {
                code
            };
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            self.ws
                .send(Message::close(Some(code), &reason[..end]))
                .await
                .map_err(to_io)?;
        }
        self.ws.close().await.map_err(to_io)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// The peer sent what this side does not take (a message over the size limit, a protocol
    /// violation): tells it why with 1009 or 1002 before the error ends the connection, as far
    /// as one flush gets. tokio-websockets queues that Close itself for a bad frame, but not
    /// for fragments that add up past the limit; then it is queued here.
    fn answer_violation(&mut self, e: &tokio_websockets::Error, cx: &mut Context<'_>) {
        let (code, reason) = match e {
            tokio_websockets::Error::PayloadTooLong { max_len, .. } => (
                CloseCode::MESSAGE_TOO_BIG,
                format!("message over the limit of {max_len} bytes"),
            ),
            tokio_websockets::Error::Protocol(_) => {
                (CloseCode::PROTOCOL_ERROR, "protocol error".to_string())
            }
            _ => return,
        };
        self.violated = true;
        let mut ws = Pin::new(&mut self.ws);
        if let Poll::Ready(Ok(())) = ws.as_mut().poll_ready(cx) {
            let _ = ws.as_mut().start_send(Message::close(Some(code), &reason));
        }
        let _ = ws.poll_flush(cx);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead_error() {
            return Poll::Ready(Err(e));
        }
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.read_closed {
                return Poll::Ready(Ok(()));
            }
            let item = match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(item) => item,
                // Nothing to read: the moment to look at the keep-alive clock. Only here, so
                // frames already received count before the peer could be given up.
                Poll::Pending => match self.poll_liveness(cx) {
                    Poll::Ready(Ok(())) => continue,
                    other => return other,
                },
            };
            if let Some(l) = &mut self.liveness {
                l.heard();
            }
            match item {
                None => {
                    self.read_closed = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed without a WebSocket Close (1006: the peer, a proxy \
                         or a load balancer ended it)",
                    )));
                }
                Some(Err(e)) => {
                    self.answer_violation(&e, cx);
                    return Poll::Ready(Err(to_io(e)));
                }
                Some(Ok(msg)) => {
                    if msg.is_close() {
                        let close = msg
                            .as_close()
                            .map(|(code, reason)| (code, reason.to_string()));
                        self.read_closed = true;
                        self.close = close.clone();
                        // A normal close is the end of the stream; any other (the peer went
                        // away, the handshake deadline, a policy refusal) is an error, so a
                        // reader learns the stream broke rather than that it finished.
                        if let Some((code, reason)) = close
                            && code != CloseCode::NORMAL_CLOSURE
                        {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                format!("stream closed: {} {reason}", u16::from(code)),
                            )));
                        }
                    } else if msg.is_binary() || msg.is_text() {
                        if msg.as_payload().is_empty() {
                            // The peer's end of input (see the module docs).
                            self.read_closed = true;
                        } else {
                            self.pending = msg.into_payload().into();
                        }
                    }
                    // Ping and pong are answered by tokio-websockets itself.
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// `Ready(Ok)` after queuing a ping (the caller's next `poll_next` flushes it),
    /// `Ready(Err)` once the peer is given up, `Pending` with the timer registered otherwise.
    fn poll_liveness(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(liveness) = &mut self.liveness else {
            return Poll::Pending;
        };
        match ready!(liveness.poll_due(cx)) {
            Due::Ping => {
                // Queued without `poll_ready`, as tokio-websockets queues its own pongs:
                // `poll_ready` would flush with the reader's waker and could take over that
                // of a writer blocked in a flush. A ping is a few bytes; if the WebSocket is
                // already closing it is not sent, and the deadline still runs.
                let _ = Pin::new(&mut self.ws).start_send(Message::ping(Bytes::new()));
                Poll::Ready(Ok(()))
            }
            Due::Dead => {
                let why = format!(
                    "no pong from the peer within {} s of a ping: connection lost",
                    liveness.config().timeout().as_secs_f64()
                );
                self.dead = Some(why);
                if let Some(w) = self.write_waker.take() {
                    w.wake();
                }
                Poll::Ready(Err(self
                    .dead_error()
                    .unwrap_or_else(|| io::ErrorKind::TimedOut.into())))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.dead_error() {
            return Poll::Ready(Err(e));
        }
        let ready = Pin::new(&mut self.ws).poll_ready(cx).map_err(to_io);
        ready!(self.track_write(cx, ready))?;
        Pin::new(&mut self.ws)
            .start_send(Message::binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead_error() {
            return Poll::Ready(Err(e));
        }
        let flushed = Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io);
        self.track_write(cx, flushed)
    }

    /// Half-close: sends the zero-length end-of-input frame once; reading goes on.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead_error() {
            return Poll::Ready(Err(e));
        }
        if !self.write_closed {
            let ready = Pin::new(&mut self.ws).poll_ready(cx).map_err(to_io);
            ready!(self.track_write(cx, ready))?;
            Pin::new(&mut self.ws)
                .start_send(Message::binary(Bytes::new()))
                .map_err(to_io)?;
            self.write_closed = true;
        }
        let flushed = Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io);
        self.track_write(cx, flushed)
    }
}
