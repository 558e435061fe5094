//! The writer of one link, run apart from the mux task as before resumption: a link that is
//! slow to take bytes never stops the mux task from reading (which is what gives the peer its
//! credit back), and on a multi-core machine encrypting what leaves runs beside decrypting
//! what arrives.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Starts writing what comes through the returned sender, each buffer whole and flushed as
/// one message. An empty buffer ([`END_OF_INPUT`]) is the session's end: the link gets its
/// end of input (`shutdown`: a zero-length message on a WebSocket). The sender merely
/// dropped (the link abandoned after a failure) ends the writer without it: a failed link
/// must never tell the peer the session ended cleanly.
pub(super) fn spawn<W>(writer: W) -> (mpsc::Sender<Bytes>, JoinHandle<io::Result<()>>)
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    // One message waiting: with the one being written and the one the mux task gathered, a
    // small write queued now waits behind at most two bulk frames.
    let (tx, rx) = mpsc::channel(1);
    (tx, tokio::spawn(write(writer, rx)))
}

/// What [`Attached::finish`](super::attached) sends last: end of input.
pub(super) const END_OF_INPUT: Bytes = Bytes::new();

async fn write<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut messages: mpsc::Receiver<Bytes>,
) -> io::Result<()> {
    while let Some(message) = messages.recv().await {
        if message.is_empty() {
            return writer.shutdown().await;
        }
        writer.write_all(&message).await?;
        writer.flush().await?;
    }
    Ok(())
}
