use proptest::prelude::*;

use super::*;

/// Every character a new id may hold.
fn id_alphabet() -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(crate::id::ID_SPECIALS.chars())
        .collect()
}

fn id_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(id_alphabet()), 1..=40)
        .prop_map(|c| c.into_iter().collect())
}

fn stream_name_alphabet() -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(crate::stream_name::STREAM_NAME_SPECIALS.chars())
        .collect()
}

fn request() -> StreamRequest {
    StreamRequest {
        name: "TestStream".into(),
        rid: "1".into(),
        url: "wss://hub.local:8443/bridges/3acd50143144f6b82e0f7299afe911bd/device".into(),
        auth: "ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb".into(),
        ip: Some("127.0.0.1".into()),
        protocol: None,
    }
}

#[test]
fn request_topic_matches_azure_shape() {
    assert_eq!(
        request().to_topic().expect("valid"),
        "$iothub/streams/POST/TestStream/?$rid=1&$url=wss%3A%2F%2Fhub.local%3A8443%2Fbridges%2F3acd50143144f6b82e0f7299afe911bd%2Fdevice&$auth=ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb&$ip=127.0.0.1"
    );
}

#[test]
fn the_stream_token_is_never_printed() {
    let token = "ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb";
    let topic = request().to_topic().expect("valid");
    let parsed = StreamRequest::parse(&topic).expect("parses");
    assert!(!format!("{parsed:?}").contains(token));
    let redacted = redact_auth(&topic);
    assert!(!redacted.contains(token), "{redacted}");
    assert!(redacted.contains("&$auth=***&$ip=127.0.0.1"), "{redacted}");
    assert_eq!(redact_auth("a/?$AUTH=x"), "a/?$AUTH=***");
    assert_eq!(
        redact_auth("a/?$auth=x&$auth=y&b=1"),
        "a/?$auth=***&$auth=***&b=1"
    );
    assert_eq!(redact_auth("no token here"), "no token here");
    // A malformed request topic fails without echoing its properties.
    for bad in [
        format!("$iothub/streams/POST/s/?$rid=1&$auth={token}&junk"),
        format!("$iothub/streams/POST/s/$auth={token}"),
    ] {
        let e = StreamRequest::parse(&bad).expect_err("malformed");
        assert!(!format!("{e} {e:?}").contains(token), "{e}");
    }
}

#[test]
fn parses_the_c_sdk_fixture() {
    // iothubtransport_mqtt_common_ut.c, with its odd $ip.
    let topic = "$iothub/streams/POST/TestStream/?$rid=1&$url=wss%3A%2F%2Fservername.streaming.private.azure-devices-int.net%3A443%2Fbridges%2F3acd50143144f6b82e0f7299afe911bd&$auth=ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb&$ip=111.222.333.444";
    let r = StreamRequest::parse(topic).expect("parses");
    assert_eq!(r.name, "TestStream");
    assert_eq!(r.rid, "1");
    assert_eq!(
        r.url,
        "wss://servername.streaming.private.azure-devices-int.net:443/bridges/3acd50143144f6b82e0f7299afe911bd"
    );
    assert_eq!(r.ip.as_deref(), Some("111.222.333.444"));
}

/// Found by `fuzz/run topic`: a URL under the limit whose percent-encoding is over it made a
/// topic that `parse` refuses as too long.
#[test]
fn never_encodes_a_topic_parse_would_refuse() {
    let fits = StreamRequest {
        url: format!("wss://h/{}", "%".repeat(1300)),
        ..request()
    };
    let topic = fits.to_topic().expect("encodes");
    assert_eq!(StreamRequest::parse(&topic), Ok(fits));
    let over = StreamRequest {
        url: format!("wss://h/{}", "%".repeat(1400)),
        ..request()
    };
    assert!(over.url.len() < MAX_TOPIC_LEN);
    assert_eq!(over.to_topic(), Err(TopicError::TooLong));
}

#[test]
fn refuses_fields_that_break_sdk_parsers() {
    for name in ["", "a/b", "a?b", "a b", "#", "+", "a%b", "über"] {
        let r = StreamRequest {
            name: name.into(),
            ..request()
        };
        assert!(
            matches!(r.to_topic(), Err(TopicError::BadStreamName(_))),
            "{name:?}"
        );
    }
    let r = StreamRequest {
        auth: "a=b".into(),
        ..request()
    };
    assert_eq!(r.to_topic(), Err(TopicError::BadValue("$auth")));
    let r = StreamRequest {
        rid: String::new(),
        ..request()
    };
    assert_eq!(r.to_topic(), Err(TopicError::BadValue("$rid")));
}

