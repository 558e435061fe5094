use super::*;
use proptest::prelude::*;

fn hp(s: &str) -> HostPort {
    HostPort::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_every_form_and_writes_it_back() {
    // (input, bare host, port, URL host)
    let cases: &[(&str, &str, Option<u16>, &str)] = &[
        ("hub.example", "hub.example", None, "hub.example"),
        ("hub.example:8443", "hub.example", Some(8443), "hub.example"),
        ("10.0.0.1", "10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1:443", "10.0.0.1", Some(443), "10.0.0.1"),
        ("[::1]", "::1", None, "[::1]"),
        ("[::1]:8443", "::1", Some(8443), "[::1]"),
        (
            "[2001:db8::17]:65535",
            "2001:db8::17",
            Some(65535),
            "[2001:db8::17]",
        ),
        (
            "[::ffff:10.0.0.1]:1",
            "::ffff:10.0.0.1",
            Some(1),
            "[::ffff:10.0.0.1]",
        ),
    ];
    for &(input, host, port, url) in cases {
        let h = hp(input);
        assert_eq!(h.host(), host, "{input}");
        assert_eq!(h.port(), port, "{input}");
        assert_eq!(h.url_host(), url, "{input}");
        assert_eq!(h.to_string(), input, "{input}");
        assert_eq!(h.authority(), input, "{input}");
    }
}

#[test]
fn unbracketed_ipv6_is_refused_with_the_form_to_write() {
    let e = HostPort::parse("::1:8443").expect_err("ambiguous");
    assert_eq!(
        e,
        HostError::Ipv6WithoutBrackets {
            value: "::1:8443".into(),
            hint: "[::1]:8443 (address and port) or [::1:8443] (address only)".into(),
        }
    );
    assert!(e.to_string().contains("write [::1]:8443"), "{e}");
    let e = HostPort::parse("::1").expect_err("unbracketed");
    assert!(e.to_string().contains("write [::1] or [::1]:PORT"), "{e}");
    // Not an address at all: just invalid.
    assert_eq!(
        HostPort::parse("a:b:c"),
        Err(HostError::Invalid("a:b:c".into()))
    );
}

#[test]
fn refuses_malformed() {
    use HostError::{BadPort, Invalid};
    let cases: &[(&str, HostError)] = &[
        ("", Invalid("".into())),
        ("h:0", BadPort("h:0".into())),
        ("h:99999", BadPort("h:99999".into())),
        ("h:", BadPort("h:".into())),
        ("h:+1", BadPort("h:+1".into())),
        ("h/x", Invalid("h/x".into())),
        ("[::1", Invalid("[::1".into())),
        ("[::1]8443", Invalid("[::1]8443".into())),
        ("[::1]:0", BadPort("[::1]:0".into())),
        ("[hub.example]", Invalid("[hub.example]".into())),
        ("[10.0.0.1]:80", Invalid("[10.0.0.1]:80".into())),
        ("[fe80::1%eth0]", Invalid("[fe80::1%eth0]".into())),
        (":8443", Invalid(":8443".into())),
    ];
    for (input, want) in cases {
        assert_eq!(HostPort::parse(input).as_ref(), Err(want), "{input:?}");
    }
    assert_eq!(
        HostPort::parse(&"a".repeat(254)),
        Err(Invalid("a".repeat(254)))
    );
}

#[test]
fn hostname_flag_takes_ipv6_with_or_without_brackets_and_no_port() {
    assert_eq!(
        HostPort::parse_host("::1").map(|h| h.authority()),
        Ok("[::1]".into())
    );
    assert_eq!(
        HostPort::parse_host("[::1]").map(|h| h.authority()),
        Ok("[::1]".into())
    );
    assert_eq!(
        HostPort::parse_host("hub.example").map(|h| h.authority()),
        Ok("hub.example".into())
    );
    for bad in ["hub:8443", "[::1]:8443", "[hub]", "", "a b"] {
        assert!(HostPort::parse_host(bad).is_err(), "{bad}");
    }
}

#[test]
fn hosts_match_compares_addresses_as_addresses() {
    assert!(hosts_match("::1", "[0:0:0:0:0:0:0:1]"));
    assert!(hosts_match("[::1]", "::1"));
    assert!(hosts_match("Hub.Example", "hub.example"));
    assert!(!hosts_match("::1", "127.0.0.1"));
    assert!(!hosts_match("hub.example", "hub.example.com"));
    assert!(hp("[::1]:1").same_host("0::1"));
}

#[test]
fn split_authority_is_lenient_for_what_sdks_sign() {
    assert_eq!(split_authority("[::1]:8443"), ("::1", Some("8443")));
    assert_eq!(split_authority("[::1]"), ("::1", None));
    assert_eq!(split_authority("::1"), ("::1", None));
    assert_eq!(split_authority("hub:8443"), ("hub", Some("8443")));
    assert_eq!(split_authority("hub"), ("hub", None));
}

#[test]
fn url_host_and_unbracket_are_inverse() {
    assert_eq!(url_host("::1"), "[::1]");
    assert_eq!(url_host("[::1]"), "[::1]");
    assert_eq!(url_host("hub"), "hub");
    assert_eq!(unbracket("[::1]"), "::1");
    assert_eq!(unbracket("hub"), "hub");
    assert_eq!(HostPort::new("[::1]", Some(5)).host(), "::1");
}

fn any_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,40}".prop_map(|s| s),
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

proptest! {
    #[test]
    fn round_trips_through_its_written_form(host in any_host(), port in proptest::option::of(1u16..)) {
        let written = HostPort::new(&host, port).to_string();
        let parsed = HostPort::parse(&written).expect("the written form parses");
        prop_assert_eq!(parsed.host(), host.as_str());
        prop_assert_eq!(parsed.port(), port);
        prop_assert_eq!(parsed.to_string(), written.clone());
        // The written form is what a URL carries: http parses it back to the same host.
        let uri: http::Uri = format!("wss://{written}/x").parse().expect("a URL");
        prop_assert!(hosts_match(uri.host().expect("host"), &host));
        prop_assert_eq!(uri.port_u16(), port);
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = HostPort::parse(&s);
        let _ = HostPort::parse_host(&s);
        let _ = split_authority(&s);
    }
}
