//! WebSocket frames into the gateway's relay (`adit_hub::gateway::relay::run`), close codes
//! included: both halves of a stream send client frames (data, fragments, pings, Close with
//! any code, reserved ones too, or garbage) into tokio-websockets' server with a frame limit,
//! and the relay forwards them until one side ends, then closes both.
//!
//! Input: a big-endian u16 `n`, then `n` bytes from the device, then the service's bytes.
//! Invariants: never panics; the relay always ends; everything the hub sends to either half
//! decodes as valid WebSocket (no reserved close code on the wire, no broken frame); no half
//! receives more payload than the outcome counts for its direction, and the half that did
//! not end the stream (by a Close or a drop) receives exactly that; a Close code that may be
//! sent is passed on unchanged.
#![no_main]

use adit_fuzz::memory_io::Replay;
use adit_fuzz::runtime::block_on;
use adit_fuzz::seeds;
use adit_fuzz::ws_frames::{client_frames, empty_close, raw_close, raw_frame};
use std::collections::VecDeque;

use adit_hub::gateway::relay::{self, ClosedBy, EndReason};
use adit_hub::gateway::{Keepalive, Role, Traffic};
use futures_util::StreamExt as _;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio_util::sync::CancellationToken;
use tokio_websockets::{ClientBuilder, Limits, Message};

/// The hub's default is 1 MiB; a small one reaches the limit with small inputs.
const MAX_FRAME: usize = 4096;

fn input(device: &[u8], service: &[u8]) -> Vec<u8> {
    let n = u16::try_from(device.len()).unwrap_or(u16::MAX);
    [&n.to_be_bytes()[..], device, service].concat()
}

