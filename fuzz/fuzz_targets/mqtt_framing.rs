//! MQTT framing and packet decoding (`adit_transport::mqtt_framing::decode`, what the hub and
//! the device SDK read every packet with) on arbitrary bytes.
//!
//! Invariants: never panics; a decoded packet consumes bytes and no more than one packet's
//! worth (bounded by the packet limit); encoding what was decoded is a fixed point (encode,
//! decode, encode gives the same bytes).
#![no_main]

use adit_fuzz::{mqtt_checks, mqtt_seeds, seeds};
use adit_transport::mqtt_framing::decode;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4::Packet;

/// The hub's default limit is 256 KiB; a small one reaches the limit paths with small inputs.
const MAX_PACKET: usize = 2048;

fn encoded(p: &Packet) -> Option<BytesMut> {
    let mut b = BytesMut::new();
    p.write(&mut b, MAX_PACKET).ok().map(|_| b)
}

fuzz_target!(
    init: seeds::write_if_asked(mqtt_seeds::wire_seeds),
    |data: &[u8]| {
        let mut buf = BytesMut::from(data);
        for _ in 0..64 {
            let before = buf.len();
            match decode(&mut buf, MAX_PACKET) {
                Ok(Some(packet)) => {
                    let used = before - buf.len();
                    assert!(used > 0, "a packet consumes bytes");
                    // Fixed header (1 byte) + remaining length (up to 4) + the body.
                    assert!(used <= MAX_PACKET + 5, "a packet over the limit was accepted");
                    if let Some(first) = encoded(&packet) {
                        let mut again = first.clone();
                        if let Ok(Some(p2)) = decode(&mut again, MAX_PACKET) {
                            assert!(again.is_empty(), "re-encoded packet left bytes over");
                            assert_eq!(encoded(&p2), Some(first), "encode is not a fixed point");
                        }
                    }
                    mqtt_checks::check_packet(&packet);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
);
