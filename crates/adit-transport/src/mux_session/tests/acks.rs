//! When ACKs go out, what a sender does without them, and positions that do not fit.

use std::time::Duration;

use adit_stream_protocol::frame::{self, Frame};
use adit_stream_protocol::replay::ReplayError;
use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;

use super::super::link::{ACK_EVERY, ACK_QUIET};
use super::super::*;
use super::wire::{self, MsgLink, Wire, encode, frames, hello, pattern};

/// A device session on a message link, and the service side's HELLO and OPEN of connection 1
/// sent on it (30 bytes); the stream is accepted and never read.
async fn device_with_one_connection() -> (MuxSession, MuxStream, Wire) {
    let (link, wire) = wire::link();
    let mut device = MuxSession::start(link, Role::Device, Settings::default());
    let mut opening = encode(&hello(1 << 20)).to_vec();
    opening.extend_from_slice(&encode(&Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }));
    assert_eq!(opening.len(), 30);
    wire.tx.send(Bytes::from(opening)).expect("send");
    let (stream, _) = device.accept().await.expect("accepted");
    (device, stream, wire)
}

/// DATA frames on connection 1 that take the stream's position from `from` to `to`.
fn data_frames(from: u64, to: u64) -> Vec<Bytes> {
    let mut left = to - from;
    let mut out = Vec::new();
    while left > 0 {
        let payload = (left as usize - frame::HEADER_LEN).min(frame::MAX_DATA);
        let f = encode(&Frame::Data {
            conn: 1,
            payload: Bytes::from(vec![b'x'; payload]),
        });
        left -= f.len() as u64;
        out.push(f);
    }
    out
}

/// The next ACK on `wire`, skipping data messages.
async fn next_ack(wire: &mut Wire) -> u64 {
    loop {
        let m = wire.rx.recv().await.expect("a message");
        if let Some(p) = wire::ack(&m) {
            return p;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_ack_goes_out_as_soon_as_64_kib_arrived() {
    let (_device, _stream, mut wire) = device_with_one_connection().await;
    let start = Instant::now();
    for f in data_frames(30, ACK_EVERY) {
        wire.tx.send(f).expect("send");
    }
    assert_eq!(next_ack(&mut wire).await, ACK_EVERY);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "at once, not after the quiet time"
    );
}

#[tokio::test(start_paused = true)]
async fn one_byte_short_of_64_kib_is_acknowledged_once_the_link_is_quiet() {
    let (_device, _stream, mut wire) = device_with_one_connection().await;
    let start = Instant::now();
    for f in data_frames(30, ACK_EVERY - 1) {
        wire.tx.send(f).expect("send");
    }
    assert_eq!(next_ack(&mut wire).await, ACK_EVERY - 1);
    assert_eq!(start.elapsed(), ACK_QUIET);
}

#[tokio::test(start_paused = true)]
async fn the_quiet_time_runs_from_the_last_receipt() {
    let (_device, _stream, mut wire) = device_with_one_connection().await;
    let start = Instant::now();
    tokio::time::sleep(ACK_QUIET - Duration::from_millis(1)).await;
    for f in data_frames(30, 1000) {
        wire.tx.send(f).expect("send");
    }
    // The HELLO and OPEN at 0 would have been acknowledged at 250 ms; the DATA at 249 ms
    // pushes that to 499 ms, and the ACK covers both.
    assert_eq!(next_ack(&mut wire).await, 1000);
    assert_eq!(start.elapsed(), ACK_QUIET * 2 - Duration::from_millis(1));
}

/// For sessions in these tests that must not reattach.
#[derive(Debug)]
struct Never;

impl Reattach for Never {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        Err(ReattachError::Gone("not in this test".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_acks_stalls_the_sender_at_the_replay_capacity() {
    let capacity = 100_000;
    let (link, mut wire) = wire::link();
    let service = MuxSession::start_resumable(
        link,
        Never,
        Role::Service,
        Settings::default(),
        ResumeOptions {
            replay_capacity: capacity,
            ..ResumeOptions::default()
        },
    );
    // The device side gives credit for everything: only the replay buffer holds it back.
    wire.tx.send(encode(&hello(16 << 20))).expect("send");
    let mut s = service.open(Bytes::new()).await.expect("open");
    let sent = pattern(3, 1 << 20);
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        s.write_all(&to_send).await.expect("write");
        s
    });
    let mut stream = Vec::new();
    let mut acked = 0u64;
    let mut stalls = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut last = 0;
        while let Ok(m) = wire.rx.try_recv() {
            if !wire::is_link(&m) {
                last = m.len();
                stream.extend_from_slice(&m);
            }
        }
        let position = stream.len() as u64;
        let payload: usize = frames(&stream)
            .iter()
            .map(|f| match f {
                Frame::Data { payload, .. } => payload.len(),
                _ => 0,
            })
            .sum();
        if payload == sent.len() {
            break;
        }
        // Stalled with exactly the capacity unacknowledged: the last message began below it
        // and took it to or past it.
        let kept = position - acked;
        assert!(
            kept >= capacity as u64 && kept - (last as u64) < capacity as u64,
            "kept {kept}, last message {last}"
        );
        if stalls == 0 {
            assert!(!writer.is_finished(), "the writer waits too");
        }
        stalls += 1;
        acked = position;
        wire.tx
            .send(encode(&Frame::Ack { position }))
            .expect("send");
    }
    // Each stall let through at most the capacity and one message more.
    assert!(
        stalls >= sent.len() / (capacity + 2 * frame::MAX_DATA),
        "1 MiB through a 100 kB buffer: {stalls} stalls"
    );
    let got: Vec<u8> = frames(&stream)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Data { payload, .. } => Some(payload),
            _ => None,
        })
        .flat_map(|p| p.to_vec())
        .collect();
    assert!(got == sent, "nothing dropped, nothing repeated");
    writer.await.expect("writer finished");
}

