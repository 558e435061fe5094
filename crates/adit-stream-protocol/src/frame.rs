//! Frames of `adit.stream.v1` and their byte form (the spec: `docs/stream-protocol.md`).
//!
//! A frame is a 10-byte header and a payload, all integers big-endian:
//!
//! ```text
//! type: u8 | flags: u8 (0) | connection: u32 | length: u32 | payload: length bytes
//! ```
//!
//! Frames follow each other in one byte stream (the gateway stream's WebSocket carried as a
//! byte stream), so a reader may hold part of one: [`decode`] takes whole frames off the front
//! of a buffer and leaves the rest. Every length is checked against a limit before anything
//! is allocated.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

/// Header length in bytes.
pub const HEADER_LEN: usize = 10;

/// Largest DATA payload a peer may send unless HELLO lowers it: 16 KiB, so one connection's
/// frame never holds the link long ahead of another's (fair scheduling works in these units).
pub const MAX_DATA: usize = 16 * 1024;

/// Largest payload of any other frame type, in bytes.
pub const MAX_CONTROL: usize = 512;

/// Longest target name in OPEN, in bytes (as a stream name: Azure allows 128 characters).
pub const MAX_TARGET: usize = 128;

/// Longest reason text in RESET, in bytes.
pub const MAX_REASON: usize = 256;

/// Payload length of RESUME and RESUMED, in bytes: attach u32, position u64.
pub const RESUME_LEN: usize = 12;

/// Protocol version this crate speaks (HELLO's `version`).
pub const VERSION: u16 = 1;

/// The WebSocket subprotocol that selects this protocol on a gateway stream.
pub const SUBPROTOCOL: &str = "adit.stream.v1";

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame each side sends on a new stream: the version it speaks, the largest DATA
    /// payload it accepts and the window each new connection starts with in both directions.
    Hello {
        /// Protocol version ([`VERSION`]).
        version: u16,
        /// Largest DATA payload this side accepts, 1..=[`MAX_DATA`].
        max_data: u32,
        /// Initial receive window of every connection, in bytes (>= 1).
        initial_window: u32,
    },
    /// Opens connection `conn` (opened by the service side: odd ids) to `target` (empty: the
    /// stream's own target).
    Open {
        /// Connection id, nonzero.
        conn: u32,
        /// Target name, at most [`MAX_TARGET`] bytes.
        target: Bytes,
    },
    /// The device side connected `conn` to its target.
    Opened {
        /// Connection id.
        conn: u32,
    },
    /// Bytes of connection `conn`, at most the receiver's `max_data`.
    Data {
        /// Connection id.
        conn: u32,
        /// The bytes (never empty).
        payload: Bytes,
    },
    /// The receiver of `conn` consumed bytes: the sender may send `increment` more.
    Window {
        /// Connection id.
        conn: u32,
        /// Bytes, nonzero.
        increment: u32,
    },
    /// The sender will send no more bytes on `conn` (TCP half-close); it still reads.
    Fin {
        /// Connection id.
        conn: u32,
    },
    /// Connection `conn` is gone in both directions.
    Reset {
        /// Connection id.
        conn: u32,
        /// Why ([`ResetCode`]).
        code: ResetCode,
        /// Human-readable detail, UTF-8, at most [`MAX_REASON`] bytes.
        reason: String,
    },
    /// The sender has received every byte of the stream up to `position` (resumption: the
    /// peer may forget them).
    Ack {
        /// Bytes of the stream received, counted from its start.
        position: u64,
    },
    /// First frame after a reattach (a request): the sender has received `position` bytes;
    /// the peer answers with [`Frame::Resumed`] and replays from there.
    Resume {
        /// The sender's reattach number: 1 for its first reattach in the stream, one more for
        /// each after it. The answer carries it back, so an answer to an earlier attempt is
        /// told from the answer to this one.
        attach: u32,
        /// Bytes of the stream received, counted from its start.
        position: u64,
    },
    /// The answer to the peer's [`Frame::Resume`]: the sender has received `position` bytes;
    /// the peer replays from there.
    Resumed {
        /// The `attach` of the RESUME this answers.
        attach: u32,
        /// Bytes of the stream received, counted from its start.
        position: u64,
    },
    /// Measures the path (the adaptive receive window, [`crate::bdp`]): the peer answers at
    /// once with PONG carrying the same `opaque`.
    Ping {
        /// Whatever the sender chose; it matches the PONG to its PING.
        opaque: u64,
    },
    /// The answer to PING, carrying its `opaque` unchanged.
    Pong {
        /// The PING's `opaque`.
        opaque: u64,
    },
}

