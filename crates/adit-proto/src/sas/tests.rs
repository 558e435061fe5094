//! Vectors computed with each SDK's own encoding (Python from the installed packages; C, C#
//! and Node by their documented encoders, see azure-wire.md 2.2) over key bytes 0..32 and
//! `se=1700000000`.

use proptest::prelude::*;

use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SE: u64 = 1_700_000_000;

const PY_DEVICE: &str = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%2B1&sig=fLtqqWPBD3gkhQtpBFGqzDuvkSdp73IjGa0VfX3UjFU%3D&se=1700000000";
// azure-iot-hub quotes sig with safe='/', so a '/' stays raw.
const PY_SERVICE: &str = "SharedAccessSignature sr=myhub.azure-devices.net&sig=iIzEw6hi6GK79RY5jNXO6QeQkSL/Ax4zTmy44X2G1VY%3D&se=1700000000&skn=iothubowner";
// C: sr not encoded at all, sig with lowercase hex.
const C_DEVICE: &str = "SharedAccessSignature sr=myhub.azure-devices.net/devices/dev+1&sig=dxcI9JFE8IWx%2fxh0j%2fHWDLH3Fg0WaSg6ahEGAoJUy%2fg%3d&se=1700000000";
// C#: WebUtility.UrlEncode of a target whose id was already encoded (double encoding).
const CS_DEVICE: &str = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%252B1&sig=jRhddy6whziK710Jk8oCONe3Vf1nn%2Bv3Bi%2FUbn7%2FD1c%3D&se=1700000000";
// Node: field order sr, sig, skn, se.
const NODE_SERVICE: &str = "SharedAccessSignature sr=myhub.azure-devices.net&sig=iIzEw6hi6GK79RY5jNXO6QeQkSL%2FAx4zTmy44X2G1VY%3D&skn=service&se=1700000000";

fn key() -> Key {
    Key::from_base64(KEY).expect("test key is valid")
}

fn other_key() -> Key {
    Key::from_bytes(&[9u8; 32]).expect("valid")
}

#[test]
fn sign_matches_python_device_sdk_byte_for_byte() {
    let token = SasToken::sign("myhub.azure-devices.net/devices/dev+1", &key(), None, SE);
    assert_eq!(token, PY_DEVICE);
}

#[test]
fn verifies_every_sdk_encoding() {
    for (token, skn) in [
        (PY_DEVICE, None),
        (PY_SERVICE, Some("iothubowner")),
        (C_DEVICE, None),
        (CS_DEVICE, None),
        (NODE_SERVICE, Some("service")),
    ] {
        let parsed = SasToken::parse(token).expect(token);
        assert_eq!(parsed.key_name(), skn, "{token}");
        assert_eq!(parsed.expiry(), SE);
        assert_eq!(parsed.verify([&key()], SE), Ok(()), "{token}");
        assert_eq!(
            parsed.audience().map(|a| a.host().to_string()),
            Ok("myhub.azure-devices.net".into())
        );
    }
    for token in [PY_DEVICE, C_DEVICE, CS_DEVICE] {
        let a = SasToken::parse(token)
            .and_then(|t| t.audience())
            .expect(token);
        assert!(a.is_identity("dev+1", None), "{token}");
    }
}

#[test]
fn secondary_key_is_tried_after_primary() {
    let t = SasToken::parse(PY_DEVICE).expect("valid");
    assert_eq!(t.verify([&other_key(), &key()], SE), Ok(()));
    assert_eq!(t.verify([&other_key()], SE), Err(SasError::BadSignature));
    assert_eq!(t.verify([], SE), Err(SasError::BadSignature));
}

#[test]
fn verify_which_names_the_key_that_signed() {
    let t = SasToken::parse(PY_DEVICE).expect("valid");
    assert_eq!(t.verify_which([&key(), &other_key()], SE), Ok(0));
    assert_eq!(t.verify_which([&other_key(), &key()], SE), Ok(1));
    // The same key twice (primary = secondary): the first position is reported.
    assert_eq!(t.verify_which([&key(), &key()], SE), Ok(0));
    assert_eq!(
        t.verify_which([&other_key()], SE),
        Err(SasError::BadSignature)
    );
}

#[test]
fn expiry_allows_five_minutes_of_skew() {
    let t = SasToken::parse(PY_DEVICE).expect("valid");
    assert_eq!(t.verify([&key()], SE + CLOCK_SKEW_SECS), Ok(()));
    assert_eq!(
        t.verify([&key()], SE + CLOCK_SKEW_SECS + 1),
        Err(SasError::Expired)
    );
}

#[test]
fn reencoded_resource_fails() {
    // Signing covers the raw sr: decoding it and re-encoding differently must not verify.
    let tampered = C_DEVICE.replace(
        "sr=myhub.azure-devices.net/devices/dev+1",
        "sr=myhub.azure-devices.net%2Fdevices%2Fdev%2B1",
    );
    let t = SasToken::parse(&tampered).expect("parses");
    assert_eq!(t.verify([&key()], SE), Err(SasError::BadSignature));
}

