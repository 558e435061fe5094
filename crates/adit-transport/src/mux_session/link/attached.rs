//! One link while it is attached: what the mux task hands over goes to the link's writer,
//! what arrives is taken apart into frames, and ACK, RESUME, RESUMED, PING and PONG are
//! handled here.
//! DATA arriving and PONGs feed the session's [`adit_stream_protocol::BdpEstimator`], which
//! asks for PINGs and grows the window.

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
    /// What goes to the writer before the mux task's next chunk.
    out: Outgoing,
    /// Set on a link that replaced a failed one, until the peer's RESUMED answering this
    /// side's RESUME (or a RESUME of the peer's, which says the same) arrives on it.
    outage: Option<Outage>,
}

/// Messages waiting for the writer, in the order they go.
#[derive(Default)]
struct Outgoing {
    /// This side's RESUME or RESUMED: nothing may go before it (on the side that stayed, the
    /// hub drops what it sends until its RESUMED passes; on the side that came back, the
    /// peer's answer is what it waits for).
    resume: Option<Bytes>,
    /// PING and PONG: next after RESUME, ahead of replay and data, so a round trip measures
    /// the path rather than this side's queue; but never before this side's HELLO, the
    /// stream's first frame.
    urgent: VecDeque<Bytes>,
    /// ACKs and replayed data messages.
    queue: VecDeque<Bytes>,
}

impl Outgoing {
    fn is_empty(&self) -> bool {
        self.resume.is_none() && self.urgent.is_empty() && self.queue.is_empty()
    }

    /// Whether a message may go now; `hello_sent` says whether this side's first data
    /// message (its HELLO) went.
    fn ready(&self, hello_sent: bool) -> bool {
        self.resume.is_some() || (hello_sent && !self.urgent.is_empty()) || !self.queue.is_empty()
    }

    fn pop(&mut self, hello_sent: bool) -> Option<Bytes> {
        if let Some(resume) = self.resume.take() {
            return Some(resume);
        }
        if hello_sent && let Some(urgent) = self.urgent.pop_front() {
            return Some(urgent);
        }
        self.queue.pop_front()
    }
}

