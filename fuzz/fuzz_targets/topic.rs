//! Stream topics and their `$rid`/`$url`/`$auth`/`$ip` properties (`adit_proto::topic`): the
//! request topic a device SDK parses, the response topic the hub parses, client ids and
//! CONNECT usernames.
//!
//! Input: text; its first line is also tried as a client id against the rest as a username.
//! Invariants: never panics; every parsed topic encodes and parses back to the same value;
//! a redacted topic never shows the bearer token; a parsed client id prints and parses back.
#![no_main]

use adit_fuzz::{mqtt_checks, mqtt_seeds, seeds};
use adit_proto::topic::{ClientId, check_username};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = mqtt_seeds::request_topics()
        .into_iter()
        .map(String::into_bytes)
        .collect();
    for s in [
        "$iothub/streams/res/200/?$rid=1",
        "$iothub/streams/res/400/?$rid=abc&$ct=x",
        "$IOTHUB/STREAMS/RES/200/?$rid=7",
        "dev1/sink\nhub.example/dev1/sink/?api-version=2020-09-30&DeviceClientType=adit",
        "dev1\nIoTHubDeviceStreams.azure-devices.net/dev1/?api-version=2017-11-08-preview&DeviceClientType=iothubclient%2f1.2.12%20(Darwin%3b%20x86_64)",
        "d\nhost/d/DeviceClientType=x&api-version=2019-10-01",
    ] {
        out.push(s.as_bytes().to_vec());
    }
    out
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        mqtt_checks::check_topic(text);
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        if let Ok(id) = ClientId::parse(first) {
            assert_eq!(ClientId::parse(&id.to_string()).ok().as_ref(), Some(&id));
        }
        if let Ok(host) = check_username(rest, first) {
            assert!(!host.is_empty() && rest.starts_with(host));
        }
    }
);
