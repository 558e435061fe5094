//! WebSocket frames as a client puts them on the wire (masked), for seeds: encoded by
//! tokio-websockets' client, the same code Adit's SDKs send with.

use futures_util::SinkExt as _;
use tokio_websockets::{ClientBuilder, Message};

use crate::memory_io::Capture;
use crate::runtime::block_on;

/// The bytes a client writes to send `messages`, in order.
pub fn client_frames(messages: Vec<Message>) -> Vec<u8> {
    block_on(async {
        let mut ws = ClientBuilder::new().take_over(Capture::default());
        for m in messages {
            if ws.feed(m).await.is_err() {
                break;
            }
        }
        let _ = ws.flush().await;
        ws.into_inner().written
    })
}

/// A masked Close frame carrying `code` (any value, reserved ones too, which a real client
/// cannot send through tokio-websockets) and `reason`, with an all-zero mask.
pub fn raw_close(code: u16, reason: &str) -> Vec<u8> {
    let len = 2 + reason.len().min(123);
    let mut frame = vec![0x88, 0x80 | len as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(&reason.as_bytes()[..len - 2]);
    frame
}

/// A masked Close frame with no body (reported as 1005 by the receiver).
pub fn empty_close() -> Vec<u8> {
    vec![0x88, 0x80, 0, 0, 0, 0]
}

/// A masked frame with an all-zero mask: `first` is the FIN/opcode byte (`0x02` a binary
/// frame that more continue, `0x80` the final continuation), `payload` under 126 bytes.
pub fn raw_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().min(125);
    let mut frame = vec![first, 0x80 | len as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload[..len]);
    frame
}
