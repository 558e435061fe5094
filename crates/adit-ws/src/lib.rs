//! A WebSocket carrying binary messages, seen as a byte stream.
//!
//! MQTT over WebSocket and Azure's device streams both put an ordered byte stream into
//! binary messages whose boundaries mean nothing. [`WsIo`] turns a
//! `tokio_websockets::WebSocketStream` into `AsyncRead + AsyncWrite` so the code above it
//! (the MQTT session, a TCP proxy) is the same whatever the transport.
//!
//! Reading yields the payloads of data messages in order (empty ones are skipped; text is
//! treated as bytes, as Azure's SDKs ignore the frame type); a Close message or the end of the
//! stream is EOF. Each write sends one binary message. Shutdown sends a Close.
#![warn(missing_docs)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{CloseCode, Message, WebSocketStream};

/// `AsyncRead + AsyncWrite` over a WebSocket.
#[derive(Debug)]
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
    read_closed: bool,
    close: Option<(CloseCode, String)>,
}

fn to_io(e: tokio_websockets::Error) -> io::Error {
    match e {
        tokio_websockets::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<S> WsIo<S> {
    /// Wraps an established WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
            read_closed: false,
            close: None,
        }
    }

    /// The close code and reason the peer sent, once its Close has been read.
    pub fn peer_close(&self) -> Option<&(CloseCode, String)> {
        self.close.as_ref()
    }

    /// The WebSocket, for sending a Close with a chosen code.
    pub fn get_mut(&mut self) -> &mut WebSocketStream<S> {
        &mut self.ws
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None => self.read_closed = true,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                Some(Ok(msg)) => {
                    if msg.is_close() {
                        self.close = msg
                            .as_close()
                            .map(|(code, reason)| (code, reason.to_string()));
                        self.read_closed = true;
                    } else if msg.is_binary() || msg.is_text() {
                        self.pending = msg.into_payload().into();
                    }
                    // Ping and pong are answered by tokio-websockets itself.
                }
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
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut self.ws)
            .start_send(Message::binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(to_io)
    }
}
