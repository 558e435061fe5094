//! One side of a multiplexed stream, sans IO: connections, their flow control and the fair
//! order in which their bytes leave. The caller feeds what the link delivered to
//! [`Mux::receive`], takes what to send from [`Mux::poll_transmit`], and moves bytes between
//! its sockets and the connections.
//!
//! Control frames (HELLO, OPEN, OPENED, WINDOW, FIN, RESET) leave before DATA, in order; DATA
//! leaves one frame at a time in the [`Scheduler`]'s order, each within its connection's
//! credit. A connection's FIN follows its last DATA.
//!
//! Every connection's receive window starts at the HELLO's `initial_window` (what the peer
//! was promised) and follows the stream's window target ([`Mux::grow_window`], which the
//! caller takes from its [`crate::BdpEstimator`]): when the target grows, each connection
//! sends a WINDOW with the difference, and a connection opened later is raised to the target
//! by a WINDOW right after its OPEN or OPENED.

use std::collections::{HashMap, VecDeque};

use bytes::{Buf as _, Bytes, BytesMut};

use crate::flow::{RecvWindow, SendCredit};
use crate::frame::{self, Frame, FrameError, ResetCode};
use crate::schedule::Scheduler;

/// Which end of the stream this is: the service side opens connections (odd ids), the
/// device side accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens connections.
    Service,
    /// Accepts connections.
    Device,
}

/// This side's HELLO settings, and how far its receive window may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Largest DATA payload this side accepts, 1..=[`frame::MAX_DATA`].
    pub max_data: u32,
    /// Receive window each connection starts with, in bytes (HELLO's `initial_window`).
    pub initial_window: u32,
    /// Largest receive window the adaptive window ([`crate::bdp`]) grows each connection's
    /// to, in bytes (at most [`crate::flow::MAX_CREDIT`]). At or under `initial_window` the
    /// window is fixed ([`Settings::fixed`]).
    pub max_window: u32,
}

impl Settings {
    /// Default frames and a window fixed at `window` bytes: no adaptation, no PINGs.
    pub fn fixed(window: u32) -> Self {
        Self {
            initial_window: window,
            max_window: window,
            ..Self::default()
        }
    }

    /// Whether the receive window adapts to the path (`max_window` over `initial_window`).
    pub fn adaptive(&self) -> bool {
        self.max_window > self.initial_window
    }
}

impl Default for Settings {
    /// 16 KiB frames; a 64 KiB window per connection ([`crate::bdp::DEFAULT_INITIAL_WINDOW`],
    /// small so a short path keeps what a keystroke waits behind small) that adapts up to
    /// 16 MiB ([`crate::bdp::DEFAULT_MAX_WINDOW`]) on a long fat path.
    fn default() -> Self {
        Self {
            max_data: frame::MAX_DATA as u32,
            initial_window: crate::bdp::DEFAULT_INITIAL_WINDOW,
            max_window: crate::bdp::DEFAULT_MAX_WINDOW,
        }
    }
}

/// What the peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// (Device side) the peer opened `conn` to `target`: connect it, then [`Mux::accept`] or
    /// [`Mux::reset`].
    Open {
        /// Connection id.
        conn: u32,
        /// Target name (empty: the stream's own).
        target: Bytes,
    },
    /// (Service side) the device connected `conn`.
    Opened(u32),
    /// Bytes for `conn`'s socket; call [`Mux::consumed`] once they are written to it.
    Data(u32, Bytes),
    /// The peer sends no more on `conn`: half-close its socket.
    Fin(u32),
    /// `conn` is gone.
    Reset {
        /// Connection id.
        conn: u32,
        /// Why.
        code: ResetCode,
        /// Detail.
        reason: String,
    },
}

/// Why the stream as a whole cannot go on (it ends with WebSocket code 1002).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// A frame is malformed or over a limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The first frame was not HELLO, or HELLO came twice.
    #[error("the peer did not start with HELLO")]
    NoHello,
    /// The peer speaks another version.
    #[error("the peer speaks version {0}, this side 1")]
    Version(u16),
    /// An OPEN from the wrong side or with an id already used.
    #[error("the peer opened connection {0}, which it may not")]
    BadOpen(u32),
}

#[derive(Debug)]
struct Conn {
    send: SendCredit,
    recv: RecvWindow,
    pending: VecDeque<Bytes>,
    pending_len: usize,
    /// FIN asked for: sent once `pending` is empty.
    fin_wanted: bool,
    fin_sent: bool,
    peer_fin: bool,
}

/// One side of a multiplexed stream.
#[derive(Debug)]
pub struct Mux {
    role: Role,
    ours: Settings,
    /// The peer's HELLO, once received.
    peer: Option<Settings>,
    conns: HashMap<u32, Conn>,
    next_id: u32,
    /// Highest id the peer opened (ids only grow).
    peer_last: u32,
    schedule: Scheduler,
    control: VecDeque<Frame>,
    /// Receive window every connection grants now, in bytes: `ours.initial_window`, then
    /// what [`Mux::grow_window`] set.
    window: u32,
}

