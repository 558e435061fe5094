//! IPv6 literals and `GatewayHostName` in connection strings.

use proptest::prelude::*;

use super::*;
use crate::resource::identity_uri;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn ipv6_host_name_is_stored_bare_and_written_bracketed() {
    for (written, port) in [("[::1]:8443", Some(8443)), ("[::1]", None)] {
        let s = format!("HostName={written};DeviceId=d;SharedAccessKey={KEY}");
        let cs: ConnectionString = s.parse().expect("valid");
        assert_eq!(cs.host, "::1");
        assert_eq!(cs.port, port);
        assert_eq!(cs.host_name(), written);
        assert_eq!(cs.to_string(), s);
        // SAS resource URIs start with the bracketed form, as Python's SDK builds them from
        // HostName verbatim.
        assert_eq!(
            identity_uri(&cs.host_name(), "d", None),
            format!("{written}/devices/d")
        );
    }
}

#[test]
fn unbracketed_ipv6_host_name_says_what_to_write() {
    let e = format!("HostName=::1:8443;DeviceId=d;SharedAccessKey={KEY}")
        .parse::<ConnectionString>()
        .expect_err("ambiguous");
    let text = e.to_string();
    assert!(text.starts_with("HostName \"::1:8443\""), "{text}");
    assert!(text.contains("write [::1]:8443"), "{text}");
}

#[test]
fn builders_take_bare_or_bracketed_hosts() {
    let key = Key::from_base64(KEY).expect("key");
    let a = ConnectionString::for_policy("::1", Some(8443), "iothubowner", key.clone());
    let b = ConnectionString::for_policy("[::1]", Some(8443), "iothubowner", key);
    assert_eq!(a, b);
    assert_eq!(
        a.to_string(),
        format!("HostName=[::1]:8443;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}")
    );
    let parsed = ConnectionString::parse_service(&a.to_string()).expect("parses back");
    assert_eq!(parsed, a);
}

#[test]
fn gateway_host_name_is_dialled_and_host_name_stays_the_identity() {
    let s =
        format!("HostName=hub.invalid;DeviceId=d;SharedAccessKey={KEY};GatewayHostName=[::1]:9443");
    let cs: ConnectionString = s.parse().expect("valid");
    assert_eq!(cs.to_string(), s);
    assert_eq!(cs.host_name(), "hub.invalid");
    assert_eq!(cs.hub(), HostPort::new("hub.invalid", None));
    let dial = cs.dial();
    assert_eq!((dial.host(), dial.port()), ("::1", Some(9443)));
    assert_eq!(dial.authority(), "[::1]:9443");
    let plain: ConnectionString = format!("HostName=h:1;DeviceId=d;SharedAccessKey={KEY}")
        .parse()
        .expect("valid");
    assert_eq!(plain.dial(), plain.hub());
}

fn any_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,30}",
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

proptest! {
    #[test]
    fn host_and_gateway_round_trip(
        host in any_host(),
        port in proptest::option::of(1u16..),
        gateway in proptest::option::of((any_host(), proptest::option::of(1u16..))),
    ) {
        let key = Key::from_base64(KEY).expect("key");
        let device = DeviceId::new("d").expect("id");
        let mut cs = ConnectionString::for_device(&host, port, device, key);
        cs.gateway_host = gateway.map(|(h, p)| HostPort::new(&h, p));
        let written = cs.to_string();
        let parsed: ConnectionString = written.parse().expect("the written form parses");
        prop_assert_eq!(&parsed, &cs);
        prop_assert_eq!(parsed.to_string(), written);
    }
}
