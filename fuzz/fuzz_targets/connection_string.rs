//! Connection strings (`adit_proto::connection_string`, with `adit_proto::host` for
//! `HostName`/`GatewayHostName`): what `adit` reads from its flags, environment and files.
//!
//! Invariants: never panics; a parsed string prints (in Azure's key order) and parses back to
//! the same value, and prints the same again; the service form is a subset of the general one.
#![no_main]

use adit_fuzz::seeds;
use adit_proto::ConnectionString;
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    [
        "HostName=hub.example:8443;DeviceId=fuzz-device;SharedAccessKey=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "hostname=[::1]:8443;deviceid=d1;moduleid=m1;sharedaccesskey=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "HostName=h;DeviceId=d;GatewayHostName=edge.local:8883;x509=true",
        "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=h%2Fdevices%2Fd&sig=abc&se=1",
        "HostName=h;DeviceId=d;SharedAccessKey=BwcH;UseProvisioning=true",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let service = ConnectionString::parse_service(text);
        match text.parse::<ConnectionString>() {
            Ok(cs) => {
                let printed = cs.to_string();
                // Brackets added around an IPv6 host may push a string at the limit over it.
                if printed.len() > adit_proto::connection_string::MAX_CONNECTION_STRING_LEN {
                    return;
                }
                let again: ConnectionString = printed.parse().unwrap_or_else(|e| {
                    panic!("printed form does not parse: {e}")
                });
                assert!(again == cs, "round trip changed the value");
                assert_eq!(again.to_string(), printed);
                let _ = (cs.dial(), cs.hub(), cs.host_name(), cs.is_device());
            }
            Err(_) => assert!(service.is_err(), "service form parsed where the general did not"),
        }
    }
);