/// Why a connection was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCode {
    /// The target refused or could not be reached.
    Refused,
    /// The local socket failed (reset, error).
    Failed,
    /// The peer broke the protocol on this connection (flow control, unknown id).
    Protocol,
    /// The stream or the proxy is shutting down.
    Shutdown,
    /// A code this version does not know (kept, not refused: later versions may add codes).
    Other(u16),
}

impl ResetCode {
    fn to_u16(self) -> u16 {
        match self {
            Self::Refused => 1,
            Self::Failed => 2,
            Self::Protocol => 3,
            Self::Shutdown => 4,
            Self::Other(c) => c,
        }
    }

    fn from_u16(c: u16) -> Self {
        match c {
            1 => Self::Refused,
            2 => Self::Failed,
            3 => Self::Protocol,
            4 => Self::Shutdown,
            c => Self::Other(c),
        }
    }
}

impl std::fmt::Display for ResetCode {
    /// The code's name as the spec's table gives it (`docs/stream-protocol.md`), then its
    /// number: "refused (1)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Protocol => "protocol",
            Self::Shutdown => "shutdown",
            Self::Other(_) => "unknown",
        };
        write!(f, "{name} ({})", self.to_u16())
    }
}

/// Why bytes are not a frame. Each is a protocol error that ends the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The type byte names no frame.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// Flags are reserved and must be 0.
    #[error("frame flags must be 0, not {0:#04x}")]
    Flags(u8),
    /// The payload is longer than this frame type allows.
    #[error("{kind} payload of {len} bytes is over the limit of {max}")]
    Oversized {
        /// Frame type.
        kind: &'static str,
        /// Declared length.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// The payload does not have the frame type's shape.
    #[error("malformed {kind} frame: {why}")]
    Malformed {
        /// Frame type.
        kind: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

const HELLO: u8 = 0x00;
const OPEN: u8 = 0x01;
const OPENED: u8 = 0x02;
const DATA: u8 = 0x03;
const WINDOW: u8 = 0x04;
const FIN: u8 = 0x05;
const RESET: u8 = 0x06;
const ACK: u8 = 0x07;
const RESUME: u8 = 0x08;
const PING: u8 = 0x09;
const PONG: u8 = 0x0A;
const RESUMED: u8 = 0x0B;

fn kind_name(t: u8) -> &'static str {
    match t {
        HELLO => "HELLO",
        OPEN => "OPEN",
        OPENED => "OPENED",
        DATA => "DATA",
        WINDOW => "WINDOW",
        FIN => "FIN",
        RESET => "RESET",
        ACK => "ACK",
        RESUME => "RESUME",
        PING => "PING",
        PONG => "PONG",
        RESUMED => "RESUMED",
        _ => "?",
    }
}

impl Frame {
    /// The frame's encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Hello { .. } => 10,
            Self::Open { target, .. } => target.len(),
            Self::Opened { .. } | Self::Fin { .. } => 0,
            Self::Data { payload, .. } => payload.len(),
            Self::Window { .. } => 4,
            Self::Reset { reason, .. } => 2 + reason.len(),
            Self::Ack { .. } | Self::Ping { .. } | Self::Pong { .. } => 8,
            Self::Resume { .. } | Self::Resumed { .. } => RESUME_LEN,
        }
    }

    fn type_and_conn(&self) -> (u8, u32) {
        match self {
            Self::Hello { .. } => (HELLO, 0),
            Self::Open { conn, .. } => (OPEN, *conn),
            Self::Opened { conn } => (OPENED, *conn),
            Self::Data { conn, .. } => (DATA, *conn),
            Self::Window { conn, .. } => (WINDOW, *conn),
            Self::Fin { conn } => (FIN, *conn),
            Self::Reset { conn, .. } => (RESET, *conn),
            Self::Ack { .. } => (ACK, 0),
            Self::Resume { .. } => (RESUME, 0),
            Self::Resumed { .. } => (RESUMED, 0),
            Self::Ping { .. } => (PING, 0),
            Self::Pong { .. } => (PONG, 0),
        }
    }

    /// Appends the frame's bytes to `out`. The caller keeps payloads within the limits
    /// ([`MAX_DATA`], [`MAX_TARGET`], [`MAX_REASON`]); a longer reason is cut at a character
    /// boundary.
    pub fn encode(&self, out: &mut BytesMut) {
        let (t, conn) = self.type_and_conn();
        let reason = match self {
            Self::Reset { reason, .. } => truncate(reason, MAX_REASON),
            _ => "",
        };
        let len = match self {
            Self::Reset { .. } => 2 + reason.len(),
            _ => self.payload_len(),
        };
        out.reserve(HEADER_LEN + len);
        out.put_u8(t);
        out.put_u8(0);
        out.put_u32(conn);
        out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        match self {
            Self::Hello {
                version,
                max_data,
                initial_window,
            } => {
                out.put_u16(*version);
                out.put_u32(*max_data);
                out.put_u32(*initial_window);
            }
            Self::Open { target, .. } => out.put_slice(target),
            Self::Data { payload, .. } => out.put_slice(payload),
            Self::Window { increment, .. } => out.put_u32(*increment),
            Self::Reset { code, .. } => {
                out.put_u16(code.to_u16());
                out.put_slice(reason.as_bytes());
            }
            Self::Ack { position } => out.put_u64(*position),
            Self::Resume { attach, position } | Self::Resumed { attach, position } => {
                out.put_u32(*attach);
                out.put_u64(*position);
            }
            Self::Ping { opaque } | Self::Pong { opaque } => out.put_u64(*opaque),
            Self::Opened { .. } | Self::Fin { .. } => {}
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A frame's type, as its header's first byte names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// HELLO (0x00).
    Hello,
    /// OPEN (0x01).
    Open,
    /// OPENED (0x02).
    Opened,
    /// DATA (0x03).
    Data,
    /// WINDOW (0x04).
    Window,
    /// FIN (0x05).
    Fin,
    /// RESET (0x06).
    Reset,
    /// ACK (0x07).
    Ack,
    /// RESUME (0x08).
    Resume,
    /// PING (0x09).
    Ping,
    /// PONG (0x0A).
    Pong,
    /// RESUMED (0x0B).
    Resumed,
}

impl FrameType {
    fn from_u8(t: u8) -> Option<Self> {
        Some(match t {
            HELLO => Self::Hello,
            OPEN => Self::Open,
            OPENED => Self::Opened,
            DATA => Self::Data,
            WINDOW => Self::Window,
            FIN => Self::Fin,
            RESET => Self::Reset,
            ACK => Self::Ack,
            RESUME => Self::Resume,
            PING => Self::Ping,
            PONG => Self::Pong,
            RESUMED => Self::Resumed,
            _ => return None,
        })
    }

    /// Whether the frame belongs to the link under the multiplexer (ACK, RESUME, RESUMED,
    /// PING, PONG): such frames travel alone, are not counted in the stream's positions and
    /// are never replayed.
    pub fn is_link(self) -> bool {
        matches!(
            self,
            Self::Ack | Self::Resume | Self::Resumed | Self::Ping | Self::Pong
        )
    }

    /// Whether the frame names a connection (nonzero id) rather than the whole stream (id 0).
    fn names_conn(self) -> bool {
        !matches!(
            self,
            Self::Hello | Self::Ack | Self::Resume | Self::Resumed | Self::Ping | Self::Pong
        )
    }
}

/// A frame's header, checked against the limits: what a reader needs to know how long the
/// frame is and whom it is for, before its payload has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The frame's type.
    pub kind: FrameType,
    /// Connection id (0 for stream-level frames).
    pub conn: u32,
    /// Payload length in bytes, within the type's limit.
    pub len: usize,
}

