//! Frames of the Adit stream protocol (`adit_stream_protocol::frame`): what each end of a
//! multiplexed, resumable stream reads from the other.
//!
//! Input: bytes; the first byte picks the accepted DATA size (1..=16 KiB), the rest is the
//! stream, read in chunks of the second byte's size (as a socket would hand it over).
//! Invariants: never panics; every frame decoded re-encodes to exactly the bytes it came from;
//! decoding stops at the first error and never takes more than one frame's bytes; DATA never
//! passes the negotiated size; driving each connection's receive window, the replay buffer and
//! the adaptive window's estimator (DATA and PONG, the stream's offset as the clock) with what
//! arrives never panics, the estimate only grows and stays within its maximum, and a window
//! never holds more than it granted, however it grew.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use adit_fuzz::seeds;
use adit_stream_protocol::frame::{Frame, MAX_DATA, decode};
use adit_stream_protocol::{BdpEstimator, RecvWindow, ReplayBuffer, ResetCode};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let frames = [
        Frame::Hello {
            version: 1,
            max_data: 16 * 1024,
            initial_window: 256 * 1024,
        },
        Frame::Open {
            conn: 1,
            target: Bytes::from_static(b"ssh"),
        },
        Frame::Opened { conn: 1 },
        Frame::Data {
            conn: 1,
            payload: Bytes::from_static(b"SSH-2.0-OpenSSH_9.6\r\n"),
        },
        Frame::Window {
            conn: 1,
            increment: 128 * 1024,
        },
        Frame::Fin { conn: 1 },
        Frame::Reset {
            conn: 3,
            code: ResetCode::Refused,
            reason: "connection refused".into(),
        },
        Frame::Ack { position: 4096 },
        Frame::Resume {
            attach: 1,
            position: 123,
        },
        Frame::Resumed {
            attach: 1,
            position: 77,
        },
        Frame::Ping { opaque: 1 },
        Frame::Pong { opaque: 1 },
    ];
    let mut all = BytesMut::new();
    let mut out = Vec::new();
    for f in &frames {
        let mut one = BytesMut::new();
        f.encode(&mut one);
        all.extend_from_slice(&one);
        let mut seed = vec![255, 7];
        seed.extend_from_slice(&one);
        out.push(seed);
    }
    let mut seed = vec![255, 64];
    seed.extend_from_slice(&all);
    out.push(seed);
    // Three full frames in one round trip, then the PONG of the PING the first one asked
    // for: the window grows, and every connection's with it.
    let mut grows = BytesMut::new();
    for _ in 0..3 {
        Frame::Data {
            conn: 1,
            payload: Bytes::from(vec![0x5a; 16_000]),
        }
        .encode(&mut grows);
    }
    Frame::Pong { opaque: 1 }.encode(&mut grows);
    let mut seed = vec![255, 255];
    seed.extend_from_slice(&grows);
    out.push(seed);
    out
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let (Some(&size), Some(&chunk)) = (data.first(), data.get(1)) else { return };
        let max_data = (usize::from(size) * 64).clamp(1, MAX_DATA);
        let chunk = usize::from(chunk).max(1);
        let stream = &data[2..];
        let mut buf = BytesMut::new();
        let mut windows: HashMap<u32, RecvWindow> = HashMap::new();
        let mut replay = ReplayBuffer::new(64 * 1024);
        replay.sent(Bytes::copy_from_slice(stream));
        // Small windows, so a few frames of input make it grow.
        let (initial, max) = (32 * 1024, 256 * 1024);
        let mut bdp = BdpEstimator::new(initial, max);
        let start = Instant::now();
        let mut offset = 0;
        'read: for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                let before = buf.len();
                match decode(&mut buf, max_data) {
                    Ok(None) => break,
                    Err(_) => break 'read,
                    Ok(Some(frame)) => {
                        let used = before - buf.len();
                        assert_eq!(used, frame.encoded_len());
                        let mut again = BytesMut::new();
                        frame.encode(&mut again);
                        assert_eq!(&again[..], &stream[offset..offset + used], "re-encodes exactly");
                        offset += used;
                        // A microsecond per byte of input: the clock only moves on.
                        let now = start + Duration::from_micros(offset as u64);
                        match frame {
                            Frame::Data { conn, payload } => {
                                assert!(payload.len() <= max_data);
                                let _ = bdp.on_data(now, payload.len());
                                let w = windows.entry(conn).or_insert_with(|| {
                                    let mut w = RecvWindow::new(initial);
                                    let _ = w.grow(bdp.window());
                                    w
                                });
                                if w.received(payload.len()).is_ok() {
                                    let _ = w.consumed(payload.len());
                                }
                                assert!(w.outstanding() <= u64::from(w.window()));
                            }
                            Frame::Pong { opaque } => {
                                let before = bdp.window();
                                if let Some(grown) = bdp.on_pong(now, opaque) {
                                    assert!(grown > before && grown <= max, "{before} to {grown}");
                                    for w in windows.values_mut() {
                                        assert_eq!(w.grow(grown), Some(grown - before));
                                    }
                                }
                                assert!(bdp.window() >= before);
                            }
                            Frame::Ack { position } => {
                                let _ = replay.acknowledged(position);
                            }
                            Frame::Resume { position, .. } | Frame::Resumed { position, .. } => {
                                let _ = replay.resume_from(position);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
);
