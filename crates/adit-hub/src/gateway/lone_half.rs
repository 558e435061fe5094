//! The first half of a stream to arrive, read while it waits for its peer.
//!
//! Reading it while it waits does three things that leaving it alone would not:
//! - its WebSocket answers pings (tokio-websockets answers them when polled), so a client that
//!   judges the gateway by its pongs (Adit's clients do) does not drop a healthy handshake;
//! - a half that closes or drops is seen at once, and the stream ends then, with a record,
//!   instead of at the handshake deadline (the rendezvous would otherwise hold a dead socket,
//!   its connection slot and the active-stream gauge until then);
//! - data it sends early (a server's banner through a device-proxy: SSH speaks first) is held
//!   and relayed first once the peer arrives.
//!
//! What is held is bounded by [`HELD_MAX_BYTES`] and [`HELD_MAX_MESSAGES`]; past either the
//! half is no longer read, so a half that floods before pairing is held back by TCP, as in the
//! relay.

use std::collections::VecDeque;

use futures_util::StreamExt as _;
use tokio_websockets::{Message, WebSocketStream};

use super::EndReason;
use super::close_frame;
use super::relay::{End, Step, classify};

/// Payload bytes held from a lone half before it is no longer read.
pub const HELD_MAX_BYTES: usize = 64 * 1024;

/// Messages held from a lone half before it is no longer read (zero-length frames count).
pub const HELD_MAX_MESSAGES: usize = 256;

/// How a lone half left before its peer arrived.
#[derive(Debug)]
pub struct Left {
    /// A Close frame, or a connection that ended without one.
    pub reason: EndReason,
    /// The code of its Close, when it sent one (1005 for a Close without a body).
    pub close_code: Option<u16>,
    /// The reason text of its Close (empty when none).
    pub close_reason: String,
    /// The Close the hub answers it with (a message over the limit: 1009; a protocol error:
    /// 1002), as the relay does.
    pub to_sender: Option<Message>,
}

/// Reads `ws` until it leaves, pushing its data messages onto `held` until the bounds are
/// reached, after which it waits forever (the caller's other branches decide). Cancel-safe:
/// a message is on `held` as soon as it is read.
pub async fn watch<S>(ws: &mut WebSocketStream<S>, held: &mut VecDeque<Message>) -> Left
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut bytes: usize = held.iter().map(|m| m.as_payload().len()).sum();
    loop {
        if bytes >= HELD_MAX_BYTES || held.len() >= HELD_MAX_MESSAGES {
            return std::future::pending().await;
        }
        let end = match classify(ws.next().await) {
            Step::Forward(msg) => {
                bytes += msg.as_payload().len();
                held.push_back(msg);
                continue;
            }
            Step::Skip => continue,
            Step::Stop(end) => end,
        };
        return match end {
            End::Closed(code, reason) => Left {
                reason: EndReason::CloseFrame,
                close_code: code.map(u16::from),
                close_reason: reason,
                to_sender: None,
            },
            End::Invalid(code, why) => Left {
                reason: EndReason::InvalidMessage,
                close_code: None,
                close_reason: String::new(),
                to_sender: Some(close_frame::own(code, &why)),
            },
            End::Dropped | End::PeerFailed => Left {
                reason: EndReason::Disconnected,
                close_code: None,
                close_reason: String::new(),
                to_sender: None,
            },
        };
    }
}