impl Mux {
    /// A new stream's side; HELLO is the first frame it sends.
    pub fn new(role: Role, ours: Settings) -> Self {
        let mut control = VecDeque::new();
        control.push_back(Frame::Hello {
            version: frame::VERSION,
            max_data: ours.max_data,
            initial_window: ours.initial_window,
        });
        Self {
            role,
            ours,
            peer: None,
            conns: HashMap::new(),
            next_id: 1,
            peer_last: 0,
            schedule: Scheduler::new(frame::MAX_DATA),
            control,
            window: ours.initial_window,
        }
    }

    fn new_conn(&self) -> Conn {
        let peer_window = self.peer.map_or(0, |p| p.initial_window);
        Conn {
            send: SendCredit::new(peer_window),
            recv: RecvWindow::new(self.ours.initial_window),
            pending: VecDeque::new(),
            pending_len: 0,
            fin_wanted: false,
            fin_sent: false,
            peer_fin: false,
        }
    }

    /// (Service side) opens a connection to `target`; returns its id. Bytes may be queued on
    /// it at once; they leave once the peer's HELLO gave the credit.
    pub fn open(&mut self, target: Bytes) -> u32 {
        let conn = self.next_id;
        self.next_id += 2;
        let c = self.new_conn();
        self.conns.insert(conn, c);
        self.control.push_back(Frame::Open { conn, target });
        self.raise(conn);
        conn
    }

    /// (Device side) `conn`'s target is connected.
    pub fn accept(&mut self, conn: u32) {
        if self.conns.contains_key(&conn) {
            self.control.push_back(Frame::Opened { conn });
            self.raise(conn);
        }
    }

    /// The receive window every connection grants now, in bytes.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Raises every connection's receive window to `window` bytes (the adaptive window grew):
    /// each sends a WINDOW with the difference at once, so its sender may use the extra
    /// credit now. Connections opened later start at the HELLO's `initial_window` (what the
    /// peer was promised) and are raised right after their OPEN or OPENED. A `window` not over
    /// the current one changes nothing: windows never shrink.
    pub fn grow_window(&mut self, window: u32) {
        if window <= self.window {
            return;
        }
        self.window = window;
        let mut ids: Vec<u32> = self.conns.keys().copied().collect();
        // In id order, so what goes on the wire does not depend on the map's order.
        ids.sort_unstable();
        for conn in ids {
            self.raise(conn);
        }
    }