#[test]
fn responses_parse_both_statuses() {
    for accepted in [true, false] {
        let r = StreamResponse {
            accepted,
            rid: "42".into(),
            protocol: None,
        };
        assert_eq!(StreamResponse::parse(&r.to_topic()), Ok(r));
    }
    // The prefix is matched case-insensitively, as the C and C# SDKs do.
    assert!(StreamResponse::parse("$IOTHUB/streams/RES/200/?$rid=1").is_ok());
}

#[test]
fn malformed_responses_are_refused() {
    let cases: &[(&str, TopicError)] = &[
        (
            "$iothub/streams/POST/x/?$rid=1",
            TopicError::WrongPrefix("stream response"),
        ),
        (
            "$iothub/streams/res/204/?$rid=1",
            TopicError::BadStatus("204".into()),
        ),
        ("$iothub/streams/res/200", TopicError::BadProperties),
        ("$iothub/streams/res/200/?$rid=", TopicError::BadProperties),
        (
            "$iothub/streams/res/200/?$rid=1=2",
            TopicError::BadProperties,
        ),
        (
            "$iothub/streams/res/200/?$ct=x",
            TopicError::MissingProperty("$rid"),
        ),
    ];
    for (topic, want) in cases {
        assert_eq!(StreamResponse::parse(topic).as_ref(), Err(want), "{topic}");
    }
}

#[test]
fn client_ids_and_usernames() {
    let c = ClientId::parse("dev1/mod1").expect("valid");
    assert_eq!(c.device.as_str(), "dev1");
    assert_eq!(c.module.as_ref().map(ModuleId::as_str), Some("mod1"));
    assert_eq!(c.to_string(), "dev1/mod1");
    assert!(ClientId::parse("").is_err());
    assert!(ClientId::parse("a/b/c").is_err());

    // Real usernames from azure-wire.md 2.1.
    let c_sdk = "IoTHubDeviceStreams.azure-devices.net/device1/?api-version=2017-11-08-preview&DeviceClientType=iothubclient%2f1.2.12%20(Darwin%3b%20x86_64)";
    assert_eq!(
        check_username(c_sdk, "device1"),
        Ok("IoTHubDeviceStreams.azure-devices.net")
    );
    let module =
        "ioth.azure-devices.net/bh0vm00001/sink/?api-version=2020-09-30&DeviceClientType=x";
    assert_eq!(
        check_username(module, "bh0vm00001/sink"),
        Ok("ioth.azure-devices.net")
    );
    assert_eq!(check_username("h/dev", "dev"), Ok("h"));
    assert_eq!(
        check_username("h/other/?api-version=1", "dev"),
        Err(TopicError::BadUsername)
    );
    assert_eq!(check_username("dev", "dev"), Err(TopicError::BadUsername));
    assert_eq!(
        check_username("/dev/?x", "dev"),
        Err(TopicError::BadUsername)
    );
}

#[test]
fn usernames_of_ids_with_query_characters() {
    // Field case 14: the id holds '?', and the username is not split at it.
    let u = "hub.local:8443/sensor?1/?api-version=2020-09-30&DeviceClientType=x";
    assert_eq!(check_username(u, "sensor?1"), Ok("hub.local:8443"));
    assert_eq!(check_username(u, "sensor"), Err(TopicError::BadUsername));
    // An id that starts with '?' or holds "=" and "%".
    assert_eq!(check_username("h/?a=b/?api-version=1", "?a=b"), Ok("h"));
    assert_eq!(check_username("h/?a=b", "?a=b"), Ok("h"));
    assert_eq!(check_username("h/a%2F/", "a%2F"), Ok("h"));
    // Older SDKs sent the query without '?' (Node mqtt_base.ts, C buildConfigForUsername).
    let node = "h/dev/DeviceClientType=azure-iot-device%2F1.4.0&api-version=2017-06-30";
    assert_eq!(check_username(node, "dev"), Ok("h"));
    // Another identity, or a module where the client id has none, is refused.
    for bad in ["h/dev/mod/?api-version=1", "h/dev/mod", "h/devX/?x", "h/de"] {
        assert_eq!(
            check_username(bad, "dev"),
            Err(TopicError::BadUsername),
            "{bad}"
        );
    }
    assert_eq!(check_username("h/dev", ""), Err(TopicError::BadUsername));
}