impl Header {
    /// The whole frame's length in bytes: [`HEADER_LEN`] plus the payload.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.len
    }
}

/// Reads and checks the header at the front of `buf` without consuming anything; DATA may
/// carry up to `max_data` bytes (at most [`MAX_DATA`]). `Ok(None)` while `buf` holds less
/// than [`HEADER_LEN`] bytes.
///
/// # Errors
/// [`FrameError`] for what the header alone shows to be wrong, exactly as [`decode`] would
/// refuse it: an unknown type, nonzero flags, a payload over its type's limit, a connection id
/// of 0 on a connection frame or nonzero on a stream frame.
pub fn peek_header(buf: &[u8], max_data: usize) -> Result<Option<Header>, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let (t, flags) = (h[0], h[1]);
    let conn = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
    let len = u32::from_be_bytes([h[6], h[7], h[8], h[9]]);
    let kind = FrameType::from_u8(t).ok_or(FrameError::UnknownType(t))?;
    if flags != 0 {
        return Err(FrameError::Flags(flags));
    }
    let name = kind_name(t);
    let max = match kind {
        FrameType::Data => max_data.min(MAX_DATA),
        FrameType::Open => MAX_TARGET,
        FrameType::Reset => 2 + MAX_REASON,
        _ => MAX_CONTROL,
    };
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if n > max {
        return Err(FrameError::Oversized {
            kind: name,
            len,
            max,
        });
    }
    if kind.names_conn() && conn == 0 {
        return Err(FrameError::Malformed {
            kind: name,
            why: "connection 0 is not a connection",
        });
    }
    if !kind.names_conn() && conn != 0 {
        return Err(FrameError::Malformed {
            kind: name,
            why: "stream-level frame names a connection",
        });
    }
    Ok(Some(Header { kind, conn, len: n }))
}

