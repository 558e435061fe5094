//! A WebSocket carrying binary messages, seen as a byte stream.
//!
//! MQTT over WebSocket and Azure's device streams both put an ordered byte stream into
//! binary messages whose boundaries mean nothing. [`WsIo`] turns a
//! `tokio_websockets::WebSocketStream` into `AsyncRead + AsyncWrite` so the code above it
//! (the MQTT session, a TCP proxy) is the same whatever the transport.
//!
//! Reading yields the payloads of data messages in order (text is treated as bytes, as
//! Azure's SDKs ignore the frame type). A zero-length data frame, a Close message or the end of
//! the stream is EOF. Each non-empty write sends one binary message.
//!
//! Half-close: Azure's protocol has no way to end one direction only, yet TCP does, and
//! request/response protocols rely on it. Adit uses the frame Azure's C# samples already send
//! at end of input: `poll_shutdown` sends one zero-length binary frame, and reading one is EOF.
//! The WebSocket stays open for the other direction; [`WsIo::close`] ends both.
//!
//! A Close with code 1000 reads as EOF; any other close code reads as a `ConnectionAborted`
//! error naming the code, so an aborted stream is never mistaken for a finished one.

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
    write_closed: bool,
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
            write_closed: false,
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

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// Ends both directions: a Close frame (1000), then the connection.
    pub async fn close(&mut self) -> io::Result<()> {
        use futures_util::SinkExt as _;
        self.ws
            .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
            .await
            .map_err(to_io)?;
        self.ws.close().await.map_err(to_io)
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

    /// Half-close: sends the zero-length end-of-input frame once; reading goes on.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_closed {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
            Pin::new(&mut self.ws)
                .start_send(Message::binary(Bytes::new()))
                .map_err(to_io)?;
            self.write_closed = true;
        }
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }
}