#[test]
fn malformed_tokens_are_refused() {
    let cases: &[(&str, SasError)] = &[
        ("", SasError::NotSharedAccessSignature),
        ("Bearer abc", SasError::NotSharedAccessSignature),
        ("SharedAccessSignature", SasError::MissingField("sr")),
        (
            "SharedAccessSignature sig=a&se=1",
            SasError::MissingField("sr"),
        ),
        (
            "SharedAccessSignature sr=h&se=1",
            SasError::MissingField("sig"),
        ),
        (
            "SharedAccessSignature sr=h&sig=a",
            SasError::MissingField("se"),
        ),
        (
            "SharedAccessSignature sr=h&sig=a&se=soon",
            SasError::BadExpiry,
        ),
        (
            "SharedAccessSignature sr=h&sr=g&sig=a&se=1",
            SasError::DuplicateField("sr"),
        ),
        (
            "SharedAccessSignature sr=h&sig=a&se=1&x=2",
            SasError::UnknownField(4),
        ),
        (
            "SharedAccessSignature sr=h&sig&se=1",
            SasError::NotNameValue(2),
        ),
        (
            "SharedAccessSignature sr=h&sig=a&se=1 extra",
            SasError::TrailingText,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            SasToken::parse(input).as_ref().map(|_| ()),
            Err(want),
            "{input:?}"
        );
    }
    let long = format!(
        "SharedAccessSignature sr={}&sig=a&se=1",
        "h".repeat(MAX_TOKEN_LEN)
    );
    assert_eq!(SasToken::parse(&long).map(|_| ()), Err(SasError::TooLong));
    // Not base64: parses, never verifies.
    let t = SasToken::parse("SharedAccessSignature sr=h&sig=%%%&se=1").expect("parses");
    assert_eq!(t.verify([&key()], 0), Err(SasError::BadSignature));
}

#[test]
fn debug_hides_signature() {
    let t = SasToken::parse(PY_SERVICE).expect("valid");
    assert!(!format!("{t:?}").contains("iIzEw6"));
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}",
        port in proptest::option::of(1u16..),
        id in "[A-Za-z0-9\\-:.+%_#*?!(),=@;$']{1,40}",
        key_bytes in proptest::collection::vec(any::<u8>(), 16..=64),
        expiry in 0u64..4_000_000_000,
        policy in proptest::option::of("[a-zA-Z0-9_@.-]{1,20}"),
    ) {
        let key = Key::from_bytes(&key_bytes).expect("length in range");
        let host_name = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
        let resource = crate::resource::identity_uri(&host_name, &id, None);
        let token = SasToken::sign(&resource, &key, policy.as_deref(), expiry);
        let parsed = SasToken::parse(&token).expect("own token parses");
        prop_assert_eq!(parsed.verify([&key], expiry), Ok(()));
        prop_assert_eq!(parsed.key_name(), policy.as_deref());
        let audience = parsed.audience().expect("own resource decodes");
        prop_assert_eq!(audience.host(), host.as_str());
        prop_assert!(audience.is_identity(&id, None));
    }

    #[test]
    fn any_tampered_byte_fails(idx in any::<prop::sample::Index>(), replacement in any::<u8>()) {
        let token = SasToken::sign("hub.example/devices/d1", &key(), Some("device"), SE);
        let mut bytes = token.into_bytes();
        let i = idx.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        // A tampered token may fail to parse, or parse to an equivalent token (hex case in
        // `sig`, field-name case, `skn`, which only picks the key). What it must never do is
        // verify with different signed content.
        if let Ok(s) = String::from_utf8(bytes)
            && let Ok(t) = SasToken::parse(&s)
                && t.verify([&key()], SE).is_ok() {
                    prop_assert_eq!(t.raw_resource(), "hub.example%2Fdevices%2Fd1", "{}", s);
                    prop_assert_eq!(t.expiry(), SE);
                }
    }

    /// Whatever is wrong with a token, its error (logged, recorded and sent back) never
    /// carries the signature, nor any field's text.
    #[test]
    fn errors_never_echo_the_token(
        sig in "[A-Za-z0-9+/]{24,44}",
        fields in proptest::collection::vec(
            prop_oneof![
                Just("sr=h".to_string()),
                Just("se=1".to_string()),
                Just("se=SIGSE".to_string()),
                Just("skn=%ZZ".to_string()),
                Just("sr".to_string()),
                "[a-z]{1,4}=[a-z]{0,3}",
                "[a-z]{1,6}",
            ],
            0..5,
        ),
        sig_at in any::<prop::sample::Index>(),
        sig_named in prop_oneof![Just("sig="), Just("SIG="), Just(""), Just("sig=sig=")],
        trailer in prop_oneof![Just(""), Just(" tail"), Just(" ")],
    ) {
        let mut fields = fields;
        let at = sig_at.index(fields.len() + 1);
        fields.insert(at, format!("{sig_named}{sig}"));
        let token = format!("SharedAccessSignature {}{trailer}", fields.join("&"));
        if let Err(e) = SasToken::parse(&token) {
            let shown = format!("{e} {e:?}");
            prop_assert!(!shown.contains(&sig), "{} echoes {}", shown, sig);
            prop_assert!(!shown.contains("SIGSE") && !shown.contains("tail"), "{}", shown);
        }
    }

    #[test]
    fn parse_never_panics(s in ".{0,600}") {
        let _ = SasToken::parse(&s);
    }
}