fn seeds() -> Vec<Vec<u8>> {
    let ssh = client_frames(vec![
        Message::binary(&b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"[..]),
        Message::binary(vec![0u8; 300]),
    ]);
    let mut out = vec![
        // Data both ways, then a normal Close from the device.
        input(
            &[ssh.clone(), raw_close(1000, "done")].concat(),
            &client_frames(vec![Message::binary(&b"SSH-2.0-Azure\r\n"[..])]),
        ),
        // Adit's half-close marker (an empty frame), a ping, then the service leaves.
        input(
            &client_frames(vec![Message::binary(Vec::new()), Message::ping(&b"x"[..])]),
            &[
                client_frames(vec![Message::text("hello")]),
                raw_close(1001, ""),
            ]
            .concat(),
        ),
        // A fragmented message (binary, then the final continuation).
        input(
            &[raw_frame(0x02, b"frag-"), raw_frame(0x80, b"ment")].concat(),
            b"",
        ),
        // A length that lies (2^63 bytes announced).
        input(
            &[
                0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
            b"",
        ),
        // An empty Close (reported as 1005).
        input(&empty_close(), &ssh),
    ];
    // Every kind of Close code: reserved ones (1004, 1005, 1006, 1015), registered ones,
    // application ones, and ones no endpoint may receive.
    for code in [
        1000u16, 1002, 1004, 1005, 1006, 1008, 1011, 1015, 1016, 2999, 3000, 4000, 4999, 5000,
    ] {
        out.push(input(
            &[ssh.clone(), raw_close(code, "reason ü")].concat(),
            b"",
        ));
        out.push(input(b"", &raw_close(code, &"x".repeat(123))));
    }
    out
}

/// A client: writes `bytes`, ends its write side, reads everything the hub sends until the
/// hub closes.
async fn client(io: DuplexStream, bytes: Vec<u8>) -> Vec<u8> {
    let (mut rx, mut tx) = tokio::io::split(io);
    let write = async move {
        let _ = tx.write_all(&bytes).await;
        let _ = tx.shutdown().await;
    };
    let read = async move {
        let mut got = Vec::new();
        let _ = rx.read_to_end(&mut got).await;
        got
    };
    tokio::join!(write, read).1
}

/// What a half received: its data payload bytes, and its Close (`Some(None)` for a Close
/// without a code).
fn decode(bytes: Vec<u8>, who: &str) -> (u64, Option<Option<u16>>) {
    block_on_inner(async move {
        let mut ws = ClientBuilder::new()
            .limits(Limits::unlimited())
            .take_over(Replay::new(bytes));
        let (mut payload, mut close) = (0u64, None);
        while let Some(item) = ws.next().await {
            let msg =
                item.unwrap_or_else(|e| panic!("the hub sent the {who} an invalid frame: {e}"));
            if msg.is_close() {
                close = Some(if msg.as_payload().is_empty() {
                    None
                } else {
                    msg.as_close().map(|(c, _)| u16::from(c))
                });
            } else if msg.is_binary() || msg.is_text() {
                payload += msg.as_payload().len() as u64;
            }
        }
        (payload, close)
    })
}

/// Runs a future that needs no timers to completion, polling it in place.
fn block_on_inner<F: std::future::Future>(f: F) -> F::Output {
    futures_util::FutureExt::now_or_never(Box::pin(f))
        .expect("decoding a recorded stream never waits")
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Some((n, rest)) = data.split_first_chunk::<2>() else { return };
        let n = usize::from(u16::from_be_bytes(*n)).min(rest.len());
        let (device_in, service_in) = (rest[..n].to_vec(), rest[n..].to_vec());
        let (outcome, device_got, service_got) = block_on(async move {
            let (device_client, device_hub) = tokio::io::duplex(1 << 16);
            let (service_client, service_hub) = tokio::io::duplex(1 << 16);
            let server = tokio_websockets::ServerBuilder::new()
                .limits(Limits::default().max_payload_len(Some(MAX_FRAME)));
            let (device_ws, service_ws) = (server.serve(device_hub), server.serve(service_hub));
            let relay = tokio::spawn(async move {
                let (shutdown, revoked) = (CancellationToken::new(), CancellationToken::new());
                relay::run(device_ws, service_ws, (Role::Device, VecDeque::new()), tokio::time::Instant::now(), Keepalive::default(), &Traffic::new(), &shutdown, &revoked).await
            });
            let device = tokio::spawn(client(device_client, device_in));
            let service = tokio::spawn(client(service_client, service_in));
            let outcome = relay.await.expect("the relay task does not panic");
            let device_got = device.await.expect("client task");
            let service_got = service.await.expect("client task");
            (outcome, device_got, service_got)
        });
        assert!(outcome.established);
        let (to_service, service_close) = decode(service_got, "service");
        let (to_device, device_close) = decode(device_got, "device");
        // Nothing arrives that was not counted. When one half ended the stream (a Close or a
        // drop), the other, still healthy, gets exactly what was counted towards it; what was
        // on its way to the half that left, or to a leg the hub tore down (a protocol
        // violation, a dead leg, a failed write), may be lost with that leg.
        assert!(to_service <= outcome.bytes_device_to_service, "device to service bytes: {to_service} > {}", outcome.bytes_device_to_service);
        assert!(to_device <= outcome.bytes_service_to_device, "service to device bytes: {to_device} > {}", outcome.bytes_service_to_device);
        // A half refused by its own WebSocket layer (1002, 1007, 1009) was not healthy either:
        // it broke the protocol at the moment the other half left.
        let refused = |close: Option<Option<u16>>| matches!(close, Some(Some(1002 | 1007 | 1009)));
        let healthy = match outcome.closed_by {
            ClosedBy::Device => !refused(service_close),
            ClosedBy::Service => !refused(device_close),
            _ => false,
        };
        if healthy && matches!(outcome.reason, EndReason::CloseFrame | EndReason::Disconnected) {
            match outcome.closed_by {
                ClosedBy::Device => assert_eq!(
                    to_service, outcome.bytes_device_to_service,
                    "device to service bytes"
                ),
                ClosedBy::Service => assert_eq!(
                    to_device, outcome.bytes_service_to_device,
                    "service to device bytes"
                ),
                _ => {}
            }
        }
        // Passed on to a healthy half (one its own layer refused got its own 1002 instead).
        if healthy && outcome.reason == EndReason::CloseFrame {
            let passed_on = match outcome.closed_by {
                ClosedBy::Device => service_close,
                ClosedBy::Service => device_close,
                other => panic!("closed by {other:?} with a close frame"),
            };
            if let (Some(code), Some(Some(sent))) = (outcome.close_code, passed_on)
                && !matches!(code, 1004 | 1005 | 1006 | 1015)
            {
                assert_eq!(sent, code, "close code not passed on");
            }
        }
    }
);