proptest! {
    #[test]
    fn request_round_trips_and_splits_like_the_c_sdk(
        name in "[A-Za-z0-9_.:-]{1,30}",
        rid in "[A-Za-z0-9]{1,12}",
        path in "[A-Za-z0-9/_=&?%-]{0,40}",
        auth in "[A-Za-z0-9_.-]{1,80}",
    ) {
        let r = StreamRequest { name, rid, url: format!("wss://h:1/{path}"), auth, ip: Some("10.0.0.1".into()), protocol: None };
        let topic = r.to_topic().expect("valid fields");
        let levels: Vec<&str> = topic.split('/').collect();
        prop_assert_eq!(levels.len(), 5);
        for pair in levels[4].trim_start_matches('?').split('&') {
            let parts: Vec<&str> = pair.split('=').collect();
            prop_assert!(parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty(), "{}", pair);
        }
        prop_assert_eq!(StreamRequest::parse(&topic), Ok(r));
    }

    #[test]
    fn stream_names_from_the_whole_alphabet_round_trip(
        name in proptest::collection::vec(
            proptest::sample::select(stream_name_alphabet()),
            1..=crate::stream_name::MAX_STREAM_NAME_LEN,
        ),
    ) {
        let name: String = name.into_iter().collect();
        let r = StreamRequest { name, ..request() };
        let topic = r.to_topic().expect("valid name");
        // The C SDK's split: exactly 5 levels, the name is level 4 as sent.
        let levels: Vec<&str> = topic.split('/').collect();
        prop_assert_eq!(levels.len(), 5);
        prop_assert_eq!(levels[3], r.name.as_str());
        prop_assert_eq!(StreamRequest::parse(&topic), Ok(r));
    }

    #[test]
    fn client_ids_and_usernames_round_trip_over_the_whole_id_alphabet(
        device in id_strategy(),
        module in proptest::option::of(id_strategy()),
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
    ) {
        let text = match &module {
            Some(m) => format!("{device}/{m}"),
            None => device.clone(),
        };
        let client = ClientId::parse(&text).expect("valid client id");
        prop_assert_eq!(client.device.as_str(), device.as_str());
        prop_assert_eq!(client.module.as_ref().map(ModuleId::as_str), module.as_deref());
        prop_assert_eq!(client.to_string(), text.clone());
        let username = format_username(&host, &client, "api-version=2020-09-30&DeviceClientType=a%2F1");
        prop_assert_eq!(check_username(&username, &text), Ok(host.as_str()));
        let plain = format!("{host}/{text}");
        prop_assert_eq!(check_username(&plain, &text), Ok(host.as_str()));
        // The same username never authenticates a different client id.
        let other = format!("{text}x");
        prop_assert_eq!(check_username(&username, &other), Err(TopicError::BadUsername));
    }

    #[test]
    fn redaction_leaves_no_auth_value(s in "[a-z$&=?/]{0,40}", token in "[A-Za-z0-9_.-]{8,40}") {
        let topic = format!("{s}$auth={token}{s}");
        let redacted = redact_auth(&topic);
        prop_assert!(!redacted.contains(&format!("$auth={token}")), "{}", redacted);
    }

    #[test]
    fn parsers_never_panic(s in ".{0,300}") {
        let _ = StreamRequest::parse(&s);
        let _ = StreamResponse::parse(&s);
        let _ = ClientId::parse(&s);
        let _ = check_username(&s, "d");
    }
}

#[test]
fn the_stream_protocol_travels_in_the_request_and_the_acceptance() {
    let asked = StreamRequest {
        protocol: Some("adit.stream.v1".into()),
        ..request()
    };
    let topic = asked.to_topic().expect("valid");
    assert!(topic.ends_with("&adit-protocol=adit.stream.v1"), "{topic}");
    assert_eq!(StreamRequest::parse(&topic), Ok(asked));
    // A request without it has none (Azure's shape, unchanged).
    assert!(
        !request()
            .to_topic()
            .expect("valid")
            .contains("adit-protocol")
    );
    let bad = StreamRequest {
        protocol: Some("a b".into()),
        ..request()
    };
    assert_eq!(bad.to_topic(), Err(TopicError::BadValue("adit-protocol")));

    let accepted = StreamResponse {
        accepted: true,
        rid: "7".into(),
        protocol: Some("adit.stream.v1".into()),
    };
    assert_eq!(
        accepted.to_topic(),
        "$iothub/streams/res/200/?$rid=7&adit-protocol=adit.stream.v1"
    );
    assert_eq!(StreamResponse::parse(&accepted.to_topic()), Ok(accepted));
    // A refusal never names a protocol.
    let refused = StreamResponse {
        accepted: false,
        rid: "7".into(),
        protocol: Some("adit.stream.v1".into()),
    };
    assert_eq!(refused.to_topic(), "$iothub/streams/res/400/?$rid=7");
    // A refusal that names one anyway parses as a plain refusal, so parse and to_topic agree.
    let parsed =
        StreamResponse::parse("$iothub/streams/res/400/?$rid=7&adit-protocol=adit.stream.v1")
            .expect("valid");
    assert_eq!(parsed.protocol, None);
    assert_eq!(StreamResponse::parse(&parsed.to_topic()), Ok(parsed));
}