/// A service session on a message link whose peer sent HELLO and has read the session's.
async fn service_after_hello() -> (MuxSession, Wire) {
    let (link, mut wire) = wire::link();
    let service = MuxSession::start(link, Role::Service, Settings::default());
    wire.tx.send(encode(&hello(1 << 20))).expect("send");
    let first = wire.rx.recv().await.expect("HELLO");
    assert!(matches!(frames(&first)[..], [Frame::Hello { .. }]));
    (service, wire)
}

#[tokio::test(start_paused = true)]
async fn a_resume_past_what_was_sent_breaks_the_stream() {
    let (mut service, wire) = service_after_hello().await;
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: 1_000_000,
        }))
        .expect("send");
    let result = service.ended().await;
    assert_eq!(
        result,
        Err(SessionError::Broken(ReplayError::Ahead {
            position: 1_000_000,
            sent: 20
        }))
    );
    let text = result.expect_err("broken").to_string();
    assert!(
        text.contains("1000000") && text.contains("20"),
        "names both positions: {text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resume_before_what_is_kept_breaks_the_stream() {
    let (mut service, wire) = service_after_hello().await;
    wire.tx
        .send(encode(&Frame::Ack { position: 20 }))
        .expect("send");
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: 10,
        }))
        .expect("send");
    let result = service.ended().await;
    assert_eq!(
        result,
        Err(SessionError::Broken(ReplayError::Forgotten {
            position: 10,
            kept_from: 20
        }))
    );
}

#[tokio::test(start_paused = true)]
async fn an_ack_past_what_was_sent_breaks_the_stream() {
    let (mut service, wire) = service_after_hello().await;
    wire.tx
        .send(encode(&Frame::Ack { position: 21 }))
        .expect("send");
    let result = service.ended().await;
    assert_eq!(
        result,
        Err(SessionError::Broken(ReplayError::Ahead {
            position: 21,
            sent: 20
        }))
    );
}