    /// Brings `conn`'s receive window up to the stream's, sending the difference as WINDOW.
    /// Not for a connection whose peer finished sending: it has no use for credit.
    fn raise(&mut self, conn: u32) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.peer_fin {
            return;
        }
        if let Some(increment) = c.recv.grow(self.window) {
            self.control.push_back(Frame::Window { conn, increment });
        }
    }

    /// Queues `bytes` on `conn` (ignored once it was reset or finished). The caller bounds
    /// what it queues by [`Mux::pending`]: that is its socket's backpressure.
    pub fn send(&mut self, conn: u32, bytes: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if bytes.is_empty() || c.fin_wanted {
            return;
        }
        c.pending_len += bytes.len();
        c.pending.push_back(bytes);
        if c.send.available() > 0 {
            self.schedule.ready(conn);
        }
    }

    /// Bytes queued on `conn` and not yet sent.
    pub fn pending(&self, conn: u32) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.pending_len)
    }

    /// This side sends no more on `conn` (after what is queued).
    pub fn fin(&mut self, conn: u32) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.fin_wanted = true;
            if c.pending_len == 0 {
                self.finish(conn);
            }
        }
    }

    /// Ends `conn` both ways now; queued bytes are dropped.
    pub fn reset(&mut self, conn: u32, code: ResetCode, reason: &str) {
        if self.conns.remove(&conn).is_some() {
            self.schedule.remove(conn);
            self.control.push_back(Frame::Reset {
                conn,
                code,
                reason: reason.to_string(),
            });
        }
    }

    /// `n` bytes of `conn` reached its socket: credit goes back to the peer as needed.
    pub fn consumed(&mut self, conn: u32, n: usize) {
        if let Some(increment) = self.conns.get_mut(&conn).and_then(|c| c.recv.consumed(n)) {
            self.control.push_back(Frame::Window { conn, increment });
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn finish(&mut self, conn: u32) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.fin_sent {
            return;
        }
        c.fin_sent = true;
        self.control.push_back(Frame::Fin { conn });
        if c.peer_fin {
            self.conns.remove(&conn);
        }
    }

    /// Applies the whole frames at the front of `buf` (what the link delivered; a partial
    /// frame stays there) and returns what they mean.
    ///
    /// # Errors
    /// [`MuxError`]: the stream is broken and must end. Errors of one connection (flow
    /// control, frames for unknown ids) reset only that connection.
    pub fn receive(&mut self, buf: &mut BytesMut) -> Result<Vec<Event>, MuxError> {
        let mut events = Vec::new();
        loop {
            let max_data = self.ours.max_data as usize;
            let Some(f) = frame::decode(buf, max_data)? else {
                return Ok(events);
            };
            self.apply(f, &mut events)?;
        }
    }

    fn apply(&mut self, f: Frame, events: &mut Vec<Event>) -> Result<(), MuxError> {
        if self.peer.is_none() {
            let Frame::Hello {
                version,
                max_data,
                initial_window,
            } = f
            else {
                return Err(MuxError::NoHello);
            };
            if version != frame::VERSION {
                return Err(MuxError::Version(version));
            }
            let peer = Settings {
                max_data: max_data.min(frame::MAX_DATA as u32),
                initial_window,
                max_window: initial_window,
            };
            self.peer = Some(peer);
            // Connections opened before the peer's HELLO start with its window now.
            for (id, c) in &mut self.conns {
                c.send = SendCredit::new(initial_window);
                if c.pending_len > 0 {
                    self.schedule.ready(*id);
                }
            }
            return Ok(());
        }
        match f {
            Frame::Hello { .. } => return Err(MuxError::NoHello),
            Frame::Open { conn, target } => {
                if self.role != Role::Device || conn % 2 == 0 || conn <= self.peer_last {
                    return Err(MuxError::BadOpen(conn));
                }
                self.peer_last = conn;
                let c = self.new_conn();
                self.conns.insert(conn, c);
                events.push(Event::Open { conn, target });
            }
            Frame::Opened { conn } => {
                if self.conns.contains_key(&conn) {
                    events.push(Event::Opened(conn));
                }
            }
            Frame::Data { conn, payload } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    // A connection this side already reset: its in-flight bytes are dropped.
                    return Ok(());
                };
                if c.peer_fin {
                    self.reset(conn, ResetCode::Protocol, "DATA after FIN");
                    events.push(self.reset_event(conn, "DATA after FIN"));
                    return Ok(());
                }
                if let Err(e) = c.recv.received(payload.len()) {
                    let why = e.to_string();
                    self.reset(conn, ResetCode::Protocol, &why);
                    events.push(self.reset_event(conn, &why));
                    return Ok(());
                }
                events.push(Event::Data(conn, payload));
            }
            Frame::Window { conn, increment } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return Ok(());
                };
                if let Err(e) = c.send.grant(increment) {
                    let why = e.to_string();
                    self.reset(conn, ResetCode::Protocol, &why);
                    events.push(self.reset_event(conn, &why));
                    return Ok(());
                }
                if c.pending_len > 0 {
                    self.schedule.ready(conn);
                }
            }
            Frame::Fin { conn } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return Ok(());
                };
                c.peer_fin = true;
                if c.fin_sent {
                    self.conns.remove(&conn);
                }
                events.push(Event::Fin(conn));
            }
            Frame::Reset { conn, code, reason } => {
                if self.conns.remove(&conn).is_some() {
                    self.schedule.remove(conn);
                    events.push(Event::Reset { conn, code, reason });
                }
            }
            // Link frames belong to the layer below (the resumable link).
            Frame::Ack { .. }
            | Frame::Resume { .. }
            | Frame::Resumed { .. }
            | Frame::Ping { .. }
            | Frame::Pong { .. } => {}
        }
        Ok(())
    }

    fn reset_event(&self, conn: u32, why: &str) -> Event {
        Event::Reset {
            conn,
            code: ResetCode::Protocol,
            reason: why.to_string(),
        }
    }

    /// Appends the next frame to send to `out`; returns false when there is nothing to send
    /// now. Control frames first; then one DATA frame of the connection the scheduler picks.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if let Some(f) = self.control.pop_front() {
            f.encode(out);
            return true;
        }
        let Some(peer) = self.peer else {
            return false;
        };
        let max = peer.max_data as usize;
        let conns = &self.conns;
        let sendable = |conn: u32| {
            conns.get(&conn).map_or(0, |c| {
                let credit = usize::try_from(c.send.available()).unwrap_or(usize::MAX);
                c.pending_len.min(credit).min(max)
            })
        };
        let Some((conn, n)) = self.schedule.next(sendable) else {
            return false;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let n = c.send.take(n);
        let payload = take_front(&mut c.pending, n);
        c.pending_len -= payload.len();
        Frame::Data { conn, payload }.encode(out);
        let (more, credit, done) = (c.pending_len > 0, c.send.available() > 0, c.fin_wanted);
        if more && credit {
            self.schedule.ready(conn);
        }
        if !more && done {
            self.finish(conn);
        }
        true
    }
}

/// The first `n` bytes of `queue` as one buffer (copied only when they span chunks).
fn take_front(queue: &mut VecDeque<Bytes>, n: usize) -> Bytes {
    let Some(front) = queue.front_mut() else {
        return Bytes::new();
    };
    if front.len() >= n {
        let out = front.split_to(n);
        if front.is_empty() {
            queue.pop_front();
        }
        return out;
    }
    let mut out = BytesMut::with_capacity(n);
    while out.len() < n {
        let Some(front) = queue.front_mut() else {
            break;
        };
        let take = (n - out.len()).min(front.len());
        out.extend_from_slice(&front[..take]);
        front.advance(take);
        if front.is_empty() {
            queue.pop_front();
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests;
