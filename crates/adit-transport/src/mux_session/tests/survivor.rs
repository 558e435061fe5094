//! The side whose link held: the peer's RESUME arrives unannounced, and it answers with
//! RESUMED, then replays what the peer lacks.

use std::time::Duration;

use adit_stream_protocol::frame::Frame;
use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;

use super::super::*;
use super::wire::{self, encode, frames, hello, pattern};

/// The data messages among `messages` (not link messages), as one byte sequence.
fn data(messages: &[Bytes]) -> Vec<u8> {
    messages
        .iter()
        .filter(|m| !wire::is_link(m))
        .flat_map(|m| m.iter().copied())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resume_out_of_the_blue_is_answered_then_what_the_peer_lacks_is_replayed() {
    let (link, mut wire) = wire::link();
    let service = MuxSession::start(link, Role::Service, Settings::default());
    let from_peer = encode(&hello(1 << 20));
    wire.tx.send(from_peer.clone()).expect("send");
    let mut s = service.open(Bytes::new()).await.expect("open");
    let sent = pattern(7, 100_000);
    s.write_all(&sent).await.expect("write");
    let before = wire::settle(&mut wire).await;
    assert!(
        before.iter().any(|m| wire::ack(m) == Some(20)),
        "the peer's HELLO was acknowledged once the link went quiet"
    );
    let stream = data(&before);
    // The peer reattached having received the first few frames only.
    let mut position = 0;
    for f in frames(&stream).iter().take(4) {
        position += f.encoded_len();
    }
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: position as u64,
        }))
        .expect("send");
    let after = wire::settle(&mut wire).await;
    assert_eq!(
        wire::resumed(&after[0]),
        Some((1, from_peer.len() as u64)),
        "its RESUMED before anything else"
    );
    assert!(
        data(&after[1..]) == stream[position..],
        "then exactly what the peer lacks, once"
    );
    let stats = service.stats();
    assert_eq!(stats.resumptions, 1);
    assert_eq!(stats.detached, Duration::ZERO, "its own link never failed");
    // And the stream goes on from there.
    s.write_all(b"more").await.expect("write");
    let later = wire::settle(&mut wire).await;
    let Some(Frame::Data { payload, .. }) = frames(&data(&later)).pop() else {
        panic!("{later:?}");
    };
    assert_eq!(&payload[..], b"more");
}

#[tokio::test(start_paused = true)]
async fn a_resume_before_anything_was_received_is_answered_with_zero() {
    let (link, mut wire) = wire::link();
    let device = MuxSession::start(link, Role::Device, Settings::default());
    // Its HELLO (and the PING that measures the idle link).
    let data_messages = |messages: Vec<Bytes>| -> Vec<Bytes> {
        messages.into_iter().filter(|m| !wire::is_link(m)).collect()
    };
    let hello_sent = data_messages(wire::settle(&mut wire).await);
    assert_eq!(hello_sent.len(), 1, "{hello_sent:?}");
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: 0,
        }))
        .expect("send");
    let after = wire::settle(&mut wire).await;
    assert_eq!(wire::resumed(&after[0]), Some((1, 0)));
    assert_eq!(
        data_messages(after[1..].to_vec()),
        hello_sent,
        "HELLO again, from the start"
    );
    assert_eq!(device.stats().resumptions, 1);
}
