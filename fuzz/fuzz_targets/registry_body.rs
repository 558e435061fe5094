//! The registry's JSON bodies: `PUT /devices/{id}` as the hub decodes and validates it
//! (`adit_hub::api::parse_device_body`), before the registry sees it.
//!
//! Input: first line = the `{id}` of the path, the rest = the body.
//! Invariants: never panics; an accepted body is for the path's device, and its stored text
//! fields stay within the hub's bounds (status reason 128, scope 1024, 10 parent scopes).
#![no_main]

use adit_fuzz::seeds;
use adit_hub::api::parse_device_body;
use adit_proto::DeviceId;
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    [
        // Azure's Python SDK (azure-iot-hub create_device_with_sas), and Adit's service SDK.
        r#"{"deviceId":"fuzz-device","status":"enabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","secondaryKey":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk="}}}"#,
        r#"{"deviceId":"fuzz-device","etag":"AAAAAAAAAAE=","status":"disabled","statusReason":"lost","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":null}},"capabilities":{"iotEdge":false}}"#,
        r#"{"deviceId":"fuzz-device","authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"9A1B2C3D4E5F60718293A4B5C6D7E8F901234567","secondaryThumbprint":null}}}"#,
        r#"{"deviceId":"fuzz-device","authentication":{"type":"certificateAuthority"},"capabilities":{"iotEdge":true},"deviceScope":"ms-azure-iot-edge://edge-1","parentScopes":["ms-azure-iot-edge://edge-1"]}"#,
        r#"{}"#,
    ]
    .iter()
    .map(|b| format!("fuzz-device\n{b}").into_bytes())
    .collect()
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let (id, body) = match data.iter().position(|&b| b == b'\n') {
            Some(at) => (&data[..at], &data[at + 1..]),
            None => (&b"fuzz-device"[..], data),
        };
        let Ok(id) = std::str::from_utf8(id) else { return };
        let Ok(id) = DeviceId::new(id) else { return };
        if let Ok(device) = parse_device_body(&id, body) {
            assert_eq!(device.device_id, id);
            assert!(device.status_reason.as_ref().is_none_or(|r| r.len() <= 128));
            assert!(device.device_scope.as_ref().is_none_or(|s| s.len() <= 1024));
            assert!(device.parent_scopes.len() <= 10);
        }
    }
);
