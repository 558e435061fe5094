//! The session over a real WebSocket (`WsIo`), as the hub sees it: every message whole frames,
//! link frames alone in theirs, and the session's end a zero-length message.

use adit_stream_protocol::frame::Frame;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio_websockets::{ClientBuilder, Message, ServerBuilder, WebSocketStream};

use super::super::*;
use super::wire::{self, encode, frames, hello, pattern};
use crate::WsIo;

/// The next binary message's payload.
async fn next_payload(ws: &mut WebSocketStream<tokio::io::DuplexStream>) -> Bytes {
    loop {
        let m = ws.next().await.expect("a message").expect("valid");
        if m.is_binary() {
            return m.into_payload().into();
        }
    }
}

#[tokio::test]
async fn over_a_websocket_messages_are_whole_frames_and_link_frames_travel_alone() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let service = MuxSession::start(
        WsIo::new(ClientBuilder::new().take_over(a)),
        Role::Service,
        Settings::default(),
    );
    let mut hub = ServerBuilder::new().serve(b);
    let from_peer = encode(&hello(1 << 20));
    hub.send(Message::binary(from_peer.clone()))
        .await
        .expect("send");
    let mut s = service.open(Bytes::new()).await.expect("open");
    let sent = pattern(11, 200_000);
    s.write_all(&sent).await.expect("write");
    let mut stream = Vec::new();
    let mut payload = 0;
    while payload < sent.len() {
        let m = next_payload(&mut hub).await;
        // Each message decodes whole (`frames` insists); an ACK or a PING comes alone.
        if wire::is_link(&m) {
            continue;
        }
        for f in frames(&m) {
            if let Frame::Data { payload: p, .. } = f {
                payload += p.len();
            }
        }
        stream.extend_from_slice(&m);
    }
    // The peer came back having missed everything: RESUME alone, then all of it again.
    hub.send(Message::binary(encode(&Frame::Resume {
        attach: 1,
        position: 0,
    })))
    .await
    .expect("send");
    let mut answer = next_payload(&mut hub).await;
    while wire::resumed(&answer).is_none() && wire::is_link(&answer) {
        answer = next_payload(&mut hub).await;
    }
    assert_eq!(wire::resumed(&answer), Some((1, from_peer.len() as u64)));
    let mut replayed = Vec::new();
    while replayed.len() < stream.len() {
        let m = next_payload(&mut hub).await;
        if !wire::is_link(&m) {
            replayed.extend_from_slice(&m);
        }
    }
    assert!(replayed == stream, "the replay is the stream, exactly");
    // Closing the session ends the link with the zero-length end-of-input message.
    service.close();
    loop {
        let m = next_payload(&mut hub).await;
        if m.is_empty() {
            break;
        }
        assert!(
            wire::is_link(&m),
            "nothing but link messages (ACK, PING) before the end"
        );
    }
}
