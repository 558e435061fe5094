//! MQTT over TCP/TLS as the hub reads it: `MqttConnection::read_connect` (first packet must
//! be CONNECT, refused from its first byte otherwise), then `read_packet` until the stream
//! ends, the bytes arriving in chunks whose size the input chooses (so packets split across
//! reads at every point); each packet then goes through the hub's CONNECT and topic checks.
//!
//! Input: first byte = chunk size (1..=256), the rest = the bytes a device sends.
//! Invariants: never panics; at most one packet per 2 bytes read (no packet from nothing);
//! the connection ends (clean end, truncated, or a protocol error) once the bytes run out.
#![no_main]

use adit_fuzz::runtime::block_on;
use adit_fuzz::{mqtt_checks, mqtt_seeds, seeds};
use adit_transport::MqttConnection;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt as _;

const MAX_PACKET: usize = 4096;

fn seeds() -> Vec<Vec<u8>> {
    mqtt_seeds::wire_seeds()
        .into_iter()
        .flat_map(|s| [7u8, 255].map(|chunk| [vec![chunk], s.clone()].concat()))
        .collect()
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Some((&chunk, bytes)) = data.split_first() else { return };
        let chunk = usize::from(chunk).max(1);
        block_on(async {
            let (mut device, hub) = tokio::io::duplex(chunk);
            let bytes = bytes.to_vec();
            let sender = tokio::spawn(async move {
                for piece in bytes.chunks(chunk) {
                    if device.write_all(piece).await.is_err() {
                        return;
                    }
                }
                let _ = device.shutdown().await;
            });
            let mut conn = MqttConnection::new(hub, MAX_PACKET);
            let mut packets = 0usize;
            match conn.read_connect().await {
                Ok(Some(first)) => {
                    packets += 1;
                    mqtt_checks::check_packet(&first);
                    while let Ok(Some(p)) = conn.read_packet().await {
                        packets += 1;
                        mqtt_checks::check_packet(&p);
                    }
                }
                Ok(None) | Err(_) => {}
            }
            assert!(packets * 2 <= data.len(), "more packets than bytes allow");
            drop(conn);
            let _ = sender.await;
        });
    }
);