/// Takes the first whole frame off `buf`, accepting DATA payloads up to `max_data` bytes.
/// Returns `Ok(None)` when `buf` holds less than a frame (nothing is consumed), and an error,
/// before reading the payload, when the header is already wrong ([`peek_header`]).
///
/// # Errors
/// [`FrameError`]: the stream is not speaking this protocol, or the peer broke a limit.
pub fn decode(buf: &mut BytesMut, max_data: usize) -> Result<Option<Frame>, FrameError> {
    let Some(header) = peek_header(buf, max_data)? else {
        return Ok(None);
    };
    if buf.len() < header.frame_len() {
        return Ok(None);
    }
    let conn = header.conn;
    let n = header.len;
    let kind = kind_name(buf[0]);
    buf.advance(HEADER_LEN);
    let mut p = buf.split_to(n).freeze();
    let malformed = |why| FrameError::Malformed { kind, why };
    let exact = |p: &Bytes, want: usize| {
        if p.len() == want {
            Ok(())
        } else {
            Err(malformed("wrong payload length"))
        }
    };
    let frame = match header.kind {
        FrameType::Hello => {
            exact(&p, 10)?;
            let version = p.get_u16();
            let max_data = p.get_u32();
            let initial_window = p.get_u32();
            if max_data == 0 || initial_window == 0 {
                return Err(malformed("zero max_data or initial_window"));
            }
            Frame::Hello {
                version,
                max_data,
                initial_window,
            }
        }
        FrameType::Open => Frame::Open { conn, target: p },
        FrameType::Opened => {
            exact(&p, 0)?;
            Frame::Opened { conn }
        }
        FrameType::Data => {
            if p.is_empty() {
                return Err(malformed("empty DATA"));
            }
            Frame::Data { conn, payload: p }
        }
        FrameType::Window => {
            exact(&p, 4)?;
            let increment = p.get_u32();
            if increment == 0 {
                return Err(malformed("zero window increment"));
            }
            Frame::Window { conn, increment }
        }
        FrameType::Fin => {
            exact(&p, 0)?;
            Frame::Fin { conn }
        }
        FrameType::Reset => {
            if p.len() < 2 {
                return Err(malformed("no reset code"));
            }
            let code = ResetCode::from_u16(p.get_u16());
            let reason = std::str::from_utf8(&p)
                .map_err(|_| malformed("reason is not UTF-8"))?
                .to_string();
            Frame::Reset { conn, code, reason }
        }
        FrameType::Ack => {
            exact(&p, 8)?;
            Frame::Ack {
                position: p.get_u64(),
            }
        }
        FrameType::Resume => {
            exact(&p, RESUME_LEN)?;
            Frame::Resume {
                attach: p.get_u32(),
                position: p.get_u64(),
            }
        }
        FrameType::Resumed => {
            exact(&p, RESUME_LEN)?;
            Frame::Resumed {
                attach: p.get_u32(),
                position: p.get_u64(),
            }
        }
        FrameType::Ping => {
            exact(&p, 8)?;
            Frame::Ping {
                opaque: p.get_u64(),
            }
        }
        FrameType::Pong => {
            exact(&p, 8)?;
            Frame::Pong {
                opaque: p.get_u64(),
            }
        }
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests;