/// Longest a session's end may wait for its last messages to reach the link.
pub(crate) const FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// Starts using `link`; with `outage` set, it replaces a failed one and RESUME, with the
    /// next reattach number, goes first.
    pub(super) fn new(link: T, outage: Option<Outage>, core: &mut Core) -> Self {
        let (reader, writer) = tokio::io::split(link);
        let (to_writer, writer) = writer::spawn(writer);
        let mut out = Outgoing::default();
        if outage.is_some() {
            core.attach = core.attach.saturating_add(1);
            out.resume = Some(link_message(&Frame::Resume {
                attach: core.attach,
                position: core.acks.received(),
            }));
        }
        Self {
            reader,
            to_writer,
            writer,
            rx: BytesMut::new(),
            out,
            outage,
        }
    }

    pub(super) async fn turn(&mut self, core: &mut Core, outbound: &mut Option<Bytes>) -> Turn {
        // Right after this side's HELLO (nothing goes before it), before data queues up;
        // after a resume, once the peer's RESUME came. Should the PING be lost (a hub that
        // drops what comes before the peer joined), the estimator gives up on it in time.
        if core.idle_ping && self.outage.is_none() && core.replay.position() > 0 {
            core.idle_ping = false;
            if let Some(opaque) = core.bdp.on_idle(Instant::now().into_std()) {
                self.out
                    .urgent
                    .push_back(link_message(&Frame::Ping { opaque }));
            }
        }
        if self.out.is_empty()
            && self.outage.is_none()
            && let Some(position) = core.acks.take_due()
        {
            self.out
                .queue
                .push_back(link_message(&Frame::Ack { position }));
        }
        if self.rx.capacity() - self.rx.len() < frame::HEADER_LEN + frame::MAX_DATA {
            self.rx.reserve(READ_CHUNK);
        }
        // New data only while the peer is in step and the replay buffer has room: otherwise
        // the mux holds its bytes and its writers wait.
        let data = self.outage.is_none() && core.replay.room() > 0 && outbound.is_some();
        let hello_sent = core.replay.position() > 0;
        let sending = data || self.out.ready(hello_sent);
        let quiet_at = core.acks.quiet_at();
        let deadline = self.outage.as_ref().map(|o| o.deadline);
        tokio::select! {
            sent = send_next(&self.to_writer, &mut self.out, outbound, &mut core.replay, data),
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
                    // Nothing for the mux, unless the window grew: it raises its connections'.
                    Ok((frames, false)) if frames.is_empty() => Turn::Again,
                    Ok((frames, _)) => Turn::Event(LinkEvent::Frames(frames)),
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
        // Until the peer's RESUME, nothing but RESUME may go. PINGs and PONGs are of no use
        // any more: the session is ending.
        // Bounded: a link whose peer stopped reading (its network gone, the kernel's send
        // buffer full) would otherwise hold the session's end until TCP gives up, minutes.
        let mut writer = self.writer;
        let (to_writer, out, outage) = (self.to_writer, self.out, self.outage);
        let drained = tokio::time::timeout(FINISH_TIMEOUT, async {
            if everything && outage.is_none() {
                let Outgoing { resume, queue, .. } = out;
                for message in resume.into_iter().chain(queue) {
                    if to_writer.send(message).await.is_err() {
                        break;
                    }
                }
            }
            // Said explicitly: the writer ends without it when its link is abandoned.
            let _ = to_writer.send(writer::END_OF_INPUT).await;
            drop(to_writer);
            let _ = (&mut writer).await;
        })
        .await;
        if drained.is_err() {
            writer.abort();
        }
    }

    /// Takes the whole frames off the front of the read buffer and returns the mux's
    /// (dropped while the peer's RESUME is awaited: the peer sent them not knowing where this
    /// side stood, and its replay brings them again), and whether the window grew; link
    /// frames are handled here. A partial frame stays, and is lost with the link if it fails:
    /// it was never counted.
    fn take_frames(&mut self, core: &mut Core) -> Result<(BytesMut, bool), SessionError> {
        let mut frames = BytesMut::new();
        let mut grew = false;
        let now = Instant::now().into_std();
        while let Some(header) = peek_header(&self.rx, core.max_data).map_err(MuxError::from)? {
            let len = header.frame_len();
            if self.rx.len() < len {
                break;
            }
            let frame = self.rx.split_to(len);
            if header.kind.is_link() {
                grew |= self.link_frame(frame, now, core)?;
                continue;
            }
            if self.outage.is_some() {
                continue;
            }
            if header.kind == FrameType::Data
                && let Some(opaque) = core.bdp.on_data(now, header.len)
            {
                self.out
                    .urgent
                    .push_back(link_message(&Frame::Ping { opaque }));
            }
            core.acks.got(len);
            frames.unsplit(frame);
        }
        Ok((frames, grew))
    }

    /// Handles one whole link frame; returns whether it grew the window.
    fn link_frame(
        &mut self,
        mut frame: BytesMut,
        now: std::time::Instant,
        core: &mut Core,
    ) -> Result<bool, SessionError> {
        match frame::decode(&mut frame, core.max_data).map_err(MuxError::from)? {
            Some(Frame::Ack { position }) => core.replay.acknowledged(position)?,
            Some(Frame::Resume { attach, position }) => self.requested(attach, position, core)?,
            Some(Frame::Resumed { attach, position }) => self.answered(attach, position, core)?,
            // Before the peer's answer, PING and PONG belong to the old link: the peer forgets
            // its PING when it fails, and this side forgot its own.
            Some(Frame::Ping { .. } | Frame::Pong { .. }) if self.outage.is_some() => {}
            Some(Frame::Ping { opaque }) => {
                self.out
                    .urgent
                    .push_back(link_message(&Frame::Pong { opaque }));
            }
            Some(Frame::Pong { opaque }) => {
                if let Some(window) = core.bdp.on_pong(now, opaque) {
                    core.counters.set_window(window);
                    return Ok(true);
                }
            }
            other => {
                return Err(SessionError::Link(format!(
                    "expected a link frame, read {other:?}"
                )));
            }
        }
        Ok(false)
    }

    /// The peer's RESUME number `attach`: it reattached and has this side's first `position`
    /// bytes. Answered with RESUMED unless an answer to it or to a later one already went
    /// (a repeat cannot come through one hub, but costs nothing to refuse). If this side was
    /// itself awaiting an answer, this is as good as one: the peer drops everything until
    /// this side's RESUMED, so from here its stream starts at this side's position.
    fn requested(
        &mut self,
        attach: u32,
        position: u64,
        core: &mut Core,
    ) -> Result<(), SessionError> {
        if attach <= core.answered {
            return Ok(());
        }
        core.answered = attach;
        let missed = core.replay.resume_from(position)?;
        // Where this side stands goes before anything not yet handed to the writer; what was
        // queued is replayed below if the peer lacks it.
        self.out.resume = Some(link_message(&Frame::Resumed {
            attach,
            position: core.acks.received(),
        }));
        self.resumed(missed, core);
        Ok(())
    }

    /// The peer's RESUMED for this side's RESUME number `attach`: it has this side's first
    /// `position` bytes. Any other answer is stale, for a RESUME sent on a link that failed
    /// since: its replay would start where this side no longer stands, so it is dropped with
    /// all that follows it until the right one.
    fn answered(
        &mut self,
        attach: u32,
        position: u64,
        core: &mut Core,
    ) -> Result<(), SessionError> {
        if self.outage.is_none() || attach != core.attach {
            return Ok(());
        }
        let missed = core.replay.resume_from(position)?;
        self.resumed(missed, core);
        Ok(())
    }

    /// The stream is whole again: replay `missed`, and measure the path anew.
    fn resumed(&mut self, missed: Vec<Bytes>, core: &mut Core) {
        // A PING of this side's may have been dropped while the peer was away, and what was
        // counted for it spans the outage; PINGs and PONGs not yet sent answer the old link.
        core.bdp.forget();
        self.out.urgent.clear();
        // The shortest round trip is measured again, on the way the stream takes now.
        core.idle_ping = true;
        if let Some(lost) = self.outage.take() {
            core.counters.detached_for(lost.since.elapsed());
        }
        core.counters.resumed();
        // Replayed data queued before is in `missed` again if the peer lacks it.
        self.out.queue.clear();
        self.out.queue.extend(missed);
    }
}

/// Hands the writer the next message once it has room: link messages and replay first, then
/// the mux task's chunk when `data` allows it (kept for replay as it goes).
async fn send_next(
    to_writer: &mpsc::Sender<Bytes>,
    out: &mut Outgoing,
    outbound: &mut Option<Bytes>,
    replay: &mut ReplayBuffer,
    data: bool,
) -> Sent {
    let Ok(permit) = to_writer.reserve().await else {
        return Sent::WriterGone;
    };
    if let Some(message) = out.pop(replay.position() > 0) {
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

/// A link message: one ACK, RESUME, RESUMED, PING or PONG frame, alone.
fn link_message(frame: &Frame) -> Bytes {
    let mut b = BytesMut::new();
    frame.encode(&mut b);
    b.freeze()
}
