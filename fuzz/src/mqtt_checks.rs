//! What the hub (and the device SDK) read out of a decoded MQTT packet, with the invariants
//! that hold for it. Shared by the targets that decode MQTT from TCP and from WebSocket.

use adit_proto::SasToken;
use adit_proto::topic::{ClientId, StreamRequest, StreamResponse, check_username, redact_auth};
use rumqttc::mqttbytes::v4::Packet;

use crate::mqtt_seeds::device_key;

/// Now, for token checks: fixed, so a run is repeatable.
const NOW: u64 = 1_800_000_000;

/// Runs the hub's CONNECT checks (`adit_hub::mqtt::connect`: client id, username, SAS token)
/// and the per-packet topic parsing of the hub's session and the device SDK.
pub fn check_packet(packet: &Packet) {
    match packet {
        Packet::Connect(c) => {
            if let Ok(id) = ClientId::parse(&c.client_id) {
                // Display is what the hub logs and what the SDK formats usernames with.
                assert_eq!(ClientId::parse(&id.to_string()).ok().as_ref(), Some(&id));
            }
            let Some(login) = &c.login else { return };
            if let Ok(host) = check_username(&login.username, &c.client_id) {
                assert!(!host.is_empty() && !host.contains('/'));
            }
            check_sas(&login.password);
        }
        Packet::Publish(p) => check_topic(&p.topic),
        Packet::Subscribe(s) => {
            for f in &s.filters {
                check_topic(&f.path);
            }
        }
        Packet::Unsubscribe(u) => {
            for t in &u.topics {
                check_topic(t);
            }
        }
        _ => {}
    }
}

/// Parses a SAS token as the hub's authenticator does and verifies it with a fixed key.
pub fn check_sas(token: &str) {
    let Ok(t) = SasToken::parse(token) else {
        return;
    };
    if let Ok(audience) = t.audience() {
        let _ = audience.is_identity("fuzz-device", None);
        let _ = audience.covers(&["devices", "fuzz-device"]);
        let _ = audience.is_for_host(["hub.example"].into_iter());
    }
    let _ = t.key_name();
    let key = device_key();
    let _ = t.verify([&key], NOW);
}

/// A topic as the hub reads a device's PUBLISH (stream responses) and as the device SDK reads
/// the hub's (stream requests): parse, and where it parses, encode and parse back to the same.
pub fn check_topic(topic: &str) {
    if StreamResponse::is_response_topic(topic)
        && let Ok(r) = StreamResponse::parse(topic)
    {
        let again = StreamResponse::parse(&r.to_topic());
        assert_eq!(again.as_ref(), Ok(&r), "stream response round trip");
    }
    if let Ok(r) = StreamRequest::parse(topic) {
        if let Ok(t) = r.to_topic() {
            let again = StreamRequest::parse(&t);
            assert!(again.as_ref() == Ok(&r), "stream request round trip");
        }
        // What the device SDK logs never shows the bearer token.
        let redacted = redact_auth(topic);
        assert!(
            r.auth.len() < 4 || !redacted.contains(&format!("$auth={}", r.auth)) || r.auth == "***"
        );
    }
}
