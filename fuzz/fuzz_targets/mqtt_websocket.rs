//! MQTT over WebSocket as the hub reads it (`/$iothub/websocket`): client frames into
//! tokio-websockets' server with the hub's payload limit, binary messages turned into a byte
//! stream by `adit_transport::WsIo` (with keep-alive pings, as the hub runs it), then
//! `MqttConnection::read_connect`/`read_packet` and the hub's CONNECT and topic checks.
//! Packets may span messages and messages may hold several packets.
//!
//! Input: first byte = chunk size for the socket writes (1..=256), the rest = the frames a
//! device sends (masked, as a client must).
//! Invariants: never panics; the session ends once the bytes run out (paused time: a stalled
//! one meets its keep-alive deadline).
#![no_main]

use adit_fuzz::runtime::block_on;
use adit_fuzz::ws_frames::{client_frames, empty_close, raw_close};
use adit_fuzz::{mqtt_checks, mqtt_seeds, seeds};
use adit_transport::{Keepalive, MqttConnection, WsIo};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_websockets::{Limits, Message};

const MAX_PACKET: usize = 4096;

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for wire in mqtt_seeds::wire_seeds() {
        // One message per session, as Azure's C# SDK writes.
        out.push(
            [
                vec![64u8],
                client_frames(vec![Message::binary(wire.clone())]),
            ]
            .concat(),
        );
        // Split across messages at an odd point, plus a ping and a Close.
        let cut = wire.len() / 3;
        let mut frames = client_frames(vec![
            Message::binary(wire[..cut].to_vec()),
            Message::ping(&b"p"[..]),
            Message::binary(wire[cut..].to_vec()),
        ]);
        frames.extend(raw_close(1000, "bye"));
        out.push([vec![5u8], frames].concat());
    }
    out.push(
        [
            vec![16u8],
            client_frames(vec![Message::text("MQTT")]),
            empty_close(),
        ]
        .concat(),
    );
    out
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Some((&chunk, bytes)) = data.split_first() else { return };
        let chunk = usize::from(chunk).max(1);
        block_on(async {
            let (device, hub) = tokio::io::duplex(chunk.max(64));
            let (mut device_rx, mut device_tx) = tokio::io::split(device);
            let bytes = bytes.to_vec();
            let sender = tokio::spawn(async move {
                for piece in bytes.chunks(chunk) {
                    if device_tx.write_all(piece).await.is_err() {
                        return;
                    }
                }
                let _ = device_tx.shutdown().await;
            });
            // What the hub writes back (pongs, pings, Close) is read and dropped.
            let drain = tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while matches!(device_rx.read(&mut sink).await, Ok(n) if n > 0) {}
            });
            let limits = Limits::default().max_payload_len(Some(MAX_PACKET + 1024));
            let ws = tokio_websockets::ServerBuilder::new().limits(limits).serve(hub);
            let io = WsIo::with_keepalive(ws, Keepalive::default());
            let mut conn = MqttConnection::new(io, MAX_PACKET);
            if let Ok(Some(first)) = conn.read_connect().await {
                mqtt_checks::check_packet(&first);
                while let Ok(Some(p)) = conn.read_packet().await {
                    mqtt_checks::check_packet(&p);
                }
            }
            drop(conn);
            let _ = sender.await;
            let _ = drain.await;
        });
    }
);
