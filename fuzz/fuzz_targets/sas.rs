//! SAS tokens (`adit_proto::sas`): what devices send as their MQTT password and services as
//! their `Authorization` header, parsed and verified as the hub's authenticator does.
//!
//! Input: text. The whole is parsed as a token; its first line is also used as a resource
//! URI and its second as a policy name to sign with a fixed key.
//! Invariants: never panics; a parsed token never verifies under a key that did not sign
//! it (the fixed key, for inputs the fuzzer made: a forged signature would be a finding);
//! a token Adit signs parses, names its resource, verifies before expiry and not after.
#![no_main]

use adit_fuzz::{mqtt_checks, mqtt_seeds, seeds};
use adit_proto::resource::identity_uri;
use adit_proto::{Key, SasToken};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let key = mqtt_seeds::device_key();
    let uri = identity_uri(mqtt_seeds::HOST, "fuzz-device", None);
    let mut out = vec![
        SasToken::sign(&uri, &key, None, mqtt_seeds::FAR_EXPIRY),
        SasToken::sign(mqtt_seeds::HOST, &key, Some("service"), mqtt_seeds::FAR_EXPIRY),
        // The C SDK's unencoded sr and lowercase-hex sig; Node's field order.
        "SharedAccessSignature sr=myhub.azure-devices.net/devices/dev1&sig=abc%2bdef%3d&se=1700000000".into(),
        "SharedAccessSignature sr=myhub.azure-devices.net&sig=YWJj&skn=iothubowner&se=1700000000".into(),
        // Python's quote_plus sr and a sig with a raw '/'.
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fd%2Bx&sig=ab/cd%3D&se=1&skn=service".into(),
        format!("{}\n{}", uri, "registryRead"),
    ];
    out.push(format!("hub.example/devices/a%2Fb/modules/m\n"));
    out.into_iter().map(String::into_bytes).collect()
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        mqtt_checks::check_sas(text);
        let other = Key::from_bytes(&[9u8; 32]).expect("32 bytes make a key");
        if let Ok(t) = SasToken::parse(text) {
            assert!(t.verify([&other], 0).is_err(), "a token the fuzzer made verified");
        }
        let mut lines = text.splitn(3, '\n');
        let (Some(resource), name) = (lines.next(), lines.next()) else { return };
        // A token needs a resource: an empty one is refused by design.
        if resource.is_empty() {
            return;
        }
        let key = mqtt_seeds::device_key();
        let expiry = u64::from(data.len() as u32) * 1000;
        let token = SasToken::sign(resource, &key, name, expiry);
        let parsed = match SasToken::parse(&token) {
            Ok(p) => p,
            // Only an over-long token may be refused.
            Err(e) => {
                assert!(matches!(e, adit_proto::SasError::TooLong), "own token refused: {e}");
                return;
            }
        };
        assert_eq!(parsed.expiry(), expiry);
        assert_eq!(parsed.key_name(), name);
        assert_eq!(parsed.verify([&key], expiry), Ok(()), "own token does not verify");
        assert_eq!(parsed.verify([&other, &key], expiry).is_ok(), true);
        assert!(parsed.verify([&key], expiry + adit_proto::sas::CLOCK_SKEW_SECS + 1).is_err());
        assert!(parsed.verify([&other], expiry).is_err());
    }
);
