//! One link while it is attached: what the mux task hands over goes to the link's writer,
//! what arrives is taken apart into frames, and ACK and RESUME are answered here.

use std::collections::VecDeque;
use std::io;

use adit_stream_protocol::frame::{self, Frame, FrameType, peek_header};
use adit_stream_protocol::{MuxError, ReplayBuffer};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::{Core, LinkEvent, writer};
use crate::mux_session::SessionError;
use crate::mux_session::reattach::Outage;
use crate::mux_session::stats::Counters;

/// Room the link's read buffer gets when it runs low, in bytes (four DATA frames).
const READ_CHUNK: usize = 64 * 1024;

/// One link, attached.
pub(super) struct Attached<T> {
    reader: ReadHalf<T>,
    to_writer: mpsc::Sender<Bytes>,
    writer: JoinHandle<io::Result<()>>,
    rx: BytesMut,
    /// Link messages and replayed data messages, to write before anything new.
    queue: VecDeque<Bytes>,
    /// Set on a link that replaced a failed one, until the peer's RESUME arrives on it.
    outage: Option<Outage>,
}

/// What one turn on an attached link came to.
pub(super) enum Turn {
    /// Something for the mux task.
    Event(LinkEvent),
    /// Work done; take another turn.
    Again,
    /// The link failed, for this reason.
    Failed(String),
}

/// What a turn handed to the writer.
enum Sent {
    /// A link message or replayed data.
    Message,
    /// The mux task's chunk.
    Chunk,
    /// Nothing was due after all.
    Nothing,
    /// The writer has stopped: the link failed.
    WriterGone,
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Attached<T> {
    /// Starts using `link`; with `outage` set, it replaces a failed one and RESUME goes first.
    pub(super) fn new(link: T, outage: Option<Outage>, core: &Core) -> Self {
        let (reader, writer) = tokio::io::split(link);
        let (to_writer, writer) = writer::spawn(writer);
        let mut queue = VecDeque::new();
        if outage.is_some() {
            queue.push_back(link_message(&Frame::Resume {
                position: core.acks.received(),
            }));
        }
        Self {
            reader,
            to_writer,
            writer,
            rx: BytesMut::new(),
            queue,
            outage,
        }
    }

    pub(super) async fn turn(&mut self, core: &mut Core, outbound: &mut Option<Bytes>) -> Turn {
        if self.queue.is_empty()
            && self.outage.is_none()
            && let Some(position) = core.acks.take_due()
        {
            self.queue.push_back(link_message(&Frame::Ack { position }));
        }
        if self.rx.capacity() - self.rx.len() < frame::HEADER_LEN + frame::MAX_DATA {
            self.rx.reserve(READ_CHUNK);
        }
        // New data only while the peer is in step and the replay buffer has room: otherwise
        // the mux holds its bytes and its writers wait.
        let data = self.outage.is_none() && core.replay.room() > 0 && outbound.is_some();
        let sending = data || !self.queue.is_empty();
        let quiet_at = core.acks.quiet_at();
        let deadline = self.outage.as_ref().map(|o| o.deadline);
        tokio::select! {
            sent = send_next(&self.to_writer, &mut self.queue, outbound, &mut core.replay, data),
                if sending => match sent {
                Sent::Chunk => Turn::Event(LinkEvent::Taken),
                Sent::Message | Sent::Nothing => Turn::Again,
                Sent::WriterGone => Turn::Failed(writer_end((&mut self.writer).await)),
            },
            written = &mut self.writer => Turn::Failed(writer_end(written)),
            read = self.reader.read_buf(&mut self.rx) => match read {
                // The peer's end of input or a normal close: it ended the session.
                Ok(0) => Turn::Event(LinkEvent::Ended(Ok(()))),
                Ok(_) => match self.take_frames(core) {
                    Ok(frames) if frames.is_empty() => Turn::Again,
                    Ok(frames) => Turn::Event(LinkEvent::Frames(frames)),
                    Err(e) => Turn::Event(LinkEvent::Ended(Err(e))),
                },
                // A Close with a code (`WsIo` reads it as ConnectionAborted): the hub or the
                // peer ended the stream on purpose, and coming back would only be refused.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {
                    Turn::Event(LinkEvent::Ended(Err(SessionError::Closed(e.to_string()))))
                }
                Err(e) => Turn::Failed(format!("reading: {e}")),
            },
            () = sleep_until(quiet_at.unwrap_or_else(Instant::now)), if quiet_at.is_some() => {
                core.acks.went_quiet();
                Turn::Again
            }
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let why = "the link was regained, but the peer did not answer RESUME";
                Turn::Event(LinkEvent::Ended(Err(match &self.outage {
                    Some(lost) => lost.expired(why),
                    None => SessionError::Link(why.into()),
                })))
            }
        }
    }

    /// The link failed: what it held is gone with it (a partial frame was never counted, and
    /// the replay buffer has every data message the peer may lack). Returns the outage it
    /// was meant to end, if any.
    pub(super) fn abandon(self) -> Option<Outage> {
        self.writer.abort();
        self.outage
    }

    /// Ends this side's use of the link: with `everything`, what is queued goes out first;
    /// otherwise only what the writer already holds. Then the end of input.
    pub(super) async fn finish(self, everything: bool, counters: &Counters) {
        if let Some(lost) = &self.outage {
            counters.detached_for(lost.since.elapsed());
        }
        // Until the peer's RESUME, nothing but RESUME may go.
        if everything && self.outage.is_none() {
            for message in self.queue {
                if self.to_writer.send(message).await.is_err() {
                    break;
                }
            }
        }
        drop(self.to_writer);
        let _ = self.writer.await;
    }

    /// Takes the whole frames off the front of the read buffer and returns the mux's
    /// (dropped while the peer's RESUME is awaited: the peer sent them not knowing where this
    /// side stood, and its replay brings them again); ACK and RESUME are handled here. A
    /// partial frame stays, and is lost with the link if it fails: it was never counted.
    fn take_frames(&mut self, core: &mut Core) -> Result<BytesMut, SessionError> {
        let mut frames = BytesMut::new();
        while let Some(header) = peek_header(&self.rx, core.max_data).map_err(MuxError::from)? {
            let len = header.frame_len();
            if self.rx.len() < len {
                break;
            }
            let frame = self.rx.split_to(len);
            match header.kind {
                FrameType::Ack => core.replay.acknowledged(position(frame, core.max_data)?)?,
                FrameType::Resume => self.resume(position(frame, core.max_data)?, core)?,
                _ if self.outage.is_some() => {}
                _ => {
                    core.acks.got(len);
                    frames.unsplit(frame);
                }
            }
        }
        Ok(frames)
    }

    /// The peer's RESUME: it has this side's first `position` bytes.
    fn resume(&mut self, position: u64, core: &mut Core) -> Result<(), SessionError> {
        let missed = core.replay.resume_from(position)?;
        match self.outage.take() {
            // The answer to this side's RESUME: the stream is whole again.
            Some(lost) => core.counters.detached_for(lost.since.elapsed()),
            // The peer reattached while this side's link held: where this side stands goes
            // before anything not yet handed to the writer. What was queued is replayed
            // below if the peer lacks it.
            None => {
                self.queue.clear();
                self.queue.push_back(link_message(&Frame::Resume {
                    position: core.acks.received(),
                }));
            }
        }
        core.counters.resumed();
        self.queue.extend(missed);
        Ok(())
    }
}

