//! Message links for tests: what `WsIo` makes of a gateway WebSocket, in memory. Each write is
//! one message; a zero-length message is end of input; the far end vanishing without one is
//! an error, as a cut connection is. The far end ([`Wire`]) sees and sends whole messages, so
//! a test can play the hub or the peer frame by frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use adit_stream_protocol::frame::{self, Frame};
use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::mux_session::{Reattach, ReattachError};

/// A session's end of a message link.
#[derive(Debug)]
pub(crate) struct MsgLink {
    rx: mpsc::UnboundedReceiver<Bytes>,
    tx: Option<mpsc::UnboundedSender<Bytes>>,
    pending: Bytes,
    eof: bool,
}

/// The far end of a [`MsgLink`], message by message.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) tx: mpsc::UnboundedSender<Bytes>,
    pub(crate) rx: mpsc::UnboundedReceiver<Bytes>,
}

/// A new message link and its far end.
pub(crate) fn link() -> (MsgLink, Wire) {
    let (to_link, rx) = mpsc::unbounded_channel();
    let (tx, from_link) = mpsc::unbounded_channel();
    (
        MsgLink {
            rx,
            tx: Some(tx),
            pending: Bytes::new(),
            eof: false,
        },
        Wire {
            tx: to_link,
            rx: from_link,
        },
    )
}

impl AsyncRead for MsgLink {
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
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(m) if m.is_empty() => self.eof = true,
                Some(m) => self.pending = m,
                None => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "link cut",
                    )));
                }
            }
        }
    }
}

impl AsyncWrite for MsgLink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(Bytes::copy_from_slice(buf)));
        match sent {
            Some(Ok(())) => Poll::Ready(Ok(buf.len())),
            _ => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "link cut"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Bytes::new());
        }
        Poll::Ready(Ok(()))
    }
}

/// Every message on `wire` once the session had a second (of paused time) to send it.
pub(crate) async fn settle(wire: &mut Wire) -> Vec<Bytes> {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mut got = Vec::new();
    while let Ok(m) = wire.rx.try_recv() {
        got.push(m);
    }
    got
}

/// A [`Reattach`] handing out the links the test gives it, each after `offline`.
#[derive(Debug)]
pub(crate) struct Handed {
    links: mpsc::UnboundedReceiver<MsgLink>,
    offline: std::time::Duration,
}

/// A [`Handed`] and where the test gives it links.
pub(crate) fn handed(offline: std::time::Duration) -> (mpsc::UnboundedSender<MsgLink>, Handed) {
    let (give, links) = mpsc::unbounded_channel();
    (give, Handed { links, offline })
}

impl Reattach for Handed {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        tokio::time::sleep(self.offline).await;
        self.links
            .recv()
            .await
            .ok_or_else(|| ReattachError::Gone("no more links".into()))
    }
}

/// One frame's bytes.
pub(crate) fn encode(frame: &Frame) -> Bytes {
    let mut b = BytesMut::new();
    frame.encode(&mut b);
    b.freeze()
}

/// The frames in `message`, which must hold whole frames only.
pub(crate) fn frames(message: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(message);
    let mut out = Vec::new();
    while let Some(f) = frame::decode(&mut buf, frame::MAX_DATA).expect("valid frames") {
        out.push(f);
    }
    assert!(buf.is_empty(), "a message holds whole frames");
    out
}

/// The position in `message` if it is exactly one ACK frame.
pub(crate) fn ack(message: &[u8]) -> Option<u64> {
    match frames(message).as_slice() {
        [Frame::Ack { position }] => {
            assert_eq!(message.len(), 18, "an ACK travels alone");
            Some(*position)
        }
        _ => None,
    }
}

/// Whether `message` is a link message: exactly one ACK, RESUME, RESUMED, PING or PONG
/// frame, alone (not counted in positions, never replayed).
pub(crate) fn is_link(message: &[u8]) -> bool {
    match frames(message).as_slice() {
        [Frame::Ack { .. } | Frame::Ping { .. } | Frame::Pong { .. }] => {
            assert_eq!(message.len(), 18, "a link frame travels alone");
            true
        }
        [Frame::Resume { .. } | Frame::Resumed { .. }] => {
            assert_eq!(message.len(), 22, "a link frame travels alone");
            true
        }
        _ => false,
    }
}

/// The opaque in `message` if it is exactly one PING frame.
pub(crate) fn ping(message: &[u8]) -> Option<u64> {
    match frames(message).as_slice() {
        [Frame::Ping { opaque }] => {
            assert_eq!(message.len(), 18, "a PING travels alone");
            Some(*opaque)
        }
        _ => None,
    }
}

/// The opaque in `message` if it is exactly one PONG frame.
pub(crate) fn pong(message: &[u8]) -> Option<u64> {
    match frames(message).as_slice() {
        [Frame::Pong { opaque }] => {
            assert_eq!(message.len(), 18, "a PONG travels alone");
            Some(*opaque)
        }
        _ => None,
    }
}

/// The attach number and position in `message` if it is exactly one RESUME frame.
pub(crate) fn resume(message: &[u8]) -> Option<(u32, u64)> {
    match frames(message).as_slice() {
        [Frame::Resume { attach, position }] => {
            assert_eq!(message.len(), 22, "a RESUME travels alone");
            Some((*attach, *position))
        }
        _ => None,
    }
}

/// The attach number and position in `message` if it is exactly one RESUMED frame.
pub(crate) fn resumed(message: &[u8]) -> Option<(u32, u64)> {
    match frames(message).as_slice() {
        [Frame::Resumed { attach, position }] => {
            assert_eq!(message.len(), 22, "a RESUMED travels alone");
            Some((*attach, *position))
        }
        _ => None,
    }
}

/// A HELLO with the default frame size and `initial_window`.
pub(crate) fn hello(initial_window: u32) -> Frame {
    Frame::Hello {
        version: frame::VERSION,
        max_data: frame::MAX_DATA as u32,
        initial_window,
    }
}

/// Deterministic bytes that differ from any shifted copy of themselves, so a lost, repeated
/// or reordered piece shows.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
