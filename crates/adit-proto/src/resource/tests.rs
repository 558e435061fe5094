//! Every id character through every SDK's encoding of `sr` and of REST paths.

use proptest::prelude::*;

use super::*;
use crate::id::{ID_SPECIALS, LEGACY_ID_SPECIALS};

/// Every character an id may hold, older ids' `+ # ;` included: they still authenticate.
fn alphabet() -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(ID_SPECIALS.chars())
        .chain(LEGACY_ID_SPECIALS.chars())
        .collect()
}

fn id() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(alphabet()), 1..=40)
        .prop_map(|c| c.into_iter().collect())
}

fn encode_except(s: &str, keep: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// C# `WebUtility.UrlEncode`: leaves `A-Z a-z 0-9 - _ . ! * ( )`, uppercase hex.
fn csharp(s: &str) -> String {
    encode_except(s, "-_.!*()")
}

/// Node `encodeUriComponentStrict`: `encodeURIComponent`, then `! ' ( ) *` encoded too.
fn node(s: &str) -> String {
    encode_except(s, "-_.~")
}

/// Python `urllib.parse.quote(s, safe="")`.
fn python(s: &str) -> String {
    encode_except(s, "-_.~")
}

/// The `sr` each SDK sends for an identity.
fn srs(host: &str, device: &str, module: Option<&str>) -> Vec<(&'static str, String)> {
    let uri = identity_uri(host, device, module);
    let csharp_target = match module {
        Some(m) => format!("{host}/devices/{}/modules/{}", csharp(device), csharp(m)),
        None => format!("{host}/devices/{}", csharp(device)),
    };
    vec![
        ("C (raw)", uri.clone()),
        ("Python", python(&uri)),
        ("Node", node(&uri)),
        ("C#", csharp(&csharp_target)),
        ("Adit", encode_component(&uri)),
    ]
}

proptest! {
    #[test]
    fn every_sdk_sr_names_exactly_its_identity(
        device in id(),
        module in proptest::option::of(id()),
        host in "[a-z0-9-]{1,12}\\.[a-z]{2,5}(:[0-9]{2,5})?",
    ) {
        let host_only = host.split(':').next().unwrap_or_default().to_string();
        for (sdk, sr) in srs(&host, &device, module.as_deref()) {
            let a = Audience::from_sr(&sr).expect("reads");
            prop_assert_eq!(a.host(), host_only.as_str(), "{} {}", sdk, sr);
            prop_assert!(a.is_identity(&device, module.as_deref()), "{} {}", sdk, sr);
            // Not a longer or shorter id, and not the device when a module was named.
            let longer = format!("{device}A");
            prop_assert!(!a.is_identity(&longer, module.as_deref()), "{} {}", sdk, sr);
            if module.is_some() {
                prop_assert!(!a.is_identity(&device, None), "{} {}", sdk, sr);
            }
        }
    }

    #[test]
    fn ids_round_trip_through_url_path_encoding(device in id()) {
        let encoded = encode_component(&device);
        // One path segment: nothing but unreserved characters and %XX escapes.
        prop_assert!(
            encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{}", encoded
        );
        prop_assert_eq!(decode_component(&encoded), Some(device.clone()));
        // C# encodes differently but decodes to the same id (no space in ids, so no '+').
        prop_assert_eq!(decode_component(&csharp(&device)), Some(device.clone()));
        prop_assert_eq!(decode_component(&node(&device)), Some(device));
    }

    #[test]
    fn sr_reading_never_panics(s in ".{0,200}") {
        if let Some(a) = Audience::from_sr(&s) {
            let _ = a.is_identity("d", None);
            let _ = a.covers(&["devices", "d"]);
        }
    }
}