/// Hands the writer the next message once it has room: link messages and replay first, then
/// the mux task's chunk when `data` allows it (kept for replay as it goes).
async fn send_next(
    to_writer: &mpsc::Sender<Bytes>,
    queue: &mut VecDeque<Bytes>,
    outbound: &mut Option<Bytes>,
    replay: &mut ReplayBuffer,
    data: bool,
) -> Sent {
    let Ok(permit) = to_writer.reserve().await else {
        return Sent::WriterGone;
    };
    if let Some(message) = queue.pop_front() {
        permit.send(message);
        return Sent::Message;
    }
    match outbound.take() {
        Some(chunk) if data => {
            replay.sent(chunk.clone());
            permit.send(chunk);
            Sent::Chunk
        }
        other => {
            *outbound = other;
            Sent::Nothing
        }
    }
}

/// Why the writer stopped, as a link failure.
fn writer_end(ended: Result<io::Result<()>, tokio::task::JoinError>) -> String {
    match ended {
        Ok(Ok(())) => "the link's writer stopped".into(),
        Ok(Err(e)) => format!("writing: {e}"),
        Err(e) => format!("the link's writer failed: {e}"),
    }
}

/// A link message: one ACK or RESUME frame, alone.
fn link_message(frame: &Frame) -> Bytes {
    let mut b = BytesMut::new();
    frame.encode(&mut b);
    b.freeze()
}

/// The position in a whole ACK or RESUME frame.
fn position(mut frame: BytesMut, max_data: usize) -> Result<u64, SessionError> {
    match frame::decode(&mut frame, max_data).map_err(MuxError::from)? {
        Some(Frame::Ack { position } | Frame::Resume { position }) => Ok(position),
        other => Err(SessionError::Link(format!(
            "expected ACK or RESUME, read {other:?}"
        ))),
    }
}
