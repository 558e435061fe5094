//! Large socket reads beneath TLS.
//!
//! rustls asks its transport for at most 4 KiB at a time, so a 64 KiB WebSocket frame costs
//! sixteen `recv` calls on every TLS hop, and on a busy relay the system-call overhead costs
//! more than the copies. [`ReadAhead`] sits between the socket and rustls: when rustls asks for
//! a small read it reads up to `capacity` bytes in one call and hands them out from memory.
//!
//! The buffer exists only while bytes are flowing: it is taken when a read needs it and given
//! back as soon as the socket has nothing more to read and the buffer is empty, so an idle
//! connection holds no read-ahead memory. A capacity of zero passes every read straight
//! through. Writes always pass straight through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Read-ahead used for TLS transports that carry streams.
pub const STREAM_READ_AHEAD: usize = 64 * 1024;

/// A byte stream whose small reads are served from one larger read.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    capacity: usize,
    buf: BytesMut,
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`, reading up to `capacity` bytes at a time (zero: no read-ahead).
    pub fn new(inner: S, capacity: usize) -> Self {
        Self {
            inner,
            capacity,
            buf: BytesMut::new(),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Bytes read from the socket and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a read-ahead buffer is currently allocated.
    pub fn holds_buffer(&self) -> bool {
        self.buf.capacity() > 0
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            if out.remaining() >= this.capacity {
                // The caller's buffer is as large as ours: no point in going through ours.
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            this.buf.reserve(this.capacity);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                Poll::Pending => {
                    // Idle: give the memory back rather than hold it per connection.
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
                Poll::Ready(r) => {
                    r?;
                }
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}
