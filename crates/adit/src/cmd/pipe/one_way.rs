//! One direction of a pipe: copy until the reader's end, flush, then shut the writer down.
//! Poll-based so one task can drive both directions over a single `&mut` stream, and count
//! what it wrote even when the copy ends with an error.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held between a read and the writes that pass them on.
const BUFFER: usize = 64 * 1024;

/// Which end of a direction failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source.
    Read(io::Error),
    /// Writing, flushing or shutting down the destination.
    Write(io::Error),
}

#[derive(Debug)]
pub struct OneWay {
    buf: Box<[u8]>,
    /// The unwritten part of `buf` is `pos..cap`.
    pos: usize,
    cap: usize,
    /// The source reached its end.
    eof: bool,
    /// Written since the last flush.
    unflushed: bool,
    /// The destination has been shut down: this direction is over.
    done: bool,
    /// Bytes the destination accepted.
    pub bytes: u64,
}

impl OneWay {
    pub fn new() -> Self {
        Self {
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            cap: 0,
            eof: false,
            unflushed: false,
            done: false,
            bytes: 0,
        }
    }

    /// True while bytes read from the source wait for the destination to take them.
    pub fn is_waiting_to_write(&self) -> bool {
        self.pos < self.cap
    }

    /// True once the destination has been shut down after the source's end.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Drives the copy; `Ready(Ok)` once the source ended and the destination is shut down.
    pub fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<Result<(), CopyError>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            while self.pos < self.cap {
                let n = ready!(
                    writer
                        .as_mut()
                        .poll_write(cx, &self.buf[self.pos..self.cap])
                )
                .map_err(CopyError::Write)?;
                if n == 0 {
                    return Poll::Ready(Err(CopyError::Write(io::ErrorKind::WriteZero.into())));
                }
                self.pos += n;
                self.bytes += n as u64;
                self.unflushed = true;
            }
            if self.eof {
                ready!(writer.as_mut().poll_flush(cx)).map_err(CopyError::Write)?;
                ready!(writer.as_mut().poll_shutdown(cx)).map_err(CopyError::Write)?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut self.buf);
            match reader.as_mut().poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    (self.pos, self.cap) = (0, n);
                    self.eof = n == 0;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(CopyError::Read(e))),
                Poll::Pending => {
                    // Nothing more to read now: push out what was written, so a keystroke
                    // does not wait in a buffer for the next one.
                    if self.unflushed {
                        ready!(writer.as_mut().poll_flush(cx)).map_err(CopyError::Write)?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn copies_then_shuts_the_writer_down_and_counts() {
        let (mut src_w, mut src_r) = tokio::io::duplex(1024);
        let (mut dst_w, mut dst_r) = tokio::io::duplex(1024);
        src_w.write_all(b"hello").await.expect("write");
        drop(src_w);
        let mut one = OneWay::new();
        std::future::poll_fn(|cx| one.poll(cx, Pin::new(&mut src_r), Pin::new(&mut dst_w)))
            .await
            .expect("copied");
        assert!(one.is_done());
        assert_eq!(one.bytes, 5);
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut dst_r, &mut out)
            .await
            .expect("read");
        assert_eq!(out, b"hello", "EOF arrived after the bytes: shut down");
    }

    #[tokio::test]
    async fn counts_what_was_written_before_a_write_error() {
        let (mut src_w, mut src_r) = tokio::io::duplex(1024);
        let (dst_w, dst_r) = tokio::io::duplex(1024);
        let mut dst_w = dst_w;
        src_w.write_all(b"abc").await.expect("write");
        let mut one = OneWay::new();
        // First pass: "abc" goes through, then the read is pending.
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(one.poll(cx, Pin::new(&mut src_r), Pin::new(&mut dst_w)))
        })
        .await;
        assert!(first.is_pending());
        drop(dst_r);
        src_w.write_all(b"de").await.expect("write");
        let err =
            std::future::poll_fn(|cx| one.poll(cx, Pin::new(&mut src_r), Pin::new(&mut dst_w)))
                .await
                .expect_err("the destination is gone");
        assert!(matches!(err, CopyError::Write(_)));
        assert_eq!(one.bytes, 3);
    }
}
